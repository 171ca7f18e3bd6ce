/// The `calls` table: inserts with idempotency keys, reads scoped to an account, cursor
/// pagination, the publish outbox, and status changes that only move forward.
public struct CallStore: Sendable {
    public static let statuses = ["queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"]
    public static let finalStatuses: Set<String> = ["completed", "busy", "failed", "no-answer", "canceled"]

    public struct NewCall: Sendable, Hashable {
        public var id: String
        public var accountID: String
        public var to: String
        public var from: String
        public var url: String
        public var statusCallback: String?
        public var statusCallbackEvents: [String]
        public var timeout: Int
        public var timeLimit: Int?
        public var region: String?
        public var clientState: String?
        public var idempotencyKey: String?
        /// A digest of the request body, to tell a retry from a different request with the same key.
        public var requestHash: String?
        /// The surface that created the call: `v1` or `2010-04-01` (Twilio's).
        public var api: String = "v1"
        /// Inline TwiML instead of `url` (the Twilio surface); `url` is then empty.
        public var twiml: String?
        /// The HTTP method for `url` and for status callbacks (the Twilio surface; POST when nil).
        public var method: String?
        public var callbackMethod: String?
        /// Placed at the account's calls-per-second rate (the Twilio surface).
        public var paced: Bool = false

        public init(
            id: String, accountID: String, to: String, from: String, url: String, statusCallback: String? = nil, statusCallbackEvents: [String] = [],
            timeout: Int = 60, timeLimit: Int? = nil, region: String? = nil, clientState: String? = nil, idempotencyKey: String? = nil,
            requestHash: String? = nil
        ) {
            self.id = id
            self.accountID = accountID
            self.to = to
            self.from = from
            self.url = url
            self.statusCallback = statusCallback
            self.statusCallbackEvents = statusCallbackEvents
            self.timeout = timeout
            self.timeLimit = timeLimit
            self.region = region
            self.clientState = clientState
            self.idempotencyKey = idempotencyKey
            self.requestHash = requestHash
        }
    }

    public struct Call: Sendable, Hashable, Codable {
        public var id: String
        public var accountID: String
        public var to: String
        public var from: String
        public var url: String
        public var statusCallback: String?
        public var statusCallbackEvents: [String]
        public var timeout: Int
        public var timeLimit: Int?
        public var region: String?
        public var clientState: String?
        public var status: String
        public var node: String?
        public var createdAt: String
        public var updatedAt: String
        public var answeredAt: String?
        public var endedAt: String?
        /// Why the call ended, when the orchestrator knows more than the status (e.g. `node-lost`).
        public var endCause: String?
        /// Microseconds since the epoch of `createdAt`: the pagination cursor's first half.
        public var createdMicros: Int64
        var requestHash: String?
        public var api: String = "v1"
        public var twiml: String?
        public var method: String?
        public var callbackMethod: String?
        public var paced: Bool = false
        /// When the call was first claimed for a node.
        public var placedAt: String?
        /// Whether the call was ever claimed for a node (`placedAt`), as microseconds since the epoch.
        public var placedMicros: Int64?
    }

    public enum InsertOutcome: Sendable, Hashable {
        case created(Call)
        /// The same idempotency key and the same request within 24 h: the first call.
        case replayed(Call)
        /// The same idempotency key with a different request.
        case keyReused(Call)
        /// The account already has `limit` calls queued, ringing or in progress (the Twilio
        /// surface's concurrency limit): nothing inserted.
        case overLimit(limit: Int)
    }

    public struct Page: Sendable, Hashable {
        public var calls: [Call]
        /// Opaque; pass it back to get the next page. Nil on the last page.
        public var nextCursor: String?

        public init(calls: [Call], nextCursor: String?) {
            self.calls = calls
            self.nextCursor = nextCursor
        }
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns = """
        id::text, account_id::text, to_number, from_number, url, status_callback, array_to_string(status_callback_events, ',') AS events,
        timeout_s, time_limit_s, region, client_state, status, node, request_hash, end_cause, api, twiml, method, callback_method, paced,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created,
        to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated,
        to_char(answered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS answered,
        to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ended,
        to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS placed,
        (extract(epoch FROM placed_at) * 1000000)::bigint AS placed_us,
        (extract(epoch FROM created_at) * 1000000)::bigint AS created_us
        """

    /// The rows of a statement that returns calls, by id.
    static func callsByID(_ r: QueryResult) throws(StoreError) -> [String: Call] {
        var out: [String: Call] = [:]
        for row in r.rows {
            let call = try Self.call(row)
            out[call.id] = call
        }
        return out
    }

    static func call(_ r: QueryResult.Row) throws(StoreError) -> Call {
        Call(
            id: try r.string("id"), accountID: try r.string("account_id"), to: try r.string("to_number"), from: try r.string("from_number"),
            url: try r.string("url"), statusCallback: r["status_callback"],
            statusCallbackEvents: (r["events"] ?? "").split(separator: ",").map(String.init), timeout: try r.int("timeout_s"),
            timeLimit: r.optionalInt("time_limit_s"), region: r["region"], clientState: r["client_state"], status: try r.string("status"),
            node: r["node"], createdAt: try r.string("created"), updatedAt: try r.string("updated"), answeredAt: r["answered"], endedAt: r["ended"],
            endCause: r["end_cause"],
            createdMicros: Int64(try r.string("created_us")) ?? 0, requestHash: r["request_hash"], api: r["api"] ?? "v1", twiml: r["twiml"],
            method: r["method"], callbackMethod: r["callback_method"], paced: r["paced"] == "t", placedAt: r["placed"],
            placedMicros: r["placed_us"].flatMap { Int64($0) })
    }

    /// Inserts a queued call. With an idempotency key already used by the account in the last
    /// 24 hours, nothing is inserted: the earlier call comes back (replayed, or keyReused when
    /// the request differs). Keys older than 24 hours are released first.
    ///
    /// With `limitConcurrency` (the Twilio surface), the account's `max_concurrent_calls` holds:
    /// the insert runs under a per-account advisory lock, so API instances in any region count
    /// the same calls, and a call over the limit is not inserted (`overLimit`). The limit counts
    /// the account's open calls created on the Twilio surface.
    public func insert(_ new: NewCall, limitConcurrency: Bool = false) async throws(StoreError) -> InsertOutcome {
        let params: [String?] = [
            new.id, new.accountID, new.to, new.from, new.url, new.statusCallback, "{" + new.statusCallbackEvents.joined(separator: ",") + "}",
            String(new.timeout), new.timeLimit.map(String.init), new.region, new.clientState, new.idempotencyKey, new.requestHash, new.api, new.twiml,
            new.method, new.callbackMethod, new.paced ? "t" : "f",
        ]
        let body: @Sendable (PostgresConnectionHandle) throws(StoreError) -> InsertOutcome = {
            (c: PostgresConnectionHandle) throws(StoreError) -> InsertOutcome in
            if let key = new.idempotencyKey {
                try c.execute(
                    "release_old_key",
                    "UPDATE calls SET idempotency_key = NULL WHERE account_id = $1::uuid AND idempotency_key = $2 AND created_at < now() - interval '24 hours'",
                    [new.accountID, key])
            }
            if let key = new.idempotencyKey, limitConcurrency {
                // A retry of an accepted call replays it, even when the account is at its limit now.
                let existing = try c.execute(
                    "call_by_key", "SELECT \(Self.columns) FROM calls WHERE account_id = $1::uuid AND idempotency_key = $2", [new.accountID, key])
                if let row = existing.first {
                    let call = try Self.call(row)
                    return call.requestHash == new.requestHash ? .replayed(call) : .keyReused(call)
                }
            }
            if limitConcurrency {
                try c.execute("account_lock", "SELECT pg_advisory_xact_lock(7201995, hashtext($1))", [new.accountID])
                let r = try c.execute(
                    "account_open_calls",
                    """
                    SELECT a.max_concurrent_calls AS limit_n, (SELECT count(*) FROM (\(Self.openTwilioCalls("$1::uuid", limit: "a.max_concurrent_calls"))) o) AS open_n
                    FROM accounts a WHERE a.id = $1::uuid
                    """, [new.accountID])
                if let row = r.first, let limit = row.optionalInt("limit_n"), let open = row.optionalInt("open_n") {
                    if open >= limit { return .overLimit(limit: limit) }
                    try c.execute("account_bound", "UPDATE accounts SET open_calls_bound = $2::int WHERE id = $1::uuid", [new.accountID, String(open + 1)])
                }
            }
            let inserted = try c.execute(
                "insert_call",
                """
                WITH ins AS (
                    INSERT INTO calls (id, account_id, to_number, from_number, url, status_callback, status_callback_events, timeout_s,
                                       time_limit_s, region, client_state, status, idempotency_key, request_hash, api, twiml, method,
                                       callback_method, paced)
                    VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::text[], $8::int, $9::int, $10, $11, 'queued', $12, $13, $14, $15, $16, $17,
                            $18::boolean)
                    ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                    RETURNING *
                ), \(Self.intoOutbox)
                SELECT \(Self.columns) FROM ins
                """, params)
            if let row = inserted.first { return .created(try Self.call(row)) }
            let existing = try c.execute(
                "call_by_key", "SELECT \(Self.columns) FROM calls WHERE account_id = $1::uuid AND idempotency_key = $2", [new.accountID, new.idempotencyKey])
            guard let row = existing.first else {
                throw StoreError(.queryFailed, "idempotency key conflict but no call found", context: "insert_call")
            }
            let call = try Self.call(row)
            return call.requestHash == new.requestHash ? .replayed(call) : .keyReused(call)
        }
        return limitConcurrency ? try await pool.transaction(body) : try await pool.withConnection(body)
    }

    /// A call of `account`, or nil (another account's call is nil too).
    public func get(account: String, id: String) async throws(StoreError) -> Call? {
        guard isUUID(id) else { return nil }
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "call_by_id", "SELECT \(Self.columns) FROM calls WHERE id = $1::uuid AND account_id = $2::uuid AND deleted_at IS NULL", [id, account])
        }
        return try r.first.map(Self.call)
    }

    /// A call by id, whatever its account (the workers).
    public func get(id: String) async throws(StoreError) -> Call? {
        guard isUUID(id) else { return nil }
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute("call_by_id_any", "SELECT \(Self.columns) FROM calls WHERE id = $1::uuid", [id])
        }
        return try r.first.map(Self.call)
    }

    /// Records the node a queued call is being placed on (before the originate, so a
    /// redelivered job knows where to look). A compare-and-set: only while the row still names
    /// `expectedNode` (nil: no node yet), so of two placers that read the same row (two jobs for
    /// one call), one claims it. Nil when the call is no longer queued or names another node;
    /// else the row.
    public func claim(id: String, node: String, expectedNode: String? = nil) async throws(StoreError) -> Call? {
        try await claimMany([Claim(id: id, node: node, expectedNode: expectedNode)])[0]
    }

    /// One `claim`.
    public struct Claim: Sendable, Hashable {
        public var id: String
        public var node: String
        public var expectedNode: String?

        public init(id: String, node: String, expectedNode: String? = nil) {
            self.id = id
            self.node = node
            self.expectedNode = expectedNode
        }
    }

    /// Many `claim`s in one statement and one commit (the orchestrator batches concurrent
    /// placements): one result per claim, in order, the row or nil. A call named twice is
    /// claimed at most once, for its first claim.
    public func claimMany(_ claims: [Claim]) async throws(StoreError) -> [Call?] {
        var seen = Set<String>()
        let firsts = claims.map { isUUID($0.id) && seen.insert($0.id).inserted }
        let valid = zip(claims, firsts).filter(\.1).map(\.0)
        guard !valid.isEmpty else { return claims.map { _ in nil } }
        let params = [
            Self.arrayLiteral(valid.map(\.id)), Self.arrayLiteral(valid.map(\.node)), Self.arrayLiteral(valid.map(\.expectedNode)),
        ]
        // Rows locked by one index lookup each, in id order: see advanceMany.
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "claim_calls",
                """
                WITH input AS (
                    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS i(id, node, expected)
                ), locked AS (
                    SELECT l.id FROM (SELECT id FROM input ORDER BY 1) i, LATERAL (SELECT c.id FROM calls c WHERE c.id = i.id FOR UPDATE) l
                ), moved AS (
                    UPDATE calls c SET node = i.node, updated_at = now(), placed_at = coalesce(c.placed_at, now())
                    FROM input i
                    WHERE c.id = i.id AND c.id IN (SELECT id FROM locked) AND c.status = 'queued' AND c.node IS NOT DISTINCT FROM i.expected
                    RETURNING c.*
                )
                SELECT \(Self.columns) FROM moved
                """, params)
        }
        let rows = try Self.callsByID(r)
        return zip(claims, firsts).map { c, first in first ? rows[c.id] : nil }
    }

    /// What a list may be narrowed to. Times are inclusive bounds in seconds since the epoch;
    /// a call's start is its `placed_at`, its end its `ended_at`.
    public struct Filter: Sendable, Hashable {
        public var status: String?
        public var to: String?
        public var from: String?
        public var startFrom: Double?
        public var startUntil: Double?
        public var endFrom: Double?
        public var endUntil: Double?

        public init(
            status: String? = nil, to: String? = nil, from: String? = nil, startFrom: Double? = nil, startUntil: Double? = nil, endFrom: Double? = nil,
            endUntil: Double? = nil
        ) {
            self.status = status
            self.to = to
            self.from = from
            self.startFrom = startFrom
            self.startUntil = startUntil
            self.endFrom = endFrom
            self.endUntil = endUntil
        }
    }

    /// A page of the account's calls, newest first, optionally filtered.
    public func list(
        account: String, status: String? = nil, to: String? = nil, from: String? = nil, pageSize: Int, cursor: String? = nil
    ) async throws(StoreError) -> Page {
        try await list(account: account, filter: Filter(status: status, to: to, from: from), pageSize: pageSize, cursor: cursor)
    }

    /// A page of the account's calls, newest first: after `cursor` (a token this store issued),
    /// or, without one, after skipping `offset` calls (Twilio's `Page` without a `PageToken`).
    /// Deleted calls are not listed.
    public func list(account: String, filter: Filter, pageSize: Int, cursor: String? = nil, offset: Int = 0) async throws(StoreError) -> Page {
        var after: (Int64, String)?
        if let cursor {
            let parts = cursor.split(separator: "_")
            guard parts.count == 2, let micros = Int64(parts[0]), isUUID(String(parts[1])) else {
                throw StoreError(.decodeFailed, "page token is not one this API issued", context: "list")
            }
            after = (micros, String(parts[1]))
        }
        let params: [String?] = [
            account, filter.status, filter.to, filter.from, after.map { String($0.0) }, after?.1, String(pageSize + 1), filter.startFrom.map { "\($0)" },
            filter.startUntil.map { "\($0)" }, filter.endFrom.map { "\($0)" }, filter.endUntil.map { "\($0)" }, String(cursor == nil ? max(0, offset) : 0),
        ]
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "list_calls",
                """
                SELECT \(Self.columns) FROM calls
                WHERE account_id = $1::uuid AND deleted_at IS NULL
                  AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR to_number = $3) AND ($4::text IS NULL OR from_number = $4)
                  AND ($5::bigint IS NULL OR (created_at, id) < (timestamptz 'epoch' + $5::bigint * interval '1 microsecond', $6::uuid))
                  AND ($8::float8 IS NULL OR placed_at >= to_timestamp($8::float8)) AND ($9::float8 IS NULL OR placed_at <= to_timestamp($9::float8))
                  AND ($10::float8 IS NULL OR ended_at >= to_timestamp($10::float8)) AND ($11::float8 IS NULL OR ended_at <= to_timestamp($11::float8))
                ORDER BY created_at DESC, id DESC
                LIMIT $7::int OFFSET $12::int
                """, params,
                // Planned with its values: which filters are NULL decides the plan (a cursor
                // page is an index range scan; a generic plan would filter from the newest row).
                plan: .serverChooses)
        }
        var calls = try r.rows.map(Self.call)
        var next: String?
        if calls.count > pageSize {
            calls.removeLast()
            if let last = calls.last { next = "\(last.createdMicros)_\(last.id)" }
        }
        return Page(calls: calls, nextCursor: next)
    }

    /// The call is on the stream: it leaves the outbox.
    public func markPublished(id: String) async throws(StoreError) {
        try await markPublished(ids: [id])
    }

    /// Many calls are on the stream: one statement, one commit. Only `call_outbox` rows are
    /// touched, never the calls' own rows (which the orchestrator is claiming meanwhile).
    public func markPublished(ids: [String]) async throws(StoreError) {
        let list = ids.filter(isUUID)
        guard !list.isEmpty else { return }
        try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) in
            try c.execute("mark_published", "DELETE FROM call_outbox WHERE call_id = ANY($1::uuid[])", ["{" + list.joined(separator: ",") + "}"])
        }
    }

    /// Calls not yet on the stream, in the outbox for longer than `age` (the sweeper's work),
    /// oldest first.
    public func unpublished(olderThan age: Duration, limit: Int = 500) async throws(StoreError) -> [Call] {
        let ms = age.components.seconds * 1000 + age.components.attoseconds / 1_000_000_000_000_000
        let r = try await pool.query(
            """
            SELECT \(Self.columns) FROM calls WHERE id IN (
                SELECT call_id FROM call_outbox WHERE created_at < now() - $1::bigint * interval '1 millisecond'
                ORDER BY created_at LIMIT $2::int)
            ORDER BY created_at
            """, [String(ms), String(limit)])
        return try r.rows.map(Self.call)
    }

    /// Cancels a call that is still queued; nil when it is not queued (or not the account's).
    public func cancelQueued(account: String, id: String) async throws(StoreError) -> Call? {
        guard isUUID(id) else { return nil }
        let r = try await pool.query(
            """
            UPDATE calls SET status = 'canceled', updated_at = now(), ended_at = now(), pace_state = \(Self.paceStateAtEnd)
            WHERE id = $1::uuid AND account_id = $2::uuid AND status = 'queued'
            RETURNING \(Self.columns)
            """, [id, account])
        return try r.first.map(Self.call)
    }

    /// Moves a call's status forward only (queued → ringing → in-progress → a final status);
    /// a late or repeated event changes nothing. Returns the call when it changed.
    @discardableResult
    public func advance(id: String, to status: String, node: String? = nil, cause: String? = nil, with events: [Event] = []) async throws(StoreError) -> Call? {
        guard let rank = Self.rank[status], isUUID(id) else { return nil }
        // Other log entries (placement attempts) ride in the same statement: one round trip.
        let extra = Self.eventArrays(events)
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "advance_call",
                """
                WITH moved AS (
                    UPDATE calls SET status = $2, updated_at = now(), node = coalesce($3, node),
                        answered_at = CASE WHEN $2 = 'in-progress' THEN now() ELSE answered_at END,
                        ended_at = CASE WHEN $4::int >= 3 THEN now() ELSE ended_at END,
                        end_cause = CASE WHEN $4::int >= 3 THEN $5 ELSE end_cause END,
                        pace_state = CASE WHEN $4::int >= 3 THEN \(Self.paceStateAtEnd) ELSE pace_state END
                    WHERE id = $1::uuid AND (CASE status WHEN 'queued' THEN 0 WHEN 'ringing' THEN 1 WHEN 'in-progress' THEN 2 ELSE 3 END) < $4::int
                    RETURNING *
                ), extra AS (
                    INSERT INTO call_events (call_id, kind, node, region, result, elapsed_ms, detail)
                    SELECT $1::uuid, e.kind, e.node, e.region, e.result, e.ms, e.detail
                    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[]) AS e(kind, node, region, result, ms, detail)
                ), logged AS (
                    INSERT INTO call_events (call_id, kind, node, result, detail)
                    SELECT id, 'status', node, status, $5 FROM moved
                )
                SELECT \(Self.columns) FROM moved
                """, [id, status, node, String(rank), cause] + extra)
        }
        return try r.first.map(Self.call)
    }

    /// One status change of `advanceMany`.
    public struct Advance: Sendable, Hashable {
        public var id: String
        public var status: String
        public var node: String?
        public var cause: String?
        /// Log entries written with it (placement attempts).
        public var events: [Event]

        public init(id: String, status: String, node: String? = nil, cause: String? = nil, events: [Event] = []) {
            self.id = id
            self.status = status
            self.node = node
            self.cause = cause
            self.events = events
        }
    }

    /// Many forward-only status changes in one statement (one round trip, one commit): what
    /// `advance` does, for calls that are all different. Returns the calls that changed, by id.
    public func advanceMany(_ changes: [Advance]) async throws(StoreError) -> [String: Call] {
        let valid = changes.filter { isUUID($0.id) && Self.rank[$0.status] != nil }
        guard !valid.isEmpty else { return [:] }
        func array(_ values: [String?]) -> String { Self.arrayLiteral(values) }
        let events = valid.flatMap { c in c.events.map { (c.id, $0) } }
        let params: [String?] =
            [
                array(valid.map(\.id)), array(valid.map(\.status)), array(valid.map(\.node)), array(valid.map { String(Self.rank[$0.status]!) }),
                array(valid.map(\.cause)),
                array(events.map { $0.0 }),
            ] + Self.eventArrays(events.map { $0.1 })
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute(
                "advance_calls",
                """
                WITH input AS (
                    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[]) AS i(id, status, node, rank, cause)
                ), locked AS (
                    -- Rows locked in id order, one index lookup each: two multi-row writers cannot
                    -- deadlock (PostgreSQL would abort one after deadlock_timeout, 1 s).
                    SELECT l.id FROM (SELECT DISTINCT id FROM input ORDER BY 1) i, LATERAL (SELECT c.id FROM calls c WHERE c.id = i.id FOR UPDATE) l
                ), moved AS (
                    UPDATE calls c SET status = i.status, updated_at = now(), node = coalesce(i.node, c.node),
                        answered_at = CASE WHEN i.status = 'in-progress' THEN now() ELSE c.answered_at END,
                        ended_at = CASE WHEN i.rank >= 3 THEN now() ELSE c.ended_at END,
                        end_cause = CASE WHEN i.rank >= 3 THEN i.cause ELSE c.end_cause END,
                        pace_state = CASE WHEN i.rank >= 3 THEN \(Self.paceStateAtEnd) ELSE c.pace_state END
                    FROM input i
                    WHERE c.id = i.id AND c.id IN (SELECT id FROM locked) AND (CASE c.status WHEN 'queued' THEN 0 WHEN 'ringing' THEN 1 WHEN 'in-progress' THEN 2 ELSE 3 END) < i.rank
                    RETURNING c.*
                ), extra AS (
                    INSERT INTO call_events (call_id, kind, node, region, result, elapsed_ms, detail)
                    SELECT e.call_id, e.kind, e.node, e.region, e.result, e.ms, e.detail
                    FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[])
                        AS e(call_id, kind, node, region, result, ms, detail)
                ), logged AS (
                    INSERT INTO call_events (call_id, kind, node, result, detail)
                    SELECT id, 'status', node, status, end_cause FROM moved
                )
                SELECT \(Self.columns) FROM moved
                """, params)
        }
        return try Self.callsByID(r)
    }

    /// A call's `pace_state` once it ends: out of waiting/due (the pacing index holds only
    /// those), `released` so a late redelivery of its job reserves no slot.
    static let paceStateAtEnd = "CASE WHEN pace_state IN ('waiting', 'due') THEN 'released' ELSE pace_state END"

    /// A Postgres array literal (`{"a",NULL,"b"}`).
    static func arrayLiteral(_ values: [String?]) -> String {
        "{"
            + values.map { v in
                guard let v else { return "NULL" }
                var quoted = "\""
                for ch in v {
                    if ch == "\\" || ch == "\"" { quoted.append("\\") }
                    quoted.append(ch)
                }
                return quoted + "\""
            }.joined(separator: ",") + "}"
    }

    /// Postgres array literals of the events' columns, for `unnest`.
    static func eventArrays(_ events: [Event]) -> [String?] {
        let literal = arrayLiteral
        return [
            literal(events.map(\.kind)), literal(events.map(\.node)), literal(events.map(\.region)), literal(events.map(\.result)),
            literal(events.map { $0.elapsedMs.map(String.init) }), literal(events.map(\.detail)),
        ]
    }

    /// Calls recorded on `node` that have not reached a final status (what a reconcile checks).
    public func open(node: String, limit: Int = 5000) async throws(StoreError) -> [(id: String, status: String)] {
        let r = try await pool.query(
            """
            SELECT id::text AS id, status FROM calls WHERE node = $1 AND ended_at IS NULL AND status IN ('queued', 'ringing', 'in-progress')
            ORDER BY created_at LIMIT $2::int
            """,
            [node, String(limit)])
        return r.rows.compactMap { row in row["id"].flatMap { id in row["status"].map { (id, $0) } } }
    }

    /// Of `ids`, those whose call has a final status.
    public func finalized(_ ids: [String]) async throws(StoreError) -> Set<String> {
        let list = ids.filter(isUUID)
        guard !list.isEmpty else { return [] }
        let r = try await pool.query(
            "SELECT id::text AS id FROM calls WHERE id = ANY($1::uuid[]) AND status NOT IN ('queued', 'ringing', 'in-progress')",
            ["{" + list.joined(separator: ",") + "}"])
        return Set(r.rows.compactMap { $0["id"] })
    }

    /// One entry of a call's event log.
    public struct Event: Sendable, Hashable, Codable {
        public var at: String
        public var kind: String
        public var node: String?
        public var region: String?
        public var result: String
        public var elapsedMs: Int?
        public var detail: String?

        public init(at: String = "", kind: String, node: String? = nil, region: String? = nil, result: String, elapsedMs: Int? = nil, detail: String? = nil) {
            self.at = at
            self.kind = kind
            self.node = node
            self.region = region
            self.result = result
            self.elapsedMs = elapsedMs
            self.detail = detail
        }
    }

    /// Appends to the call's event log (`kind`: attempt, reconcile, callback; status entries
    /// are written by `advance`).
    public func record(_ id: String, _ e: Event) async throws(StoreError) {
        try await record(id, [e])
    }

    /// Appends several entries in one statement.
    public func record(_ id: String, _ events: [Event]) async throws(StoreError) {
        guard isUUID(id), !events.isEmpty else { return }
        try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) in
            try c.execute(
                "record_events",
                """
                INSERT INTO call_events (call_id, kind, node, region, result, elapsed_ms, detail)
                SELECT $1::uuid, e.kind, e.node, e.region, e.result, e.ms, e.detail
                FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[]) AS e(kind, node, region, result, ms, detail)
                """, [id] + Self.eventArrays(events))
        }
    }

    /// The event log of one of `account`'s calls, oldest first; nil when the call is not the account's.
    public func events(account: String, id: String) async throws(StoreError) -> [Event]? {
        guard try await get(account: account, id: id) != nil else { return nil }
        let r = try await pool.query(
            """
            SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, kind, node, region, result, elapsed_ms, detail
            FROM call_events WHERE call_id = $1::uuid ORDER BY id
            """, [id])
        return try r.rows.map { (row: QueryResult.Row) throws(StoreError) -> Event in
            Event(
                at: try row.string("at"), kind: try row.string("kind"), node: row["node"], region: row["region"], result: try row.string("result"),
                elapsedMs: row.optionalInt("elapsed_ms"), detail: row["detail"])
        }
    }

    static let rank: [String: Int] = [
        "queued": 0, "ringing": 1, "in-progress": 2, "completed": 3, "busy": 3, "failed": 3, "no-answer": 3, "canceled": 3,
    ]
}

/// `8-4-4-4-12` hex digits.
public func isUUID(_ s: String) -> Bool {
    let u = Array(s.utf8)
    guard u.count == 36 else { return false }
    for (i, c) in u.enumerated() {
        if i == 8 || i == 13 || i == 18 || i == 23 {
            if c != 45 { return false }
        } else if !((48...57).contains(c) || (97...102).contains(c) || (65...70).contains(c)) {
            return false
        }
    }
    return true
}

extension CallStore {
    /// What `delete` did.
    public enum DeleteOutcome: Sendable, Hashable {
        case deleted
        case notFound
        /// The call is not over yet; it keeps its row.
        case notFinal(status: String)
    }

    /// Hides a finished call of `account` from both APIs (Twilio's DELETE). Its CDRs and event
    /// log stay: billing depends on them.
    public func delete(account: String, id: String) async throws(StoreError) -> DeleteOutcome {
        guard isUUID(id) else { return .notFound }
        let r = try await pool.query(
            """
            WITH c AS (SELECT id, status FROM calls WHERE id = $1::uuid AND account_id = $2::uuid AND deleted_at IS NULL FOR UPDATE),
            d AS (UPDATE calls SET deleted_at = now() WHERE id = (SELECT id FROM c)
                  AND (SELECT status FROM c) IN ('completed', 'busy', 'failed', 'no-answer', 'canceled') RETURNING id)
            SELECT (SELECT status FROM c) AS status, (SELECT count(*) FROM d) AS deleted
            """, [id, account])
        guard let row = r.first, let status = row["status"] else { return .notFound }
        return row["deleted"] == "1" ? .deleted : .notFinal(status: status)
    }

    /// Points a call at new instructions (Twilio's update with `Url`, `Method` or `Twiml`); nil
    /// when the call is not the account's, or is over.
    public func redirect(account: String, id: String, url: String?, method: String?, twiml: String?) async throws(StoreError) -> Call? {
        guard isUUID(id) else { return nil }
        let r = try await pool.query(
            """
            UPDATE calls SET url = CASE WHEN $5::text IS NOT NULL THEN '' ELSE coalesce($3, url) END,
                             twiml = CASE WHEN $3::text IS NOT NULL THEN NULL ELSE coalesce($5, twiml) END,
                             method = coalesce($4, method), updated_at = now()
            WHERE id = $1::uuid AND account_id = $2::uuid AND deleted_at IS NULL
              AND status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')
            RETURNING \(Self.columns)
            """, [id, account, url, method, twiml])
        return try r.first.map(Self.call)
    }
}

extension CallStore {
    /// The open Twilio-surface calls of `account` (a SQL expression), at most `limit` of them:
    /// what the concurrency limit counts.
    /// A CTE that puts every row of the CTE `ins` (calls just inserted, `RETURNING *`) in the
    /// outbox, in the same statement: a call is never stored without its outbox row.
    static let intoOutbox = "outboxed AS (INSERT INTO call_outbox (call_id, created_at) SELECT id, created_at FROM ins)"

    static func openTwilioCalls(_ account: String, limit: String) -> String {
        """
        SELECT 1 FROM calls WHERE account_id = \(account) AND ended_at IS NULL AND status IN ('queued', 'ringing', 'in-progress') \
        AND api = '2010-04-01' LIMIT \(limit)
        """
    }

    /// Inserts many queued calls in one transaction (the API's create batcher): one commit for
    /// all, in the order given. Calls must carry no idempotency key (those take `insert`). For a
    /// call with `limited` set, its account's `max_concurrent_calls` holds as in
    /// `insert(_:limitConcurrency:)`: the accounts are locked (advisory, in hash order, so
    /// batches never deadlock), and calls past the limit come back `overLimit` without being
    /// inserted. The open calls are counted only when the account's `open_calls_bound` (never
    /// below the true count: every limited insert raises it under the lock, ends only lower the
    /// count) leaves too little room; the count then resets the bound. Far from its limit an
    /// account's batch costs no count at all.
    public func insertBatch(_ items: [(call: NewCall, limited: Bool)]) async throws(StoreError) -> [InsertOutcome] {
        precondition(items.allSatisfy { $0.call.idempotencyKey == nil }, "keyed calls take insert(_:limitConcurrency:)")
        guard !items.isEmpty else { return [] }
        let limitedAccounts = Array(Set(items.filter(\.limited).map(\.call.accountID))).sorted()
        let body: @Sendable (PostgresConnectionHandle) throws(StoreError) -> [InsertOutcome] = { c throws(StoreError) in
            var refused: [Int: Int] = [:]  // item index → the limit it is over
            var opens: [String: Int] = [:]  // limited account → its bound (or count) before this batch
            if !limitedAccounts.isEmpty {
                try c.execute(
                    "account_locks",
                    "SELECT pg_advisory_xact_lock(7201995, h) FROM (SELECT DISTINCT hashtext(a) AS h FROM unnest($1::text[]) a ORDER BY 1) s",
                    [Self.arrayLiteral(limitedAccounts)])
                // The bound first: an account whose bound leaves room for all of its calls in this
                // batch needs no count; the others are counted (at most their limit is read).
                let wanted = Dictionary(grouping: items.filter(\.limited), by: \.call.accountID).mapValues(\.count)
                let r = try c.execute(
                    "accounts_bounds",
                    "SELECT id::text AS id, max_concurrent_calls AS limit_n, open_calls_bound AS bound FROM accounts WHERE id = ANY($1::uuid[])",
                    [Self.arrayLiteral(limitedAccounts)])
                var room: [String: (left: Int, limit: Int)] = [:]
                var toCount: [String] = []
                for row in r.rows {
                    guard let id = row["id"], let limit = row.optionalInt("limit_n"), let bound = row.optionalInt("bound") else { continue }
                    if Int64(bound) + Int64(wanted[id] ?? 0) <= Int64(limit) {
                        room[id] = (wanted[id] ?? 0, limit)
                        opens[id] = bound
                    } else {
                        toCount.append(id)
                        room[id] = (0, limit)
                    }
                }
                if !toCount.isEmpty {
                    let counted = try c.execute(
                        "accounts_open_calls",
                        """
                        SELECT a.id::text AS id, (SELECT count(*) FROM (\(Self.openTwilioCalls("a.id", limit: "a.max_concurrent_calls"))) o) AS open_n
                        FROM accounts a WHERE a.id = ANY($1::uuid[])
                        """, [Self.arrayLiteral(toCount)])
                    for row in counted.rows {
                        guard let id = row["id"], let open = row.optionalInt("open_n"), let limit = room[id]?.limit else { continue }
                        room[id] = (max(0, limit - open), limit)
                        opens[id] = open
                    }
                }
                for (i, item) in items.enumerated() where item.limited {
                    guard var r = room[item.call.accountID] else { continue }
                    if r.left > 0 {
                        r.left -= 1
                        room[item.call.accountID] = r
                    } else {
                        refused[i] = r.limit
                    }
                }
            }
            let rows = items.enumerated().filter { refused[$0.offset] == nil }.map(\.element.call)
            // Each limited account's bound: what it was (or the count) plus what this batch adds.
            // It is written by the insert's own statement (one round trip less under the lock).
            var added: [String: Int] = [:]
            for (i, item) in items.enumerated() where item.limited && refused[i] == nil { added[item.call.accountID, default: 0] += 1 }
            let boundIDs = opens.keys.sorted()
            let bounds = [Self.arrayLiteral(boundIDs), Self.arrayLiteral(boundIDs.map { String(opens[$0]! + (added[$0] ?? 0)) })]
            func setBounds(_ ids: Int, _ values: Int) -> String {
                "UPDATE accounts a SET open_calls_bound = u.b FROM unnest($\(ids)::uuid[], $\(values)::int[]) AS u(id, b) WHERE a.id = u.id"
            }
            var inserted: [String: Call] = [:]
            if !rows.isEmpty {
                func col(_ f: (NewCall) -> String?) -> String? { Self.arrayLiteral(rows.map(f)) }
                let insert = """
                    INSERT INTO calls (id, account_id, to_number, from_number, url, status_callback, status_callback_events, timeout_s,
                                       time_limit_s, region, client_state, status, api, twiml, method, callback_method, paced)
                    SELECT id, account_id, to_number, from_number, url, cb, CASE WHEN ev = '' THEN '{}'::text[] ELSE string_to_array(ev, ',') END,
                           t, tl, region, cs, 'queued', api, twiml, method, cbm, paced
                    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[],
                                $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::boolean[])
                         AS u(id, account_id, to_number, from_number, url, cb, ev, t, tl, region, cs, api, twiml, method, cbm, paced)
                    RETURNING *
                    """
                let columns: [String?] =
                    [
                        col(\.id), col(\.accountID), col(\.to), col(\.from), col(\.url), col(\.statusCallback),
                        col { $0.statusCallbackEvents.joined(separator: ",") }, col { String($0.timeout) }, col { $0.timeLimit.map(String.init) },
                        col(\.region), col(\.clientState), col(\.api), col(\.twiml), col(\.method), col(\.callbackMethod),
                        col { $0.paced ? "t" : "f" },
                    ]
                let outboxed = "ins AS (\(insert)), \(Self.intoOutbox) SELECT \(Self.columns) FROM ins"
                let r =
                    boundIDs.isEmpty
                    ? try c.execute("insert_calls_batch", "WITH \(outboxed)", columns)
                    : try c.execute(
                        "insert_calls_batch_bounds", "WITH bounds AS (\(setBounds(17, 18))), \(outboxed)", columns + bounds)
                for row in r.rows {
                    let call = try Self.call(row)
                    inserted[call.id] = call
                }
            } else if !boundIDs.isEmpty {
                try c.execute("accounts_set_bounds", setBounds(1, 2), bounds)
            }
            return try items.enumerated().map { (i, item) throws(StoreError) -> InsertOutcome in
                if let limit = refused[i] { return .overLimit(limit: limit) }
                guard let call = inserted[item.call.id] else {
                    throw StoreError(.queryFailed, "batch insert returned no row for \(item.call.id)", context: "insert_calls_batch")
                }
                return .created(call)
            }
        }
        return limitedAccounts.isEmpty ? try await pool.withConnection(body) : try await pool.transaction(body)
    }
}
