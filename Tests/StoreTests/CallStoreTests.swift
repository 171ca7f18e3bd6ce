import Store
import Testing
import TestSupport

/// The call row's status moves forward only, one call at a time or many in one statement.
@Suite("Call store", .serialized, .timeLimit(.minutes(2)))
struct CallStoreTests {
    @Test("advanceMany moves several calls in one statement, forward only, and logs each change with its causes and attempts")
    func advanceMany() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        var ids: [String] = []
        for _ in 0..<3 {
            let id = newUUID()
            _ = try await calls.insert(.init(id: id, accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x"))
            ids.append(id)
        }
        _ = try await calls.advance(id: ids[2], to: "completed", node: "fs-e1")
        let attempt = CallStore.Event(kind: "attempt", node: "fs-e1", region: "us-east-1", result: "created \"quoted\" \\ back", elapsedMs: 12)
        let changed = try await calls.advanceMany([
            .init(id: ids[0], status: "ringing", node: "fs-e1", events: [attempt]),
            .init(id: ids[1], status: "failed", node: "fs-e2", cause: "node-lost"),
            .init(id: ids[2], status: "ringing", node: "fs-e1"),  // already completed: no move
        ])
        #expect(Set(changed.keys) == [ids[0], ids[1]])
        #expect(changed[ids[0]]?.status == "ringing")
        #expect(changed[ids[1]]?.endCause == "node-lost")
        #expect(try await calls.get(id: ids[2])?.status == "completed", "forward only")
        let log = try await calls.events(account: account.id, id: ids[0]) ?? []
        #expect(log.map(\.kind) == ["attempt", "status"] || log.map(\.kind) == ["status", "attempt"], "\(log)")
        #expect(log.first { $0.kind == "attempt" }?.result == "created \"quoted\" \\ back", "array literal escaping")
        #expect(log.first { $0.kind == "attempt" }?.elapsedMs == 12)
        #expect((try await calls.events(account: account.id, id: ids[1]) ?? []).contains { $0.kind == "status" && $0.detail == "node-lost" })
        #expect(try await calls.advanceMany([]).isEmpty)
        await pool.shutdown()
        server.stop()
    }

    @Test("every insert path puts the call in the outbox in its own statement; marking takes it out; the sweeper sees only old entries")
    func outbox() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        func new(key: String? = nil, api: String = "v1") -> CallStore.NewCall {
            var c = CallStore.NewCall(
                id: newUUID(), accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x", idempotencyKey: key)
            c.api = api
            return c
        }
        let single = new(), keyed = new(key: "k1"), limited = new(api: "2010-04-01")
        _ = try await calls.insert(single)
        _ = try await calls.insert(keyed)
        _ = try await calls.insert(new(key: "k1"))  // a replay: no second call, no second outbox row
        _ = try await calls.insert(limited, limitConcurrency: true)
        let batch = [new(), new(api: "2010-04-01")]
        _ = try await calls.insertBatch([(batch[0], false), (batch[1], true)])
        let all = [single.id, keyed.id, limited.id] + batch.map(\.id)
        func outboxed() async throws -> Set<String> {
            Set(try await pool.query("SELECT call_id::text AS id FROM call_outbox").rows.compactMap { $0["id"] })
        }
        #expect(try await outboxed() == Set(all))
        #expect(try await calls.unpublished(olderThan: .seconds(60)).isEmpty, "younger than the age: not the sweeper's yet")
        #expect(Set(try await calls.unpublished(olderThan: .zero).map(\.id)) == Set(all))
        try await calls.markPublished(ids: [single.id, keyed.id, "not-a-uuid"])
        try await calls.markPublished(id: limited.id)
        #expect(try await outboxed() == Set(batch.map(\.id)))
        #expect(Set(try await calls.unpublished(olderThan: .zero).map(\.id)) == Set(batch.map(\.id)))
        #expect(try await calls.get(id: single.id)?.status == "queued", "marking leaves the call's row alone")
        await pool.shutdown()
        server.stop()
    }

    @Test("claim is a compare-and-set on the node: of two placers that read the same row, one claims it; none claims a call past queued")
    func claimCompareAndSet() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        let id = newUUID()
        _ = try await calls.insert(.init(id: id, accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x"))
        #expect(try await calls.claim(id: id, node: "fs-e1")?.node == "fs-e1", "a fresh call: no node expected")
        #expect(try await calls.claim(id: id, node: "fs-e2") == nil, "a second job that read the fresh row loses")
        #expect(try await calls.claim(id: id, node: "fs-e2", expectedNode: "fs-w1") == nil, "another node expected: loses")
        #expect(try await calls.claim(id: id, node: "fs-e2", expectedNode: "fs-e1")?.node == "fs-e2", "the next attempt of the placer")
        _ = try await calls.advance(id: id, to: "ringing", node: "fs-e2")
        #expect(try await calls.claim(id: id, node: "fs-e1", expectedNode: "fs-e2") == nil, "past queued")
        await pool.shutdown()
        server.stop()
    }

    @Test("claimMany: one result per claim in order; a call named twice in one batch is claimed once, for its first claim")
    func claimBatch() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        var ids: [String] = []
        for _ in 0..<3 {
            let id = newUUID()
            _ = try await calls.insert(.init(id: id, accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x"))
            ids.append(id)
        }
        _ = try await calls.claim(id: ids[2], node: "fs-e1")
        let rows = try await calls.claimMany([
            .init(id: ids[1], node: "fs-e1"), .init(id: ids[0], node: "fs-e2"), .init(id: ids[1], node: "fs-e2"),
            .init(id: "not-a-uuid", node: "fs-e1"), .init(id: ids[2], node: "fs-e2"),
        ])
        #expect(rows.map { $0?.node } == ["fs-e1", "fs-e2", nil, nil, nil])
        #expect(try await calls.get(id: ids[1])?.node == "fs-e1", "the first claim of the call won")
        #expect(try await calls.claimMany([]).isEmpty)
        await pool.shutdown()
        server.stop()
    }

    @Test("ringing and answered are HOT updates (no index touched); a call leaves the open-call index when it ends")
    func statusChangesAreHOT() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        var ids: [String] = []
        for _ in 0..<10 {
            let id = newUUID()
            _ = try await calls.insert(.init(id: id, accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x"))
            ids.append(id)
        }
        _ = try await calls.claimMany(ids.map { .init(id: $0, node: "fs-e1") })
        func hotUpdates() async throws -> Int {
            try await pool.query("SELECT n_tup_hot_upd AS n FROM pg_stat_user_tables WHERE relname = 'calls'").first?.optionalInt("n") ?? -1
        }
        // Statistics reach the view within a second or so of each connection going idle.
        func settled(_ done: (Int) -> Bool) async throws -> Int {
            var n = try await hotUpdates()
            for _ in 0..<50 where !done(n) {
                try await Task.sleep(for: .milliseconds(100))
                n = try await hotUpdates()
            }
            return n
        }
        let before = try await settled { $0 >= 0 }
        _ = try await calls.advanceMany(ids.map { .init(id: $0, status: "ringing") })
        _ = try await calls.advanceMany(ids.map { .init(id: $0, status: "in-progress") })
        let after = try await settled { $0 - before >= 10 }
        #expect(after - before >= 10, "of 20 ringing/answered updates, \(after - before) were HOT")
        #expect(try await calls.open(node: "fs-e1").count == 10)
        _ = try await calls.advanceMany(ids.prefix(4).map { .init(id: $0, status: "completed") })
        #expect(try await calls.open(node: "fs-e1").map(\.id).sorted() == Array(ids.dropFirst(4)).sorted())
        await pool.shutdown()
        server.stop()
    }

    @Test("the call plane's batch statements are planned once per connection; the call list is planned with its filters")
    func batchStatementsUseGenericPlans() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 1)
        try await Migrations.migrate(pool)
        let account = try await AccountStore(pool: pool).create(name: "acme").account
        let calls = CallStore(pool: pool)
        for n in 1...7 {
            var ids: [String] = []
            for _ in 0..<n {
                let id = newUUID()
                _ = try await calls.insert(.init(id: id, accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x"))
                ids.append(id)
            }
            _ = try await calls.claimMany(ids.map { .init(id: $0, node: "fs-e1") })
            _ = try await calls.advanceMany(ids.map { .init(id: $0, status: "ringing") })
            _ = try await calls.list(account: account.id, pageSize: 2)
        }
        let plans = try await pool.query("SELECT name, generic_plans::text AS g, custom_plans::text AS c FROM pg_prepared_statements").rows
        func count(_ name: String) -> (generic: Int, custom: Int) {
            let row = plans.first { $0["name"] == name }
            return (Int(row?["g"] ?? "") ?? -1, Int(row?["c"] ?? "") ?? -1)
        }
        for name in ["claim_calls", "advance_calls"] {
            #expect(count(name).generic == 7 && count(name).custom == 0, "\(name): \(count(name))")
        }
        #expect(count("list_calls").custom >= 5, "list_calls: \(count("list_calls"))")
        await pool.shutdown()
        server.stop()
    }

    @Test("a paced call that ends while waiting for its slot leaves waiting (released), so the pacing poll never sees it again")
    func pacedCallEndsReleased() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let accounts = AccountStore(pool: pool)
        let account = try await accounts.create(name: "acme").account
        try await accounts.setLimits(account: account.id, callsPerSecond: 0.01, maxConcurrentCalls: nil)
        let calls = CallStore(pool: pool)
        var ids: [String] = []
        for _ in 0..<3 {
            var new = CallStore.NewCall(id: newUUID(), accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x")
            new.paced = true
            _ = try await calls.insert(new)
            ids.append(new.id)
        }
        #expect(try await calls.reservePaceSlot(id: ids[0]) == .placeNow)
        #expect(try await calls.reservePaceSlot(id: ids[1]) == .waiting, "100 s after the first")
        #expect(try await calls.reservePaceSlot(id: ids[2]) == .waiting)
        func paceState(_ id: String) async throws -> String? {
            try await pool.query("SELECT pace_state FROM calls WHERE id = $1::uuid", [id]).first?["pace_state"]
        }
        _ = try await calls.cancelQueued(account: account.id, id: ids[1])
        _ = try await calls.advanceMany([.init(id: ids[2], status: "failed", cause: "test")])
        #expect(try await paceState(ids[1]) == "released", "canceled while waiting")
        #expect(try await paceState(ids[2]) == "released", "ended by a status write while waiting")
        let waiting = try await pool.query("SELECT count(*) AS n FROM calls WHERE pace_state IN ('waiting', 'due')").first?["n"]
        #expect(waiting == "0")
        await pool.shutdown()
        server.stop()
    }

    @Test("limited creates racing on separate connections (as from several API instances), batched and keyed, admit exactly the account's limit")
    func concurrentLimit() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 8)
        try await Migrations.migrate(pool)
        let accounts = AccountStore(pool: pool)
        let account = try await accounts.create(name: "acme").account
        try await accounts.setLimits(account: account.id, callsPerSecond: nil, maxConcurrentCalls: 10)
        let calls = CallStore(pool: pool)
        @Sendable func twilioCall(key: String? = nil) -> CallStore.NewCall {
            var c = CallStore.NewCall(
                id: newUUID(), accountID: account.id, to: "+15551234567", from: "+15557654321", url: "https://example.com/x", idempotencyKey: key)
            c.api = "2010-04-01"
            return c
        }
        @Sendable func race(batches: Int, keyed: Int, round: Int) async -> [CallStore.InsertOutcome] {
            await withTaskGroup(of: [CallStore.InsertOutcome].self) { group in
                for _ in 0..<batches { group.addTask { (try? await calls.insertBatch((0..<3).map { _ in (twilioCall(), true) })) ?? [] } }
                for k in 0..<keyed {
                    group.addTask { (try? await calls.insert(twilioCall(key: "r\(round)-\(k)"), limitConcurrency: true)).map { [$0] } ?? [] }
                }
                var all: [CallStore.InsertOutcome] = []
                for await o in group { all += o }
                return all
            }
        }
        func tally(_ o: [CallStore.InsertOutcome]) -> (created: Int, refused: Int) {
            (
                o.filter { if case .created = $0 { true } else { false } }.count,
                o.filter { if case .overLimit(10) = $0 { true } else { false } }.count
            )
        }
        // 6 batches of 3 and 4 keyed creates at once: 22 asked, 10 fit; an error (a deadlock)
        // would lose outcomes.
        let first = tally(await race(batches: 6, keyed: 4, round: 1))
        #expect(first.created == 10 && first.refused == 12, "\(first)")
        #expect(try await pool.query("SELECT count(*) AS n FROM calls").first?["n"] == "10")
        // Five end: exactly five more fit, racing again.
        try await pool.query("UPDATE calls SET status = 'completed' WHERE id IN (SELECT id FROM calls ORDER BY created_at LIMIT 5)")
        let second = tally(await race(batches: 6, keyed: 4, round: 2))
        #expect(second.created == 5 && second.refused == 17, "\(second)")
        #expect(try await pool.query("SELECT count(*) AS n FROM calls WHERE status = 'queued'").first?["n"] == "10")
        await pool.shutdown()
        server.stop()
    }
}
