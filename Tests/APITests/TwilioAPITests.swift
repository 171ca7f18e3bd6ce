import Foundation
import Store
import Testing
import TestSupport

/// The Twilio-compatible Calls API (`/2010-04-01`), driven by the official `twilio` Python
/// package with only its base URL changed, and by raw HTTP for what a client library hides.
@Suite("Twilio-compatible Calls API", .serialized, .timeLimit(.minutes(4)))
struct TwilioAPITests {
    static func credentials(_ s: APIStack, name: String = "acme") async throws -> TwilioSDK.Credentials {
        let pool = PostgresPool(conninfo: s.postgres.url, size: 1)
        defer { Task { await pool.shutdown() } }
        let row = try #require(try await pool.query("SELECT id::text AS id, signing_secret FROM accounts WHERE name = $1", [name]).first)
        return TwilioSDK.Credentials(accountID: row["id"]!, secret: row["signing_secret"]!)
    }

    static func basic(_ c: TwilioSDK.Credentials) -> [String: String] {
        ["Authorization": "Basic " + Data("\(c.accountSID):\(c.authToken)".utf8).base64EncodedString()]
    }

    @Test("the twilio SDK: create, fetch, list and stream 120 calls over pages of 50, filters, cancel, delete, and Twilio's errors")
    func officialClient() async throws {
        let s = try await APIStack.start()
        let creds = try await Self.credentials(s)
        let other = try await Self.credentials(s, name: "globex")
        let result = try await TwilioSDK.run(
            """
            out = {}
            first = client.calls.create(to='+15551230000', from_='+15557654321', url='https://example.com/twiml',
                                        status_callback='https://example.com/status', status_callback_event=['initiated', 'answered'],
                                        timeout=30, record=True, machine_detection='Enable')
            out['sid'] = first.sid
            out['account_sid'] = first.account_sid
            out['status'] = first.status
            out['direction'] = first.direction
            out['created_is_datetime'] = isinstance(first.date_created, datetime.datetime)
            out['created_has_zone'] = first.date_created.tzinfo is not None if first.date_created else False
            fetched = client.calls(first.sid).fetch()
            out['fetched_sid'] = fetched.sid
            out['fetched_to'] = fetched.to
            out['fetched_uri'] = fetched.uri
            for i in range(1, 120):
                client.calls.create(to='+1555123%04d' % i, from_='+15557654321', twiml='<Response><Say>hi</Say></Response>')
            listed = client.calls.list(page_size=50)
            out['listed'] = len(listed)
            out['listed_unique'] = len(set(c.sid for c in listed))
            streamed = list(client.calls.stream(page_size=50))
            out['streamed'] = len(streamed)
            out['streamed_unique'] = len(set(c.sid for c in streamed))
            page = client.calls.page(page_size=50)
            pages, seen = 1, len(list(page))
            while page.next_page_url:
                page = page.next_page()
                pages += 1
                seen += len(list(page))
            out['pages'] = pages
            out['paged'] = seen
            out['filtered_to'] = [c.to for c in client.calls.list(to='+15551230007')]
            out['filtered_status'] = len(client.calls.list(status='queued', page_size=20))
            out['filtered_start'] = len(client.calls.list(start_time_after=datetime.datetime(2020, 1, 1)))
            canceled = client.calls(first.sid).update(status='canceled')
            out['canceled'] = canceled.status
            out['canceled_fetched'] = client.calls(first.sid).fetch().status
            out['canceled_listed'] = len(client.calls.list(status='canceled'))
            def error(f):
                try:
                    f()
                    return None
                except TwilioRestException as e:
                    return [e.status, e.code]
            out['bad_to'] = error(lambda: client.calls.create(to='12345', from_='+15557654321', url='https://example.com/x'))
            out['bad_from'] = error(lambda: client.calls.create(to='+15551234567', from_='nobody', url='https://example.com/x'))
            out['no_url'] = error(lambda: client.calls.create(to='+15551234567', from_='+15557654321'))
            out['bad_timeout'] = error(lambda: client.calls.create(to='+15551234567', from_='+15557654321', url='https://e.com/x', timeout=0))
            out['unknown_call'] = error(lambda: client.calls('CA' + '0' * 32).fetch())
            out['delete_queued'] = error(lambda: client.calls(listed[0].sid).delete())
            out['deleted'] = client.calls(first.sid).delete()
            out['deleted_fetch'] = error(lambda: client.calls(first.sid).fetch())
            out['after_delete'] = len(client.calls.list(page_size=100))
            wrong = Client(sid, 'f' * 64)
            wrong.api.base_url = base
            out['wrong_token'] = error(lambda: wrong.calls(listed[0].sid).fetch())
            intruder = Client(args[0], args[1])
            intruder.api.base_url = base
            out['other_account_fetch'] = error(lambda: intruder.api.v2010.accounts(sid).calls(listed[0].sid).fetch())
            out['other_account_sees'] = len(intruder.calls.list())
            return out
            """, base: "http://127.0.0.1:\(s.api.port)", credentials: creds, arguments: [other.accountSID, other.authToken])
        let sid = try #require(result["sid"] as? String)
        #expect(sid.hasPrefix("CA") && sid.count == 34, "\(sid)")
        #expect(result["account_sid"] as? String == creds.accountSID)
        #expect(result["status"] as? String == "queued")
        #expect(result["direction"] as? String == "outbound-api")
        #expect(result["created_is_datetime"] as? Bool == true, "RFC 2822 dates parse in the SDK")
        #expect(result["created_has_zone"] as? Bool == true)
        #expect(result["fetched_sid"] as? String == sid)
        #expect(result["fetched_to"] as? String == "+15551230000")
        #expect(result["fetched_uri"] as? String == "/2010-04-01/Accounts/\(creds.accountSID)/Calls/\(sid).json")
        #expect(result["listed"] as? Int == 120 && result["listed_unique"] as? Int == 120, "\(result)")
        #expect(result["streamed"] as? Int == 120 && result["streamed_unique"] as? Int == 120, "\(result)")
        #expect(result["pages"] as? Int == 3 && result["paged"] as? Int == 120, "\(result)")
        #expect(result["filtered_to"] as? [String] == ["+15551230007"])
        #expect(result["filtered_status"] as? Int == 120)
        #expect(result["filtered_start"] as? Int == 0, "no call has started: none is placed without an orchestrator")
        #expect(result["canceled"] as? String == "canceled")
        #expect(result["canceled_fetched"] as? String == "canceled")
        #expect(result["canceled_listed"] as? Int == 1)
        #expect(result["bad_to"] as? [Int] == [400, 21211], "\(result)")
        #expect(result["bad_from"] as? [Int] == [400, 21212])
        #expect(result["no_url"] as? [Int] == [400, 21205])
        #expect(result["bad_timeout"] as? [Int] == [400, 20001])
        #expect(result["unknown_call"] as? [Int] == [404, 20404])
        #expect(result["delete_queued"] as? [Int] == [409, 20009])
        #expect(result["deleted"] as? Bool == true)
        #expect(result["deleted_fetch"] as? [Int] == [404, 20404])
        #expect(result["after_delete"] as? Int == 119, "the deleted call is gone from the list")
        #expect(result["wrong_token"] as? [Int] == [401, 20003])
        #expect(result["other_account_fetch"] as? [Int] == [404, 20404], "another account's path is not found")
        #expect(result["other_account_sees"] as? Int == 0)
        // The same calls on /v1, by UUID.
        let v1 = try s.api.request("GET", "/v1/calls?page_size=100", key: s.key)
        #expect((v1.json["calls"] as? [Any])?.count == 100)
        s.stop()
    }

    @Test("raw HTTP: exactly Twilio's page keys, filters and page size inside next_page_uri, RFC 2822 dates, Twilio's error shape")
    func wireShape() async throws {
        let s = try await APIStack.start()
        let creds = try await Self.credentials(s)
        let path = "/2010-04-01/Accounts/\(creds.accountSID)/Calls.json"
        let form = ["Content-Type": "application/x-www-form-urlencoded"]
        for i in 0..<5 {
            let r = try s.api.request(
                "POST", path, key: nil, body: "To=%2B1555000000\(i)&From=%2B15557654321&Url=https%3A%2F%2Fexample.com%2Ft&StatusCallbackEvent=ringing",
                headers: Self.basic(creds).merging(form) { a, _ in a })
            #expect(r.status == 201, "\(r.body)")
        }
        let created = try s.api.request(
            "POST", "/2010-04-01/Accounts/\(creds.accountSID)/Calls", key: nil, body: "To=%2B15550000009&From=%2B15557654321&Twiml=%3CResponse%2F%3E",
            headers: Self.basic(creds).merging(form) { a, _ in a })
        #expect(created.status == 201, "without .json too: \(created.body)")
        let call = created.json
        let rfc2822 = #/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/#
        let dateCreated = try #require(call["date_created"] as? String)
        #expect(dateCreated.wholeMatch(of: rfc2822) != nil, "\(dateCreated)")
        #expect(call["queue_time"] is String && call["price_unit"] as? String == "USD" && call["api_version"] as? String == "2010-04-01")
        #expect(call.keys.contains("start_time") && call["start_time"] is NSNull)
        // A list GET with a form Content-Type, as Twilio's clients send it.
        let page = try s.api.request("GET", path + "?PageSize=2&To=%2B15550000001", key: nil, headers: Self.basic(creds).merging(form) { a, _ in a })
        #expect(page.status == 200, "\(page.body)")
        #expect(Set(page.json.keys) == ["calls", "start", "end", "page", "page_size", "uri", "first_page_uri", "next_page_uri", "previous_page_uri"])
        #expect((page.json["calls"] as? [Any])?.count == 1)
        let all = try s.api.request("GET", path + "?PageSize=2&Status=queued", key: nil, headers: Self.basic(creds))
        let next = try #require(all.json["next_page_uri"] as? String)
        #expect(next.hasPrefix(path + "?") && next.contains("PageSize=2") && next.contains("Status=queued") && next.contains("Page=1"), "\(next)")
        #expect(next.contains("PageToken=PA"))
        let second = try s.api.request("GET", next, key: nil, headers: Self.basic(creds))
        #expect(second.status == 200 && second.json["page"] as? Int == 1 && (second.json["calls"] as? [Any])?.count == 2, "\(second.body)")
        #expect(second.json["start"] as? Int == 2)
        // Offset paging without a token, and StartTime< as its encoded form.
        let third = try s.api.request("GET", path + "?PageSize=2&Page=2", key: nil, headers: Self.basic(creds))
        #expect((third.json["calls"] as? [Any])?.count == 2 && third.json["next_page_uri"] is NSNull, "\(third.body)")
        let before = try s.api.request("GET", path + "?EndTime%3C=2030-01-01", key: nil, headers: Self.basic(creds))
        #expect(before.status == 200 && (before.json["calls"] as? [Any])?.isEmpty == true, "no call has ended")
        // Errors in Twilio's shape, and nothing else.
        let bad = try s.api.request("GET", path + "?StartTime%3E=yesterday", key: nil, headers: Self.basic(creds))
        #expect(bad.status == 400 && bad.json["code"] as? Int == 20001)
        #expect(Set(bad.json.keys) == ["code", "message", "more_info", "status"], "\(bad.body)")
        #expect((bad.json["more_info"] as? String)?.hasPrefix("https://www.twilio.com/docs/errors/") == true)
        let noAuth = try s.api.request("GET", path, key: nil)
        #expect(noAuth.status == 401 && noAuth.json["code"] as? Int == 20003 && noAuth.headers["www-authenticate"]?.hasPrefix("Basic") == true)
        let json = try s.api.request(
            "POST", path, key: nil, body: "{\"To\": \"+15551234567\"}", headers: Self.basic(creds).merging(["Content-Type": "application/json"]) { _, b in b })
        #expect(json.status == 415 && Set(json.json.keys) == ["code", "message", "more_info", "status"])
        let badForm = try s.api.request("POST", path, key: nil, body: "To=%ZZ", headers: Self.basic(creds).merging(form) { a, _ in a })
        #expect(badForm.status == 400 && badForm.json["code"] as? Int == 20001)
        let noRoute = try s.api.request("GET", "/2010-04-01/Accounts/\(creds.accountSID)/Nope.json", key: nil, headers: Self.basic(creds))
        #expect(noRoute.status == 404 && Set(noRoute.json.keys) == ["code", "message", "more_info", "status"], "\(noRoute.body)")
        let badEvent = try s.api.request(
            "POST", path, key: nil, body: "To=%2B15551234567&From=%2B15557654321&Url=https%3A%2F%2Fe.com&StatusCallbackEvent=exploded",
            headers: Self.basic(creds).merging(form) { a, _ in a })
        #expect(badEvent.status == 400 && badEvent.json["code"] as? Int == 21610)
        let app = try s.api.request(
            "POST", path, key: nil, body: "To=%2B15551234567&From=%2B15557654321&ApplicationSid=AP123", headers: Self.basic(creds).merging(form) { a, _ in a })
        #expect(app.status == 400 && app.json["code"] as? Int == 21218)
        s.stop()
    }

    @Test("over the account's concurrent-call limit: 429 with code 20429, nothing stored; an Idempotency-Key retry still replays")
    func concurrencyLimit() async throws {
        let s = try await APIStack.start()
        let creds = try await Self.credentials(s)
        let limits = try ManagedProcess(
            name: "limits", executable: try SwitchyardBinary.path(),
            arguments: ["accounts", "limits", "--account", creds.accountSID, "--max-concurrent", "3", "--database", s.postgres.url], directory: s.dir.url,
            maxLifetime: .seconds(60))
        #expect(await limits.waitForExit(timeout: .seconds(60)) && limits.exitStatus == 0, "\(limits.outputTail())")
        let path = "/2010-04-01/Accounts/\(creds.accountSID)/Calls.json"
        var headers = Self.basic(creds)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        let body = "To=%2B15551234567&From=%2B15557654321&Url=https%3A%2F%2Fexample.com%2Ft"
        var keyed = headers
        keyed["Idempotency-Key"] = "order-1"
        #expect(try s.api.request("POST", path, key: nil, body: body, headers: keyed).status == 201)
        for _ in 0..<2 { #expect(try s.api.request("POST", path, key: nil, body: body, headers: headers).status == 201) }
        let over = try s.api.request("POST", path, key: nil, body: body, headers: headers)
        #expect(over.status == 429 && over.json["code"] as? Int == 20429, "\(over.body)")
        let replay = try s.api.request("POST", path, key: nil, body: body, headers: keyed)
        #expect(replay.status == 201 && replay.headers["idempotent-replayed"] == "true", "\(replay.body)")
        let pool = PostgresPool(conninfo: s.postgres.url, size: 1)
        #expect(try await pool.query("SELECT count(*) AS n FROM calls").first?["n"] == "3")
        // The SDK raises its usual exception for it.
        let sdk = try await TwilioSDK.run(
            """
            try:
                client.calls.create(to='+15551234567', from_='+15557654321', url='https://example.com/t')
                return {'raised': None}
            except TwilioRestException as e:
                return {'raised': [e.status, e.code]}
            """, base: "http://127.0.0.1:\(s.api.port)", credentials: creds)
        #expect(sdk["raised"] as? [Int] == [429, 20429])
        // Concurrent creates share batches: the limit still holds exactly (10 with 3 open: 7 of 20).
        try await pool.query("UPDATE accounts SET max_concurrent_calls = 10")
        let port = s.api.port, sendHeaders = headers, sendPath = path, sendBody = body
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    (try? HTTPTestClient.request(port: port, "POST", sendPath, headers: sendHeaders, body: sendBody))?.status ?? -1
                }
            }
            var all: [Int] = []
            for await st in group { all.append(st) }
            return all
        }
        #expect(statuses.filter { $0 == 201 }.count == 7 && statuses.filter { $0 == 429 }.count == 13, "\(statuses.sorted())")
        #expect(try await pool.query("SELECT count(*) AS n FROM calls").first?["n"] == "10")
        // Calls that end make room again (the bound is above the true count until a create counts).
        try await pool.query("UPDATE calls SET status = 'completed' WHERE id IN (SELECT id FROM calls ORDER BY created_at LIMIT 4)")
        var later: [Int] = []
        for _ in 0..<5 { later.append(try s.api.request("POST", path, key: nil, body: body, headers: headers).status) }
        #expect(later == [201, 201, 201, 201, 429], "\(later)")
        // /v1 calls do not count against the Twilio surface's limit.
        #expect(try s.api.request("POST", "/v1/calls", key: s.key, body: APIStack.body()).status == 201)
        await pool.shutdown()
        s.stop()
    }
}
