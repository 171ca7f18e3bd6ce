/// A PostgreSQL failure with its context: what was being done, and the server's SQLSTATE.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable, Hashable { case connectionFailed, queryFailed, uniqueViolation, decodeFailed, poolClosed, migrationFailed }
        let base: Base
        public var description: String { base.rawValue }

        /// The connection could not be made or was lost.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The server refused the statement (see `sqlState`).
        public static let queryFailed = Code(base: .queryFailed)
        /// SQLSTATE 23505: a unique constraint said no (the idempotency guards rely on it).
        public static let uniqueViolation = Code(base: .uniqueViolation)
        /// A column did not hold what the caller expected.
        public static let decodeFailed = Code(base: .decodeFailed)
        /// The pool was shut down.
        public static let poolClosed = Code(base: .poolClosed)
        public static let migrationFailed = Code(base: .migrationFailed)
    }

    public var code: Code
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var message: String
    /// What was being done (a statement name, a migration).
    public var context: String

    public init(_ code: Code, _ message: String, sqlState: String? = nil, context: String = "") {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.context = context
    }

    public var description: String {
        "PostgreSQL \(code)\(sqlState.map { " [\($0)]" } ?? "")\(context.isEmpty ? "" : " (\(context))"): \(message)"
    }
}

extension StoreError {
    /// Connecting failed: no statement was sent, so trying again cannot duplicate anything.
    var isConnectFailure: Bool { code == .connectionFailed && context == "connect" }
}
