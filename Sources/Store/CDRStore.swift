/// Reads of the `cdr` table (the CDR worker writes it).
public struct CDRStore: Sendable {
    public struct CDR: Sendable, Hashable, Codable {
        public var channelUUID: String
        public var callID: String
        public var node: String
        public var region: String?
        public var direction: String
        public var from: String?
        public var to: String?
        public var startAt: String?
        public var answerAt: String?
        public var endAt: String?
        public var duration: Int
        public var billsec: Int
        public var hangupCause: String?
        public var codec: String?
        public var cost: String?
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// The CDRs of one of `account`'s calls (empty for another account's call).
    public func forCall(account: String, callID: String) async throws(StoreError) -> [CDR] {
        let ts = { (c: String) in "to_char(\(c) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS \(c)" }
        let r = try await pool.query("""
            SELECT d.channel_uuid, d.call_id, d.node, d.region, d.direction, d.from_number, d.to_number, \(ts("start_at")), \(ts("answer_at")),
                   \(ts("end_at")), d.duration_s, d.billsec, d.hangup_cause, d.codec, d.cost::text AS cost
            FROM cdr d JOIN calls c ON c.id::text = d.call_id
            WHERE d.call_id = $1 AND c.account_id = $2::uuid
            ORDER BY d.start_at
            """, [callID, account])
        return try r.rows.map { (row: QueryResult.Row) throws(StoreError) -> CDR in
            CDR(
                channelUUID: try row.string("channel_uuid"), callID: try row.string("call_id"), node: try row.string("node"), region: row["region"],
                direction: try row.string("direction"), from: row["from_number"], to: row["to_number"], startAt: row["start_at"],
                answerAt: row["answer_at"], endAt: row["end_at"], duration: try row.int("duration_s"), billsec: try row.int("billsec"),
                hangupCause: row["hangup_cause"], codec: row["codec"], cost: row["cost"])
        }
    }
}
