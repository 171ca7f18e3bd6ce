internal import CLibPQ
import Logging

/// One libpq connection. Not thread-safe: the pool hands it to one thread at a time, and every
/// call here blocks that thread (never an event loop or the cooperative pool).
final class PostgresConnection: @unchecked Sendable {
    // @unchecked: a PGconn is used by one thread at a time, enforced by the pool's checkout.
    private var conn: OpaquePointer?
    let conninfo: String
    private var prepared: Set<String> = []
    /// The session's `plan_cache_mode` as set by us; nil when the server does not know the
    /// setting (before PostgreSQL 12): then its default holds and nothing is switched.
    private var planMode: StatementPlan?
    /// A `SET LOCAL` mode of the transaction block in progress (see `use`).
    private var blockPlanMode: StatementPlan?
    /// Retained once for the connection's life: libpq's notice callback reads it.
    private let notices: Unmanaged<NoticeBox>

    init(conninfo: String, logger: Logger) throws(StoreError) {
        self.conninfo = conninfo
        self.notices = Unmanaged.passRetained(NoticeBox(logger: logger))
        do {
            try connect()
        } catch {
            if let conn { PQfinish(conn) }
            conn = nil
            notices.release()
            throw error
        }
    }

    deinit {
        if let conn {
            PQfinish(conn)
            notices.release()
        }
    }

    private func connect() throws(StoreError) {
        if let conn { PQfinish(conn) }
        prepared.removeAll()
        let c = PQconnectdb(conninfo)
        conn = c
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let message = c.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            throw StoreError(.connectionFailed, message.trimmingTrailingNewlines(), context: "connect")
        }
        planMode = nil
        blockPlanMode = nil
        if setPlanMode(.generic) == false {
            notices.takeUnretainedValue().logger.notice("PostgreSQL does not take plan_cache_mode; statements are planned as the server chooses")
        }
        // Notices (e.g. "relation already exists, skipping") go to the logger, not stderr.
        let box = notices.toOpaque()
        PQsetNoticeProcessor(
            c,
            { arg, message in
                guard let arg, let message else { return }
                Unmanaged<NoticeBox>.fromOpaque(arg).takeUnretainedValue().log(String(cString: message))
            }, box)
    }

    /// Closes the connection; the next statement reconnects.
    func drop() {
        if let conn { PQfinish(conn) }
        conn = nil
        prepared.removeAll()
        planMode = nil
        blockPlanMode = nil
    }

    /// Sets `plan_cache_mode` for the session, or with `local` for the transaction block in
    /// progress: true when set, false when the server refused it.
    private func setPlanMode(_ mode: StatementPlan, local: Bool = false) -> Bool {
        guard let conn else { return false }
        let r = PQexec(conn, "SET \(local ? "LOCAL " : "")plan_cache_mode = \(mode.setting)")
        defer { PQclear(r) }
        guard let r, PQresultStatus(r) == PGRES_COMMAND_OK else { return false }
        if local { blockPlanMode = mode } else { planMode = mode }
        return true
    }

    /// Makes the server plan the next statement as `mode` says. Inside a transaction block the
    /// switch is a `SET LOCAL` (a session `SET` there would be undone by a rollback behind our
    /// back); it ends with the block.
    private func use(_ mode: StatementPlan) {
        guard let conn, let session = planMode else { return }
        let status = PQtransactionStatus(conn)
        if status == PQTRANS_IDLE { blockPlanMode = nil }
        guard (blockPlanMode ?? session) != mode else { return }
        switch status {
        case PQTRANS_IDLE: _ = setPlanMode(mode)
        case PQTRANS_INTRANS: _ = setPlanMode(mode, local: true)
        default: return  // a failed block: the statement fails anyway
        }
    }

    /// Reconnects if the connection was lost (`PQstatus` not OK).
    func ensureConnected() throws(StoreError) {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            try connect()
            return
        }
    }

    var isHealthy: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Runs `sql` with text parameters `$1…` (`nil` is NULL).
    @discardableResult
    func query(_ sql: String, _ params: [String?] = [], plan: StatementPlan = .generic, context: String = "") throws(StoreError) -> QueryResult {
        try ensureConnected()
        // Without parameters there is no plan to choose (the server plans it once either way).
        if !params.isEmpty { use(plan) }
        // Without parameters, the simple protocol: it allows several statements (migrations).
        let result =
            params.isEmpty
            ? PQexec(conn, sql)
            : withCStrings(params) { values in PQexecParams(conn, sql, Int32(params.count), nil, values, nil, nil, 0) }
        return try consume(result, context: context.isEmpty ? String(sql.prefix(60)) : context)
    }

    /// Runs a named prepared statement, preparing it on first use on this connection.
    @discardableResult
    func execute(_ name: String, _ sql: String, _ params: [String?], plan: StatementPlan = .generic) throws(StoreError) -> QueryResult {
        try ensureConnected()
        if !params.isEmpty { use(plan) }
        if !prepared.contains(name) {
            let r = PQprepare(conn, name, sql, Int32(params.count), nil)
            _ = try consume(r, context: "prepare \(name)")
            prepared.insert(name)
        }
        let result = withCStrings(params) { values in
            PQexecPrepared(conn, name, Int32(params.count), values, nil, nil, 0)
        }
        return try consume(result, context: name)
    }

    private func consume(_ result: OpaquePointer?, context: String) throws(StoreError) -> QueryResult {
        guard let result else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "no connection"
            throw StoreError(.connectionFailed, message.trimmingTrailingNewlines(), context: context)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines()
            let code: StoreError.Code =
                sqlState == "23505" ? .uniqueViolation : (conn.map { PQstatus($0) != CONNECTION_OK } ?? true) ? .connectionFailed : .queryFailed
            // 25006: this server became a standby (a failover); 57P01/57P02/57P03: it is going
            // away. The connection is dropped so the next use finds the primary again.
            if let sqlState, ["25006", "57P01", "57P02", "57P03"].contains(sqlState) { drop() }
            throw StoreError(code, message, sqlState: sqlState, context: context)
        }
        let nFields = Int(PQnfields(result))
        let nRows = Int(PQntuples(result))
        var columns: [String] = []
        columns.reserveCapacity(nFields)
        for f in 0..<nFields { columns.append(String(cString: PQfname(result, Int32(f)))) }
        var rows: [QueryResult.Row] = []
        rows.reserveCapacity(nRows)
        for r in 0..<nRows {
            var values: [String?] = []
            values.reserveCapacity(nFields)
            for f in 0..<nFields {
                if PQgetisnull(result, Int32(r), Int32(f)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(r), Int32(f))))
                }
            }
            rows.append(QueryResult.Row(columns: columns, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return QueryResult(columns: columns, rows: rows, affected: affected)
    }
}

/// How PostgreSQL plans a statement with parameters (its `plan_cache_mode`).
///
/// Left to itself (`auto`), the server plans a prepared statement afresh at every execution
/// while that plan looks cheaper than the generic one, and for this project's batch statements
/// (`unnest($1::uuid[], …)`: a generic plan assumes 100 rows, a batch holds a few) it always
/// does: measured in `scripts/bench-callplane`, planning was 29 % of PostgreSQL's CPU, as much
/// time as executing the status batches. So statements are `.generic` unless they say otherwise:
/// planned once per connection (and again after an `ANALYZE` changes the statistics).
public enum StatementPlan: Sendable {
    /// One plan per connection, made without the parameters' values.
    case generic
    /// The server's choice (`auto`): for a statement whose best plan depends on which of its
    /// parameters are NULL, such as a list with optional filters and a page cursor.
    case serverChooses

    /// The `plan_cache_mode` value.
    var setting: String {
        switch self {
        case .generic: "force_generic_plan"
        case .serverChooses: "auto"
        }
    }
}

/// Holds the logger for libpq's notice callback (a C function pointer cannot capture).
final class NoticeBox: @unchecked Sendable {
    // @unchecked: immutable after init; Logger is a value type used read-only.
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
    func log(_ message: String) { logger.debug("postgres notice", metadata: ["notice": "\(message.trimmingTrailingNewlines())"]) }
}

/// Calls `body` with a C array of NUL-terminated copies of `strings` (NULL for nil).
func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for c in copies { free(c) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }
}

#if canImport(Glibc)
    import Glibc
#endif
