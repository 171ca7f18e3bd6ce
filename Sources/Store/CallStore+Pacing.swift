/// Twilio's pacing: an account's paced calls are placed at its `calls_per_second`, whichever
/// orchestrator, API instance or region handles them.
///
/// The rate is kept in PostgreSQL as a virtual schedule (GCRA): each paced call reserves the
/// next slot of its account (`accounts.next_call_at`, moved on by 1/rate per call) once, under
/// the row locks of its call and its account, so redeliveries and concurrent orchestrators never
/// take a second slot. A call whose slot is in the future waits in the table (`pace_state =
/// 'waiting'`), not on the stream, so a long queue of one account holds no JetStream ack slots
/// and delays no other account.
extension CallStore {
    /// What a paced job is to do now.
    public enum PaceDecision: Sendable, Hashable {
        /// The call's slot has come (or it is not paced): place it.
        case placeNow
        /// The call waits in the table for its slot; the scheduler puts it on the stream then.
        case waiting
        /// No such call.
        case unknown
    }

    /// Reserves the call's slot if it has none; says whether it may be placed now.
    public func reservePaceSlot(id: String) async throws(StoreError) -> PaceDecision {
        guard isUUID(id) else { return .unknown }
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "reserve_pace_slot",
                """
                WITH c AS (SELECT id, account_id, pace_state FROM calls WHERE id = $1::uuid FOR UPDATE),
                a AS (
                    UPDATE accounts SET next_call_at = greatest(next_call_at, clock_timestamp()) + make_interval(secs => 1.0 / calls_per_second)
                    WHERE id = (SELECT account_id FROM c) AND (SELECT pace_state FROM c) IS NULL
                    RETURNING next_call_at - make_interval(secs => 1.0 / calls_per_second) AS slot),
                u AS (
                    UPDATE calls SET scheduled_at = a.slot,
                        pace_state = CASE WHEN a.slot > clock_timestamp() + interval '20 milliseconds' THEN 'waiting' ELSE 'released' END
                    FROM a WHERE calls.id = $1::uuid
                    RETURNING calls.pace_state)
                SELECT (SELECT count(*) FROM c) AS found, coalesce((SELECT pace_state FROM u), (SELECT pace_state FROM c)) AS state
                """, [id])
        }
        guard let row = r.first, row["found"] != "0" else { return .unknown }
        switch row["state"] {
        case "waiting", "due": return .waiting
        default: return .placeNow
        }
    }

    /// Takes up to `limit` queued paced calls whose slot has come (`waiting` → `due`), oldest
    /// slot first; `SKIP LOCKED` keeps concurrent schedulers apart. Calls left `due` for longer
    /// than `staleAfter` (a scheduler died before handing them on) are taken again.
    public func takeDuePaced(limit: Int = 256, staleAfter: Duration = .seconds(5)) async throws(StoreError) -> [Call] {
        let ms = staleAfter.components.seconds * 1000 + staleAfter.components.attoseconds / 1_000_000_000_000_000
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "take_due_paced",
                """
                UPDATE calls SET pace_state = 'due', updated_at = now()
                WHERE id IN (
                    SELECT id FROM calls
                    WHERE status = 'queued' AND pace_state IN ('waiting', 'due') AND scheduled_at <= clock_timestamp()
                      AND (pace_state = 'waiting' OR updated_at < now() - $2::bigint * interval '1 millisecond')
                    ORDER BY scheduled_at LIMIT $1::int FOR UPDATE SKIP LOCKED)
                RETURNING \(Self.columns)
                """, [String(limit), String(ms)])
        }
        return try r.rows.map(Self.call)
    }

    /// The due calls are on the stream: the normal path places them.
    public func markPaceReleased(ids: [String]) async throws(StoreError) {
        guard !ids.isEmpty else { return }
        _ = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) in
            try c.execute(
                "pace_released", "UPDATE calls SET pace_state = 'released' WHERE id = ANY($1::uuid[]) AND pace_state = 'due'", [Self.arrayLiteral(ids)])
        }
    }
}
