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

        /// snake_case, as every other body of the API.
        enum CodingKeys: String, CodingKey {
            case channelUUID = "channel_uuid", callID = "call_id", node, region, direction, from, to, startAt = "start_at", answerAt = "answer_at"
            case endAt = "end_at", duration, billsec, hangupCause = "hangup_cause", codec, cost
        }
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// One channel's record as the CDR writer builds it from CHANNEL_HANGUP_COMPLETE.
    public struct NewCDR: Sendable, Hashable, Codable {
        public var channelUUID: String
        public var callID: String
        public var node: String
        public var region: String?
        public var direction: String
        public var from: String?
        public var to: String?
        /// Microseconds since the epoch (0: unknown).
        public var startMicros: Int64
        public var answerMicros: Int64
        public var endMicros: Int64
        public var duration: Int
        public var billsec: Int
        public var hangupCause: String?
        public var codec: String?
        public var rtpInPackets: Int64?
        public var rtpInSkipped: Int64?
        public var jitterMaxMs: Double?
        public var lossPercent: Double?
        public var mos: Double?
        /// True for a channel whose hangup event was missed (reconciled after a reconnect).
        public var incomplete: Bool
        /// The node's `Core-UUID` (changes at every FreeSWITCH start).
        public var coreUUID: String?

        public init(
            channelUUID: String, callID: String, node: String, region: String?, direction: String, from: String?, to: String?, startMicros: Int64,
            answerMicros: Int64, endMicros: Int64, duration: Int, billsec: Int, hangupCause: String?, codec: String?, rtpInPackets: Int64?,
            rtpInSkipped: Int64?, jitterMaxMs: Double?, lossPercent: Double?, mos: Double?, incomplete: Bool = false, coreUUID: String? = nil
        ) {
            self.coreUUID = coreUUID
            self.channelUUID = channelUUID
            self.callID = callID
            self.node = node
            self.region = region
            self.direction = direction
            self.from = from
            self.to = to
            self.startMicros = startMicros
            self.answerMicros = answerMicros
            self.endMicros = endMicros
            self.duration = duration
            self.billsec = billsec
            self.hangupCause = hangupCause
            self.codec = codec
            self.rtpInPackets = rtpInPackets
            self.rtpInSkipped = rtpInSkipped
            self.jitterMaxMs = jitterMaxMs
            self.lossPercent = lossPercent
            self.mos = mos
            self.incomplete = incomplete
        }
    }

    /// Writes the CDR unless the channel already has one (the unique key: a duplicate event or a
    /// second writer writes nothing). Cost comes from the longest `rates` prefix of `to`.
    /// The key is (node, channel UUID): a channel UUID is unique on its node only.
    @discardableResult
    public func insert(_ c: NewCDR) async throws(StoreError) -> InsertResult {
        try await insertMany([c])[0]
    }

    /// `insert` for many CDRs in one statement and one commit (the CDR writer batches concurrent
    /// hangups): one result per CDR, in order. A channel named twice is written once, and its
    /// second entry is `unchanged`; CDRs of one call id on other channels count as others whether
    /// they were stored before or come in the same batch.
    public func insertMany(_ cdrs: [NewCDR]) async throws(StoreError) -> [InsertResult] {
        guard !cdrs.isEmpty else { return [] }
        struct Key: Hashable {
            var node: String
            var channel: String
        }
        var seen = Set<Key>()
        let firsts = cdrs.map { seen.insert(Key(node: $0.node, channel: $0.channelUUID)).inserted }
        let rows = zip(cdrs, firsts).filter(\.1).map(\.0)
        func ts(_ micros: Int64) -> String? { micros > 0 ? String(micros) : nil }
        func col(_ f: (NewCDR) -> String?) -> String? { CallStore.arrayLiteral(rows.map(f)) }
        let params: [String?] = [
            col(\.channelUUID), col(\.callID), col(\.node), col(\.region), col(\.direction), col(\.from), col(\.to),
            col { ts($0.startMicros) }, col { ts($0.answerMicros) }, col { ts($0.endMicros) }, col { String($0.duration) },
            col { String($0.billsec) }, col(\.hangupCause), col(\.codec), col { $0.rtpInPackets.map(String.init) },
            col { $0.rtpInSkipped.map(String.init) }, col { $0.jitterMaxMs.map { String($0) } }, col { $0.lossPercent.map { String($0) } },
            col { $0.mos.map { String($0) } }, col { $0.incomplete ? "t" : "f" }, col(\.coreUUID),
        ]
        let r = try await pool.withConnection { (conn: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try conn.execute(
                "insert_cdrs",
                """
                WITH input AS (
                    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
                                         $9::bigint[], $10::bigint[], $11::int[], $12::int[], $13::text[], $14::text[], $15::bigint[],
                                         $16::bigint[], $17::float8[], $18::float8[], $19::float8[], $20::bool[], $21::text[])
                        AS i(channel_uuid, call_id, node, region, direction, from_number, to_number, start_us, answer_us, end_us, duration_s,
                             billsec, hangup_cause, codec, rtp_in_packets, rtp_in_skipped, jitter_max_ms, loss_pct, mos, incomplete, core_uuid)
                ), done AS (
                    DELETE FROM cdr_live l USING input i WHERE l.node = i.node AND l.channel_uuid = i.channel_uuid
                ), ins AS (
                    INSERT INTO cdr (channel_uuid, call_id, node, region, direction, from_number, to_number, start_at, answer_at, end_at,
                                     duration_s, billsec, hangup_cause, codec, rtp_in_packets, rtp_in_skipped, jitter_max_ms, loss_pct, mos,
                                     incomplete, core_uuid, cost)
                    SELECT i.channel_uuid, i.call_id, i.node, i.region, i.direction, i.from_number, i.to_number,
                           timestamptz 'epoch' + i.start_us * interval '1 microsecond',
                           timestamptz 'epoch' + i.answer_us * interval '1 microsecond',
                           timestamptz 'epoch' + i.end_us * interval '1 microsecond',
                           i.duration_s, i.billsec, i.hangup_cause, i.codec, i.rtp_in_packets, i.rtp_in_skipped, i.jitter_max_ms, i.loss_pct, i.mos,
                           i.incomplete, i.core_uuid,
                           round((SELECT per_minute FROM rates WHERE i.to_number LIKE prefix || '%' ORDER BY length(prefix) DESC LIMIT 1)
                                 * i.billsec / 60.0, 5)
                    FROM input i
                    ON CONFLICT (node, channel_uuid) DO UPDATE SET
                        call_id = EXCLUDED.call_id, direction = EXCLUDED.direction, from_number = EXCLUDED.from_number,
                        to_number = EXCLUDED.to_number, start_at = EXCLUDED.start_at, answer_at = EXCLUDED.answer_at, end_at = EXCLUDED.end_at,
                        duration_s = EXCLUDED.duration_s, billsec = EXCLUDED.billsec, hangup_cause = EXCLUDED.hangup_cause, codec = EXCLUDED.codec,
                        rtp_in_packets = EXCLUDED.rtp_in_packets, rtp_in_skipped = EXCLUDED.rtp_in_skipped, jitter_max_ms = EXCLUDED.jitter_max_ms,
                        loss_pct = EXCLUDED.loss_pct, mos = EXCLUDED.mos, incomplete = false, core_uuid = EXCLUDED.core_uuid, cost = EXCLUDED.cost
                      -- Only the real record replaces an incomplete placeholder; anything else writes nothing.
                      WHERE cdr.incomplete AND NOT EXCLUDED.incomplete
                    RETURNING node, channel_uuid, call_id
                )
                -- The rows of each call id on other channels: stored before this statement (the
                -- snapshot does not see this statement's writes) or written by it.
                SELECT w.node, w.channel_uuid, (
                    SELECT count(*) FROM (
                        SELECT o.node, o.channel_uuid FROM cdr o WHERE o.call_id = w.call_id
                        UNION SELECT x.node, x.channel_uuid FROM ins x WHERE x.call_id = w.call_id
                    ) s WHERE (s.node, s.channel_uuid) <> (w.node, w.channel_uuid)) AS others
                FROM ins w
                """, params)
        }
        var written: [Key: Int] = [:]
        for row in r.rows {
            guard let node = row["node"], let channel = row["channel_uuid"] else { continue }
            written[Key(node: node, channel: channel)] = row.optionalInt("others") ?? 0
        }
        return zip(cdrs, firsts).map { c, first in
            guard first, let others = written[Key(node: c.node, channel: c.channelUUID)] else { return .unchanged }
            return others > 0 ? .writtenBesideOthers(others) : .written
        }
    }

    /// What `insert` did.
    public enum InsertResult: Sendable, Hashable {
        /// The row is written (or replaced its incomplete placeholder).
        case written
        /// Written, but the call id already had CDRs of other channels (a call placed twice).
        case writtenBesideOthers(Int)
        /// The channel already had its CDR: nothing changed.
        case unchanged
    }

    /// A channel was created on `node` (so a restarted writer knows to look for its CDR).
    public func channelStarted(_ uuid: String, node: String, coreUUID: String?) async throws(StoreError) {
        try await pool.withConnection { (conn: PostgresConnectionHandle) throws(StoreError) in
            try conn.execute(
                "live_add", "INSERT INTO cdr_live (channel_uuid, node, core_uuid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [uuid, node, coreUUID])
        }
    }

    /// Channels recorded live on `node` that have no CDR.
    public func liveChannels(node: String) async throws(StoreError) -> Set<String> {
        let r = try await pool.query(
            "SELECT l.channel_uuid FROM cdr_live l WHERE l.node = $1 AND NOT EXISTS (SELECT 1 FROM cdr d WHERE d.node = l.node AND d.channel_uuid = l.channel_uuid)",
            [node])
        return Set(r.rows.compactMap { $0["channel_uuid"] })
    }

    /// API calls placed on `node` that ended (per the orchestrator) without a CDR.
    public func finishedCallsWithoutCDR(node: String) async throws(StoreError) -> [(id: String, from: String, to: String)] {
        let r = try await pool.query(
            """
            SELECT c.id::text AS id, c.from_number, c.to_number FROM calls c
            -- Calls that had a channel: 'failed' also covers calls no node took (no channel, no CDR due).
            WHERE c.node = $1 AND (c.answered_at IS NOT NULL OR c.status IN ('completed', 'busy', 'no-answer'))
              AND c.created_at > now() - interval '24 hours'
              AND NOT EXISTS (SELECT 1 FROM cdr d WHERE d.node = c.node AND d.channel_uuid = c.id::text)
            """, [node])
        return r.rows.compactMap { row in row["id"].map { ($0, row["from_number"] ?? "", row["to_number"] ?? "") } }
    }

    /// CDR rows of one node boot.
    public func count(node: String, coreUUID: String) async throws(StoreError) -> Int {
        try await pool.query("SELECT count(*) AS n FROM cdr WHERE node = $1 AND core_uuid = $2", [node, coreUUID]).first?.int("n") ?? 0
    }

    /// Records (and returns the increase of) the unidentified gap of one node boot.
    public func reportGap(node: String, coreUUID: String, missing: Int) async throws(StoreError) -> Int {
        let r = try await pool.query(
            """
            WITH old AS (SELECT missing FROM cdr_gaps WHERE node = $1 AND core_uuid = $2)
            INSERT INTO cdr_gaps (node, core_uuid, missing) VALUES ($1, $2, $3::int)
            ON CONFLICT (node, core_uuid) DO UPDATE SET missing = greatest(cdr_gaps.missing, excluded.missing), reported_at = now()
            RETURNING $3::int - coalesce((SELECT missing FROM old), 0) AS increase
            """, [node, coreUUID, String(missing)])
        return max(0, r.first?.optionalInt("increase") ?? 0)
    }

    /// The CDR of channel `uuid` on `node`, if written: (billsec, hangup cause, incomplete).
    public func find(node: String, channelUUID uuid: String) async throws(StoreError) -> (billsec: Int, answered: Bool, cause: String?, incomplete: Bool)? {
        guard
            let row = try await pool.query(
                "SELECT billsec, answer_at IS NOT NULL AS answered, hangup_cause, incomplete FROM cdr WHERE node = $1 AND channel_uuid = $2", [node, uuid]
            ).first
        else { return nil }
        return (row.optionalInt("billsec") ?? 0, row["answered"] == "t", row["hangup_cause"], row["incomplete"] == "t")
    }

    /// The CDRs of one of `account`'s calls (empty for another account's call).
    public func forCall(account: String, callID: String) async throws(StoreError) -> [CDR] {
        let ts = { (c: String) in "to_char(\(c) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS \(c)" }
        let r = try await pool.query(
            """
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
