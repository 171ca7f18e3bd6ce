import Store
import Testing
import TestSupport

/// The libpq layer against a real PostgreSQL started for this suite.
@Suite("Store: libpq pool and migrations", .serialized, .timeLimit(.minutes(2)))
struct PostgresPoolTests {
    @Test("queries with parameters, NULLs, SQLSTATE on errors, and unique violations told apart")
    func queriesAndErrors() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        let r = try await pool.query("SELECT $1::int + 1 AS n, $2::text AS t, NULL::text AS z", ["41", "héllo"])
        #expect(try r.first?.int("n") == 42)
        #expect(r.first?["t"] == "héllo")
        #expect(r.first?["z"] == nil)
        do {
            try await pool.query("SELECT * FROM no_such_table")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .queryFailed)
            #expect(error.sqlState == "42P01")
        }
        try await pool.query("CREATE TABLE t (k text PRIMARY KEY)")
        try await pool.query("INSERT INTO t VALUES ($1)", ["a"])
        do {
            try await pool.query("INSERT INTO t VALUES ($1)", ["a"])
            Issue.record("expected a unique violation")
        } catch {
            #expect(error.code == .uniqueViolation)
        }
        #expect(try await pool.query("SELECT count(*) AS n FROM t").first?.int("n") == 1, "the pool still works after errors")
        await pool.shutdown()
        server.stop()
    }

    @Test("a transaction commits as a whole or rolls back when its body throws")
    func transactions() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await pool.query("CREATE TABLE t (k text PRIMARY KEY)")
        try await pool.transaction { (c: PostgresConnectionHandle) throws(StoreError) in
            try c.execute("ins", "INSERT INTO t VALUES ($1)", ["a"])
            try c.execute("ins", "INSERT INTO t VALUES ($1)", ["b"])
        }
        do {
            try await pool.transaction { (c: PostgresConnectionHandle) throws(StoreError) in
                try c.execute("ins", "INSERT INTO t VALUES ($1)", ["c"])
                try c.execute("ins", "INSERT INTO t VALUES ($1)", ["a"])
            }
            Issue.record("expected the duplicate to fail the transaction")
        } catch {
            #expect(error.code == .uniqueViolation)
        }
        let keys = try await pool.query("SELECT k FROM t ORDER BY k").rows.compactMap { $0["k"] }
        #expect(keys == ["a", "b"], "c was rolled back with the failed transaction")
        await pool.shutdown()
        server.stop()
    }

    @Test("a named statement is planned once per connection unless it asks for the server's choice; ad-hoc queries and transactions switch back")
    func statementPlans() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 1)
        try await pool.query("CREATE TABLE t (id int PRIMARY KEY, v text)")
        try await pool.query("INSERT INTO t SELECT g, 'x' FROM generate_series(1, 200) g")
        // A batch statement of the call plane's shape: left to itself (auto), the server plans
        // it at every execution (and always the first five).
        let batch = "WITH i AS (SELECT * FROM unnest($1::int[], $2::text[]) AS i(id, v)) UPDATE t SET v = i.v FROM i WHERE t.id = i.id"
        let plans = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> [String: (generic: Int, custom: Int)] in
            for n in 1...8 {
                try c.execute("generic", batch, ["{\(n),\(n + 1)}", "{a,b}"])
                try c.execute("chosen", batch, ["{\(n),\(n + 1)}", "{a,b}"], plan: .serverChooses)
                // An ad-hoc query in between (generic again), and transactions begun in either
                // mode, one of them rolled back: inside, the switch lasts for the block only.
                try c.query("SELECT v FROM t WHERE id = $1", [String(n)])
                try c.query("BEGIN")
                try c.execute("in_tx", "UPDATE t SET v = $2 WHERE id = $1", [String(n), "c"])
                try c.query("COMMIT")
                try c.execute("chosen", batch, ["{\(n),\(n + 1)}", "{a,b}"], plan: .serverChooses)
                try c.query("BEGIN")
                try c.execute("in_tx_after_chosen", "UPDATE t SET v = $2 WHERE id = $1", [String(n), "d"])
                try c.query(n.isMultiple(of: 2) ? "COMMIT" : "ROLLBACK")
                try c.execute("chosen_after_tx", "SELECT v FROM t WHERE id = $1", [String(n)], plan: .serverChooses)
            }
            var out: [String: (generic: Int, custom: Int)] = [:]
            for row in try c.query("SELECT name, generic_plans::text AS g, custom_plans::text AS c FROM pg_prepared_statements").rows {
                out[row["name"] ?? ""] = (Int(row["g"] ?? "") ?? -1, Int(row["c"] ?? "") ?? -1)
            }
            return out
        }
        #expect(plans["generic"]?.generic == 8 && plans["generic"]?.custom == 0, "\(String(describing: plans["generic"]))")
        #expect((plans["chosen"]?.custom ?? 0) >= 5, "the server's choice: custom plans first, \(String(describing: plans["chosen"]))")
        for name in ["in_tx", "in_tx_after_chosen"] {
            #expect(plans[name]?.generic == 8 && plans[name]?.custom == 0, "\(name): \(String(describing: plans[name]))")
        }
        #expect((plans["chosen_after_tx"]?.custom ?? 0) >= 5, "the block's SET LOCAL ended with it: \(String(describing: plans["chosen_after_tx"]))")
        await pool.shutdown()
        server.stop()
    }

    @Test("many concurrent users share a small pool without blocking each other forever")
    func concurrentUse() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 3)
        try await pool.query("CREATE TABLE n (i int PRIMARY KEY)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask { try await pool.query("INSERT INTO n VALUES ($1)", [String(i)]) }
            }
            try await group.waitForAll()
        }
        #expect(try await pool.query("SELECT count(*) AS c FROM n").first?.int("c") == 200)
        await pool.shutdown()
        server.stop()
    }

    @Test("migrations apply once, even when two migrators start together, and make duplicate CDRs impossible")
    func migrations() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let a = PostgresPool(conninfo: server.url, size: 2)
        let b = PostgresPool(conninfo: server.url, size: 2)
        async let first = Migrations.migrate(a)
        async let second = Migrations.migrate(b)
        let applied = try await [first, second]
        #expect(applied.flatMap { $0 }.sorted() == Migrations.all.map(\.version), "each migration applied exactly once: \(applied)")
        #expect(try await Migrations.migrate(a).isEmpty, "nothing left to apply")
        let insert = "INSERT INTO cdr (channel_uuid, call_id, node, direction) VALUES ($1, $2, $3, $4) ON CONFLICT (node, channel_uuid) DO NOTHING"
        let r1 = try await a.query(insert, ["u-1", "c-1", "fs-e1", "inbound"])
        let r2 = try await a.query(insert, ["u-1", "c-1", "fs-e1", "inbound"])
        #expect(r1.affected == 1)
        #expect(r2.affected == 0, "the same channel twice writes nothing")
        await a.shutdown()
        await b.shutdown()
        server.stop()
    }

    @Test("a server that is not there fails with connectionFailed, quickly")
    func unreachable() async throws {
        let port = try FreePort.next()
        let pool = PostgresPool(conninfo: "postgresql://nobody@127.0.0.1:\(port)/x?connect_timeout=2", size: 1, reconnectWindow: .zero)
        let start = ContinuousClock.now
        do {
            try await pool.query("SELECT 1")
            Issue.record("expected a connection failure")
        } catch {
            #expect(error.code == .connectionFailed)
        }
        #expect(ContinuousClock.now - start < .seconds(3))
        // A health check never waits out the reconnect window.
        let patient = PostgresPool(conninfo: "postgresql://nobody@127.0.0.1:\(port)/x?connect_timeout=2", size: 1, reconnectWindow: .seconds(30))
        let pingStart = ContinuousClock.now
        await #expect(throws: StoreError.self) { try await patient.ping() }
        #expect(ContinuousClock.now - pingStart < .seconds(3))
        await pool.shutdown()
        await patient.shutdown()
    }

    @Test("a request made while no server is up waits for one (a failover), within the reconnect window")
    func waitsForTheServerWithinTheWindow() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        server.stop()
        let pool = PostgresPool(conninfo: server.url, size: 1, reconnectWindow: .seconds(30))
        let request = Task { try await pool.query("SELECT 42 AS n") }
        try await Task.sleep(for: .seconds(1))
        let again = try await server.restart()
        let rows = try await request.value
        #expect(rows.rows.first?["n"] == "42")
        again.stop()
        await pool.shutdown()
    }
}
