import Foundation
import Store
import Testing
import TestSupport

/// Calls created through the Twilio surface, placed by the real orchestrator on an emulated
/// node: Twilio's pacing (calls per second per account, kept in PostgreSQL) and Twilio's
/// status callbacks, checked with the official `twilio` package.
@Suite("Twilio surface through the call plane", .serialized, .timeLimit(.minutes(4)))
struct TwilioCallPlaneTests {
    static let final: Set<String> = ["completed", "busy", "failed", "no-answer", "canceled"]

    @Test("paced at the account's calls per second (queue_time grows), then completed with Twilio's callbacks, signed for RequestValidator")
    func pacedWithCallbacks() async throws {
        let s = try await CallPlaneStack(nodes: 1, nodeArguments: ["--ring-ms", "50", "--talk-ms", "1200"])
        let receiver = try await CallbackReceiver.start(in: s.dir)
        // Two orchestrators: the rate holds across them.
        try await s.startWorker("orchestrator", name: "orch-a")
        try await s.startWorker("orchestrator", name: "orch-b")
        try await s.startWorker("cdr")
        let row = try #require(try await s.pool.query("SELECT id::text AS id, signing_secret FROM accounts").first)
        let creds = TwilioSDK.Credentials(accountID: row["id"]!, secret: row["signing_secret"]!)
        try await s.pool.query("UPDATE accounts SET calls_per_second = 4")
        let result = try await TwilioSDK.run(
            """
            sids = []
            for i in range(8):
                c = client.calls.create(to='+1555100%04d' % i, from_='+15557654321', url='https://example.com/twiml',
                                        status_callback=args[0], status_callback_event=['initiated', 'ringing', 'answered', 'completed'])
                sids.append(c.sid)
            return {'sids': sids}
            """, base: "http://127.0.0.1:\(s.api.port)", credentials: creds, arguments: [receiver.url])
        let sids = try #require(result["sids"] as? [String])
        #expect(sids.count == 8)
        let allDone = await Poll.until(timeout: .seconds(30), interval: .milliseconds(200)) {
            (try? await s.pool.query("SELECT count(*) AS n FROM calls WHERE status IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')").first?["n"])
                == "8"
        }
        #expect(allDone)
        let placed = try await s.pool.query(
            """
            SELECT extract(epoch FROM placed_at)::float8 AS t, extract(epoch FROM scheduled_at)::float8 AS slot, status
            FROM calls WHERE placed_at IS NOT NULL ORDER BY placed_at
            """)
        let times = placed.rows.compactMap { $0["t"].flatMap(Double.init) }
        let slots = placed.rows.compactMap { $0["slot"].flatMap(Double.init) }.sorted()
        #expect(times.count == 8, "\(placed.rows)")
        #expect(placed.rows.allSatisfy { $0["status"] == "completed" }, "\(placed.rows)")
        if let first = times.first, let last = times.last {
            // 8 calls at 4 per second: slots 0.25 s apart, so at least 1.75 s from first to last
            // (a little less for the 50 ms scheduler tick), and not much more.
            #expect(last - first >= 1.6 && last - first <= 4, "placed over \(last - first) s")
        }
        // The pacer's slots are 1/rate apart, and no call is placed before its slot (the
        // placements themselves may bunch when a worker is slow: that is scheduling, not rate).
        #expect(slots.count == 8, "\(placed.rows)")
        for (a, b) in zip(slots, slots.dropFirst()) { #expect(b - a >= 0.24, "consecutive slots \(b - a) s apart") }
        for row in placed.rows {
            if let t = row["t"].flatMap(Double.init), let slot = row["slot"].flatMap(Double.init) {
                #expect(t >= slot - 0.025, "placed \(slot - t) s before its slot")
            }
        }
        // The SDK sees them completed, with Twilio's fields.
        let fetched = try await TwilioSDK.run(
            """
            out = []
            for sid in args:
                c = client.calls(sid).fetch()
                out.append({'status': c.status, 'duration': c.duration, 'queue_time': c.queue_time,
                            'start': isinstance(c.start_time, datetime.datetime), 'end': isinstance(c.end_time, datetime.datetime)})
            return {'calls': out}
            """, base: "http://127.0.0.1:\(s.api.port)", credentials: creds, arguments: sids)
        let calls = try #require(fetched["calls"] as? [[String: Any]])
        #expect(calls.count == 8)
        for c in calls {
            #expect(c["status"] as? String == "completed")
            #expect((c["duration"] as? String).flatMap(Int.init).map { $0 >= 1 } == true, "\(c)")
            #expect(c["start"] as? Bool == true && c["end"] as? Bool == true, "\(c)")
        }
        let queueTimes = calls.compactMap { ($0["queue_time"] as? String).flatMap(Int.init) }
        #expect((queueTimes.max() ?? 0) >= 1000, "the last call waited its turn: \(queueTimes)")
        // Twilio's callbacks: 4 per call, Twilio's SIDs, signed with the AuthToken.
        #expect(await Poll.until(timeout: .seconds(10)) { receiver.received.count >= 32 }, "\(receiver.received.count)")
        let got = receiver.received
        #expect(got.allSatisfy { sids.contains($0["CallSid"] ?? "") && $0["AccountSid"] == creds.accountSID }, "\(got.first ?? [:])")
        #expect(got.allSatisfy { $0["ApiVersion"] == "2010-04-01" && $0["CallbackSource"] == "call-progress-events" })
        let completed = got.filter { $0["CallStatus"] == "completed" }
        #expect(completed.count == 8 && completed.allSatisfy { Int($0["CallDuration"] ?? "") != nil }, "\(completed)")
        let check = try receiver.validateSignatures(secret: creds.authToken)
        #expect(check.total >= 32 && check.valid == check.total, "\(check)")
        #expect(await Poll.until(timeout: .seconds(10)) { (try? await s.cdrCount()) == 8 }, "one CDR per call")
        await s.stop()
    }

    @Test("StatusCallbackMethod=GET: the fields ride in the query, and RequestValidator accepts the signature over the whole URL")
    func getCallbacks() async throws {
        let s = try await CallPlaneStack(nodes: 1, nodeArguments: ["--ring-ms", "50", "--talk-ms", "300"])
        let receiver = try await CallbackReceiver.start(in: s.dir)
        try await s.startWorker("orchestrator")
        let row = try #require(try await s.pool.query("SELECT id::text AS id, signing_secret FROM accounts").first)
        let creds = TwilioSDK.Credentials(accountID: row["id"]!, secret: row["signing_secret"]!)
        let result = try await TwilioSDK.run(
            """
            c = client.calls.create(to='+15551000001', from_='+15557654321', url='https://example.com/twiml', status_callback=args[0] + '?tenant=a%20b&n=%C3%BC',
                                    status_callback_method='GET', status_callback_event=['ringing', 'completed'])
            return {'sid': c.sid}
            """, base: "http://127.0.0.1:\(s.api.port)", credentials: creds, arguments: [receiver.url])
        let sid = try #require(result["sid"] as? String)
        #expect(await Poll.until(timeout: .seconds(20)) { receiver.received.count >= 2 }, "\(receiver.received)")
        let got = receiver.received
        #expect(got.allSatisfy { $0["CallSid"] == sid && $0["tenant"] == "a b" && $0["n"] == "ü" }, "the callback URL's own query is kept: \(got)")
        #expect(Set(got.compactMap { $0["CallStatus"] }) == ["ringing", "completed"])
        let check = try receiver.validateSignatures(secret: creds.authToken)
        #expect(check.total >= 2 && check.valid == check.total, "\(check)")
        #expect(try receiver.validateSignatures(secret: String(repeating: "0", count: 64)).valid == 0)
        await s.stop()
    }
}
