import API
import Foundation
import Store
import Testing
import TestSupport
import Yams

/// `switchyard api` against real PostgreSQL and nats-server processes.
@Suite("Call API", .serialized, .timeLimit(.minutes(3)))
struct CallsAPITests {
    @Test("POST /v1/calls: 201 with the call, a queued row in PostgreSQL and the job on the calls stream")
    func createCall() async throws {
        let s = try await APIStack.start()
        let r = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(extra: ", \"timeout\": 30, \"client_state\": \"abc\""))
        #expect(r.status == 201, "\(r.body)")
        let call = r.json
        let id = try #require(call["id"] as? String)
        #expect(call["status"] as? String == "queued")
        #expect(call["to"] as? String == "+15551234567")
        #expect(call["timeout"] as? Int == 30)
        #expect(call["client_state"] as? String == "abc")
        #expect(r.headers["location"] == "/v1/calls/\(id)")
        let pool = PostgresPool(conninfo: s.postgres.url, size: 1)
        let row = try await pool.query("SELECT status FROM calls WHERE id = $1::uuid", [id]).first
        #expect(row?["status"] == "queued")
        await pool.shutdown()
        let messages = try await s.streamMessages(expect: 1)
        #expect(messages.count == 1)
        #expect(messages.first?["call_id"] == id)
        #expect(messages.first?["type"] == "originate")
        let fetched = try s.api.request("GET", "/v1/calls/\(id)", key: s.key)
        #expect(fetched.status == 200)
        #expect(fetched.json["id"] as? String == id)
        s.stop()
    }

    static let badBodies: [(String, Int, Int, String?)] = [
        ("{\"from\": \"+15557654321\", \"url\": \"https://e.com\"}", 400, 21004, "to"),
        (APIStack.body(to: "5551234567"), 400, 21201, "to"),
        (APIStack.body(to: "+0551234567"), 400, 21201, "to"),
        (APIStack.body(to: "+1555123456789012"), 400, 21201, "to"),
        (APIStack.body(from: "+1-555-765"), 400, 21212, "from"),
        ("{\"to\": \"+15551234567\", \"from\": \"+15557654321\", \"url\": \"ftp://e.com/x\"}", 400, 21205, "url"),
        ("{\"to\": \"+15551234567\", \"from\": \"+15557654321\", \"url\": \"/relative\"}", 400, 21205, "url"),
        ("{\"to\": 15551234567, \"from\": \"+15557654321\", \"url\": \"https://e.com\"}", 400, 21005, "to"),
        (APIStack.body(extra: ", \"status_callback\": \"not a url\""), 400, 21609, "status_callback"),
        (APIStack.body(extra: ", \"status_callback_events\": [\"answered\", \"exploded\"]"), 400, 21610, "status_callback_events"),
        (APIStack.body(extra: ", \"status_callback_events\": \"answered\""), 400, 21005, "status_callback_events"),
        (APIStack.body(extra: ", \"timeout\": 0"), 400, 21220, "timeout"),
        (APIStack.body(extra: ", \"timeout\": 601"), 400, 21220, "timeout"),
        (APIStack.body(extra: ", \"timeout\": 2.5"), 400, 21220, "timeout"),
        (APIStack.body(extra: ", \"timeout\": \"30\""), 400, 21220, "timeout"),
        (APIStack.body(extra: ", \"timeout\": true"), 400, 21220, "timeout"),
        (APIStack.body(extra: ", \"time_limit\": 0"), 400, 21220, "time_limit"),
        (APIStack.body(extra: ", \"region\": \"US East\""), 400, 21221, "region"),
        (APIStack.body(extra: ", \"client_state\": \"\(String(repeating: "x", count: 1025))\""), 400, 21222, "client_state"),
        (APIStack.body(extra: ", \"To\": \"+15551234567\""), 400, 21003, "To"),
        ("not json", 400, 21000, nil),
        ("[1, 2]", 400, 21000, nil),
        ("{\"to\": \"+15551234567\",", 400, 21000, nil),
    ]

    @Test("every bad body gets its own status, stable code and field, and nothing is stored")
    func validationErrors() async throws {
        let s = try await APIStack.start()
        for (body, status, code, field) in Self.badBodies {
            let r = try s.api.request("POST", "/v1/calls", key: s.key, body: body)
            let e = r.json
            #expect(r.status == status, "\(body.prefix(60)): \(r.body)")
            #expect(e["code"] as? Int == code, "\(body.prefix(60)): \(r.body)")
            #expect(e["field"] as? String == field, "\(body.prefix(60)): \(r.body)")
            #expect((e["message"] as? String)?.isEmpty == false)
            #expect(r.headers["content-type"]?.hasPrefix("application/json") == true)
        }
        let big = APIStack.body(extra: ", \"client_state\": \"\(String(repeating: "y", count: 70_000))\"")
        let tooLarge = try s.api.request("POST", "/v1/calls", key: s.key, body: big)
        #expect(tooLarge.status == 413, "\(tooLarge.status) \(tooLarge.body.prefix(200))")
        let wrongType = try s.api.request("POST", "/v1/calls", key: s.key, body: "to=+1555", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(wrongType.status == 415)
        #expect(wrongType.json["code"] as? Int == 21002)
        let pool = PostgresPool(conninfo: s.postgres.url, size: 1)
        #expect(try await pool.query("SELECT count(*) AS n FROM calls").first?.int("n") == 0, "no bad request left a row")
        await pool.shutdown()
        s.stop()
    }

    @Test("auth: no key 401, a wrong key 401, and another account's call is 404 and absent from its list")
    func authIsolation() async throws {
        let s = try await APIStack.start()
        let none = try s.api.request("GET", "/v1/calls", key: nil)
        #expect(none.status == 401)
        #expect(none.json["code"] as? Int == 20003)
        #expect(none.headers["www-authenticate"] != nil)
        let wrong = try s.api.request("GET", "/v1/calls", key: "sy_live_nope")
        #expect(wrong.status == 401)
        #expect(wrong.json["code"] as? Int == 20004)
        let mine = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body()).json["id"] as? String ?? ""
        let theirs = try s.api.request("GET", "/v1/calls/\(mine)", key: s.otherKey)
        #expect(theirs.status == 404, "another account's call id answers 404")
        #expect(theirs.json["code"] as? Int == 20404)
        #expect(try s.api.request("POST", "/v1/calls/\(mine)/cancel", key: s.otherKey).status == 404)
        #expect(try s.api.request("GET", "/v1/calls/\(mine)/cdr", key: s.otherKey).status == 404)
        let list = try s.api.request("GET", "/v1/calls", key: s.otherKey).json["calls"] as? [Any]
        #expect(list?.isEmpty == true)
        #expect(try s.api.request("GET", "/v1/calls/not-a-uuid", key: s.key).status == 404)
        #expect(try s.api.request("GET", "/v1/nothing", key: s.key).json["code"] as? Int == 20405)
        s.stop()
    }

    @Test("Idempotency-Key: a retry returns the same call once; the same key with another body is 422; keys are per account")
    func idempotency() async throws {
        let s = try await APIStack.start()
        let h = ["Idempotency-Key": "order-42"]
        let first = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(), headers: h)
        let retry = try s.api.request(
            "POST", "/v1/calls", key: s.key, body: "{\"url\": \"https://example.com/twiml\", \"from\": \"+15557654321\", \"to\": \"+15551234567\"}", headers: h)
        #expect(first.status == 201)
        #expect(retry.status == 201)
        #expect(retry.json["id"] as? String == first.json["id"] as? String, "same call back (field order does not matter)")
        #expect(retry.headers["idempotent-replayed"] == "true")
        let changed = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(to: "+15550000001"), headers: h)
        #expect(changed.status == 422)
        #expect(changed.json["code"] as? Int == 22002)
        let other = try s.api.request("POST", "/v1/calls", key: s.otherKey, body: APIStack.body(), headers: h)
        #expect(other.status == 201)
        #expect(other.json["id"] as? String != first.json["id"] as? String, "another account's key is its own")
        let bad = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(), headers: ["Idempotency-Key": String(repeating: "k", count: 256)])
        #expect(bad.status == 400)
        let messages = try await s.streamMessages(expect: 2)
        #expect(messages.count == 2, "the retry published nothing new: \(messages.map { $0["call_id"] ?? "" })")
        s.stop()
    }

    @Test("pagination: pages of page_size, newest first, no call twice, filters, and bad parameters refused")
    func pagination() async throws {
        let s = try await APIStack.start()
        var created: [String] = []
        for i in 0..<7 {
            let to = i % 2 == 0 ? "+15551110000" : "+15552220000"
            created.append(try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(to: to)).json["id"] as? String ?? "")
        }
        var seen: [String] = []
        var path = "/v1/calls?page_size=3"
        var pages = 0
        while pages < 10 {
            let page = try s.api.request("GET", path, key: s.key).json
            seen += (page["calls"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            pages += 1
            guard let next = page["next_page_uri"] as? String else { break }
            path = next
        }
        #expect(pages == 3)
        #expect(seen == Array(created.reversed()), "newest first, each once")
        let filtered = try s.api.request("GET", "/v1/calls?to=%2B15551110000", key: s.key).json["calls"] as? [Any]
        #expect(filtered?.count == 4)
        let queued = try s.api.request("GET", "/v1/calls?status=queued&page_size=100", key: s.key).json["calls"] as? [Any]
        #expect(queued?.count == 7)
        for bad in ["page_size=0", "page_size=101", "page_size=x", "page_token=garbage", "status=ringingg", "to=555"] {
            let r = try s.api.request("GET", "/v1/calls?\(bad)", key: s.key)
            #expect(r.status == 400, "\(bad): \(r.body)")
        }
        s.stop()
    }

    @Test("a call accepted while NATS is down is still put on the stream, exactly once, when it comes back")
    func lostPublishIsRecovered() async throws {
        let s = try await APIStack.start()
        s.nats.stop()
        let r = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body())
        #expect(r.status == 201, "the call is accepted and stored: \(r.body)")
        let id = r.json["id"] as? String ?? ""
        try await s.nats.restart()
        let pool = PostgresPool(conninfo: s.postgres.url, size: 1)
        let published = await Poll.until(timeout: .seconds(20), interval: .milliseconds(200)) {
            (try? await pool.query("SELECT NOT EXISTS (SELECT 1 FROM call_outbox WHERE call_id = $1::uuid) AS p", [id]).first?.bool("p")) == true
        }
        #expect(published, "the outbox sweeper publishes it: \(s.api.logTail())")
        await pool.shutdown()
        let messages = try await s.streamMessages(expect: 1)
        #expect(messages.filter { $0["call_id"] == id }.count == 1, "exactly once on the stream: \(messages.count)")
        s.stop()
    }

    @Test("cancel: a queued call becomes canceled; a second cancel is 409")
    func cancel() async throws {
        let s = try await APIStack.start()
        let id = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body()).json["id"] as? String ?? ""
        let c = try s.api.request("POST", "/v1/calls/\(id)/cancel", key: s.key)
        #expect(c.status == 200)
        #expect(c.json["status"] as? String == "canceled")
        let again = try s.api.request("POST", "/v1/calls/\(id)/cancel", key: s.key)
        #expect(again.status == 409)
        #expect(again.json["code"] as? Int == 23001)
        let cdr = try s.api.request("GET", "/v1/calls/\(id)/cdr", key: s.key)
        #expect(cdr.status == 200)
        #expect((cdr.json["cdrs"] as? [Any])?.isEmpty == true)
        s.stop()
    }

    @Test("strings come back as they went in: quotes, backslashes, controls, slashes and non-ASCII in a body survive the round trip")
    func stringsRoundTrip() async throws {
        let s = try await APIStack.start()
        let state = "a \"quoted\" \\ back\\slash\n\t\r\u{01}\u{1F} / ünïcødé ☎️ 电话"
        let body = try JSONSerialization.data(withJSONObject: [
            "to": "+15551234567", "from": "+15557654321", "url": "https://example.com/a/b?c=d", "client_state": state,
        ])
        let created = try s.api.request("POST", "/v1/calls", key: s.key, body: String(decoding: body, as: UTF8.self))
        #expect(created.status == 201, "\(created.body)")
        #expect(created.json["client_state"] as? String == state)
        #expect(created.body.contains("https://example.com/a/b?c=d"), "slashes are not escaped")
        let id = try #require(created.json["id"] as? String)
        let fetched = try s.api.request("GET", "/v1/calls/\(id)", key: s.key)
        #expect(fetched.json["client_state"] as? String == state)
        let listed = try s.api.request("GET", "/v1/calls", key: s.key)
        #expect(((listed.json["calls"] as? [[String: Any]])?.first?["client_state"] as? String) == state)
        s.stop()
    }

    @Test("with regions.yaml, a region it does not name is refused (400, 21223) and one it names is accepted")
    func regionValidated() async throws {
        let s = try await APIStack.start { dir in
            let config = dir.file("regions.yaml")
            try """
            proxy:
              listen: [ "udp://127.0.0.1:5999" ]
            regions:
              us-east-1:
                nodes:
                  - { name: fs-e1, sip: "127.0.0.1:5980", esl: "127.0.0.1:8921" }
              us-west-2:
                nodes:
                  - { name: fs-w1, sip: "127.0.0.1:5982", esl: "127.0.0.1:8923" }

            """.write(to: config, atomically: true, encoding: .utf8)
            return ["--config", config.path]
        }
        let unknown = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(extra: ", \"region\": \"eu-west-9\""))
        #expect(unknown.status == 400 && unknown.json["code"] as? Int == 21223 && unknown.json["field"] as? String == "region", "\(unknown.body)")
        #expect((unknown.json["message"] as? String)?.contains("us-east-1, us-west-2") == true)
        let known = try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body(extra: ", \"region\": \"us-west-2\""))
        #expect(known.status == 201, "\(known.body)")
        s.stop()
    }

    @Test("/healthz, /metrics, and an /openapi.yaml whose paths are exactly the routes")
    func serviceEndpoints() async throws {
        let s = try await APIStack.start()
        let h = try s.api.request("GET", "/healthz", key: nil)
        #expect(h.status == 200)
        #expect((h.json["checks"] as? [String: String]) == ["postgres": "ok", "nats": "ok"])
        _ = try s.api.request("GET", "/v1/calls", key: s.key)
        let m = try s.api.request("GET", "/metrics", key: nil)
        #expect(m.status == 200)
        #expect(m.body.contains("hb_requests") || m.body.contains("http_requests"), "request metrics are exported: \(m.body.prefix(300))")
        let doc = try s.api.request("GET", "/openapi.yaml", key: nil)
        #expect(doc.status == 200)
        let yaml = try #require(try Yams.load(yaml: doc.body) as? [String: Any])
        let paths = try #require(yaml["paths"] as? [String: Any])
        var documented: Set<String> = []
        for (path, ops) in paths {
            for method in (ops as? [String: Any] ?? [:]).keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let routed = Set(APIServer.routes.map { "\($0.method) \($0.path)" })
        #expect(
            documented == routed, "documented but not routed: \(documented.subtracting(routed)); routed but not documented: \(routed.subtracting(documented))")
        s.stop()
    }
}
