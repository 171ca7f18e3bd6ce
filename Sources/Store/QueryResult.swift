/// The rows of a statement, copied out of libpq (no `PGresult` outlives the call). Values are
/// libpq's text format; typed accessors convert.
public struct QueryResult: Sendable, Hashable {
    public var columns: [String]
    public var rows: [Row]
    /// Rows affected (INSERT/UPDATE/DELETE), from `PQcmdTuples`.
    public var affected: Int

    public init(columns: [String] = [], rows: [Row] = [], affected: Int = 0) {
        self.columns = columns
        self.rows = rows
        self.affected = affected
    }

    public var first: Row? { rows.first }

    public struct Row: Sendable, Hashable {
        public let columns: [String]
        public let values: [String?]

        public init(columns: [String], values: [String?]) {
            self.columns = columns
            self.values = values
        }

        public subscript(_ column: String) -> String? {
            guard let i = columns.firstIndex(of: column) else { return nil }
            return values[i]
        }

        public func string(_ column: String) throws(StoreError) -> String {
            guard let v = self[column] else { throw StoreError(.decodeFailed, "column \(column) is null or missing") }
            return v
        }

        public func int(_ column: String) throws(StoreError) -> Int {
            guard let v = self[column], let i = Int(v) else { throw StoreError(.decodeFailed, "column \(column) is not an integer") }
            return i
        }

        public func optionalInt(_ column: String) -> Int? { self[column].flatMap { Int($0) } }

        public func double(_ column: String) -> Double? { self[column].flatMap { Double($0) } }

        /// `t`/`f` as PostgreSQL prints booleans.
        public func bool(_ column: String) -> Bool { self[column] == "t" }
    }
}
