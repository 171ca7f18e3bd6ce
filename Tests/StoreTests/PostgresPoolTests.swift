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
