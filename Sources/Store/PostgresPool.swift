public import Logging
public import NIOPosix
import NIOCore

/// A pool of libpq connections. Every blocking libpq call runs on the pool's own threads
/// (`NIOThreadPool`), never on an event loop or Swift's cooperative pool; a connection is used
/// by one thread at a time. Connection settings are libpq's: a `postgres://` URL or
/// `key=value` string, and the `PG*` environment variables for anything it leaves out.
public actor PostgresPool {
    public let conninfo: String
    public let size: Int
    private let logger: Logger
    private let threads: NIOThreadPool
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<PostgresConnection, any Error>] = []
    private var closed = false

    /// How long a request waits for the database to be reachable (a failover: the multi-host
    /// URL with `target_session_attrs=read-write` finds the new primary) before it fails.
    public let reconnectWindow: Duration

    public init(conninfo: String = "", size: Int = 4, reconnectWindow: Duration = .seconds(15), logger: Logger = Logger(label: "switchyard.store")) {
        self.reconnectWindow = reconnectWindow
        self.conninfo = conninfo
        self.size = max(1, size)
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: max(1, size))
        threads.start()
    }

    /// Runs `body` with a connection on a pool thread; the connection returns to the pool after.
    ///
    /// While no server accepts a connection (a failover in progress), the attempt is repeated
    /// every 100 ms for up to `reconnectWindow`: nothing was sent yet, so this is always safe. A
    /// statement that fails on a connection lost under it is not repeated (it may have been
    /// committed): that error goes to the caller, whose writes are idempotent.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnectionHandle) throws(StoreError) -> T) async throws(StoreError) -> T {
        let deadline = ContinuousClock.now + reconnectWindow
        var logged = false
        while true {
            do {
                return try await withConnectionOnce(body)
            } catch let error where error.isConnectFailure && ContinuousClock.now < deadline && !closed {
                if !logged {
                    logger.warning("database not reachable; retrying", metadata: ["error": "\(error)"])
                    logged = true
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// `SELECT 1` without waiting out a failover: for health checks, which must answer at once.
    public func ping() async throws(StoreError) {
        _ = try await withConnectionOnce { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in try c.query("SELECT 1") }
    }

    private func withConnectionOnce<T: Sendable>(_ body: @escaping @Sendable (PostgresConnectionHandle) throws(StoreError) -> T) async throws(StoreError) -> T {
        let connection = try await checkout()
        do {
            let value = try await threads.runIfActive { () throws -> T in
                try body(PostgresConnectionHandle(connection))
            }
            checkin(connection)
            return value
        } catch {
            checkin(connection)
            throw (error as? StoreError) ?? StoreError(.connectionFailed, "\(error)", context: "thread pool")
        }
    }

    /// `BEGIN`, `body`, `COMMIT` on one connection; `ROLLBACK` if `body` throws.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnectionHandle) throws(StoreError) -> T) async throws(StoreError) -> T {
        try await withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> T in
            try c.query("BEGIN")
            do throws(StoreError) {
                let value = try body(c)
                try c.query("COMMIT")
                return value
            } catch {
                _ = try? c.query("ROLLBACK")
                throw error
            }
        }
    }

    /// One statement on any connection.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) async throws(StoreError) -> QueryResult {
        try await withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in try c.query(sql, params) }
    }

    private func checkout() async throws(StoreError) -> PostgresConnection {
        guard !closed else { throw StoreError(.poolClosed, "the pool is shut down") }
        if let c = idle.popLast() { return c }
        if open < size {
            open += 1
            let conninfo = self.conninfo
            let logger = self.logger
            do {
                return try await threads.runIfActive { try PostgresConnection(conninfo: conninfo, logger: logger) }
            } catch {
                open -= 1
                throw (error as? StoreError) ?? StoreError(.connectionFailed, "\(error)", context: "connect")
            }
        }
        do {
            return try await withCheckedThrowingContinuation { waiters.append($0) }
        } catch {
            throw (error as? StoreError) ?? StoreError(.poolClosed, "\(error)")
        }
    }

    private func checkin(_ connection: PostgresConnection) {
        if closed {
            open -= 1
            return
        }
        if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: connection)
        } else {
            idle.append(connection)
        }
    }

    /// Closes idle connections and stops the threads; waiters fail with `.poolClosed`.
    public func shutdown() async {
        closed = true
        for w in waiters { w.resume(throwing: StoreError(.poolClosed, "the pool is shut down")) }
        waiters.removeAll()
        idle.removeAll()
        try? await threads.shutdownGracefully()
    }
}

/// What a pool body gets: the connection's statements, on the pool thread.
public struct PostgresConnectionHandle: @unchecked Sendable {
    // @unchecked: only used inside the pool body, on the one thread that holds the connection.
    let connection: PostgresConnection

    init(_ connection: PostgresConnection) { self.connection = connection }

    /// `sql` with text parameters `$1…`.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = [], plan: StatementPlan = .generic, context: String = "") throws(StoreError) -> QueryResult {
        try connection.query(sql, params, plan: plan, context: context)
    }

    /// A named statement, prepared once per connection; `plan` says how the server plans it.
    @discardableResult
    public func execute(_ name: String, _ sql: String, _ params: [String?], plan: StatementPlan = .generic) throws(StoreError) -> QueryResult {
        try connection.execute(name, sql, params, plan: plan)
    }
}
