/// Versioned schema migrations, applied in order at start-up (`switchyard migrate` too). Each
/// runs in its own transaction under an advisory lock, so several processes starting at once
/// apply each migration exactly once.
public enum Migrations {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public static let all: [Migration] = [
        Migration(
            version: 1, name: "accounts, calls, cdr, rates",
            sql: """
                CREATE TABLE accounts (
                    id          uuid PRIMARY KEY,
                    name        text NOT NULL,
                    key_prefix  text NOT NULL UNIQUE,
                    key_hash    bytea NOT NULL UNIQUE,          -- sha256 of the API key; the key itself is never stored
                    created_at  timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE calls (
                    id                      uuid PRIMARY KEY,
                    account_id              uuid NOT NULL REFERENCES accounts(id),
                    to_number               text NOT NULL,
                    from_number             text NOT NULL,
                    url                     text NOT NULL,
                    status_callback         text,
                    status_callback_events  text[] NOT NULL DEFAULT '{}',
                    timeout_s               integer NOT NULL,
                    time_limit_s            integer,
                    region                  text,
                    client_state            text,
                    status                  text NOT NULL CHECK (status IN
                        ('queued', 'ringing', 'in-progress', 'completed', 'busy', 'failed', 'no-answer', 'canceled')),
                    node                    text,
                    idempotency_key         text,
                    request_hash            text,
                    created_at              timestamptz NOT NULL DEFAULT now(),
                    updated_at              timestamptz NOT NULL DEFAULT now(),
                    answered_at             timestamptz,
                    ended_at                timestamptz,
                    published_at            timestamptz       -- NULL: not yet on the stream (the outbox)
                );
                CREATE UNIQUE INDEX calls_idempotency ON calls (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
                CREATE INDEX calls_account_page ON calls (account_id, created_at DESC, id DESC);
                CREATE INDEX calls_unpublished ON calls (created_at) WHERE published_at IS NULL;
                CREATE TABLE cdr (
                    channel_uuid    text PRIMARY KEY,             -- one row per channel: a duplicate event writes nothing
                    call_id         text NOT NULL,
                    node            text NOT NULL,
                    region          text,
                    direction       text NOT NULL,
                    from_number     text,
                    to_number       text,
                    start_at        timestamptz,
                    answer_at       timestamptz,
                    end_at          timestamptz,
                    duration_s      integer NOT NULL DEFAULT 0,
                    billsec         integer NOT NULL DEFAULT 0,
                    hangup_cause    text,
                    codec           text,
                    rtp_in_packets  bigint,
                    rtp_in_skipped  bigint,
                    jitter_max_ms   double precision,
                    loss_pct        double precision,
                    mos             double precision,
                    cost            numeric(12, 5),
                    created_at      timestamptz NOT NULL DEFAULT now()
                );
                CREATE INDEX cdr_call ON cdr (call_id);
                CREATE TABLE rates (
                    prefix          text PRIMARY KEY,
                    per_minute      numeric(12, 5) NOT NULL CHECK (per_minute >= 0)
                );
                """),
        Migration(
            version: 2, name: "CDR gap tracking: incomplete rows, node boot, live channels",
            sql: """
                ALTER TABLE cdr ADD COLUMN incomplete boolean NOT NULL DEFAULT false;
                ALTER TABLE cdr ADD COLUMN core_uuid text;
                CREATE INDEX cdr_node_core ON cdr (node, core_uuid);
                -- Channels a CDR writer saw created and not yet written: what a restarted writer checks.
                CREATE TABLE cdr_live (
                    channel_uuid  text PRIMARY KEY,
                    node          text NOT NULL,
                    core_uuid     text,
                    created_at    timestamptz NOT NULL DEFAULT now()
                );
                CREATE INDEX cdr_live_node ON cdr_live (node);
                -- Channels known to have ended without a CDR that could not be identified, per node boot.
                CREATE TABLE cdr_gaps (
                    node          text NOT NULL,
                    core_uuid     text NOT NULL,
                    missing       integer NOT NULL,
                    reported_at   timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (node, core_uuid)
                );
                """),
        Migration(
            version: 3, name: "CDRs keyed by node and channel; the call's event log; end causes",
            sql: """
                -- A channel UUID is unique on one node, not across nodes: a call id that got channels on two
                -- nodes keeps both rows (and both costs), and the second is reported as an error.
                ALTER TABLE cdr DROP CONSTRAINT cdr_pkey;
                ALTER TABLE cdr ADD PRIMARY KEY (node, channel_uuid);
                ALTER TABLE cdr_live DROP CONSTRAINT cdr_live_pkey;
                ALTER TABLE cdr_live ADD PRIMARY KEY (node, channel_uuid);
                ALTER TABLE calls ADD COLUMN end_cause text;
                -- Why a call went where it went and what happened: placement attempts, status changes,
                -- reconciliations and callback deliveries, in order.
                CREATE TABLE call_events (
                    id          bigserial PRIMARY KEY,
                    call_id     uuid NOT NULL,
                    at          timestamptz NOT NULL DEFAULT now(),
                    kind        text NOT NULL CHECK (kind IN ('attempt', 'status', 'reconcile', 'callback')),
                    node        text,
                    region      text,
                    result      text NOT NULL,
                    elapsed_ms  integer,
                    detail      text
                );
                CREATE INDEX call_events_call ON call_events (call_id, id);
                CREATE INDEX calls_node_open ON calls (node) WHERE status IN ('queued', 'ringing', 'in-progress');
                -- The key status callbacks are signed with (Twilio's AuthToken): kept, since an HMAC needs it.
                ALTER TABLE accounts ADD COLUMN signing_secret text;
                UPDATE accounts SET signing_secret = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
                ALTER TABLE accounts ALTER COLUMN signing_secret SET NOT NULL;
                """),
        Migration(
            version: 4, name: "the Twilio-compatible surface: its call fields, pacing, concurrency limits, soft deletes",
            sql: """
                -- Which surface created the call ('v1' or '2010-04-01'): the Twilio surface's calls are
                -- paced and their callbacks carry Twilio's SIDs.
                ALTER TABLE calls ADD COLUMN api text NOT NULL DEFAULT 'v1';
                ALTER TABLE calls ADD COLUMN twiml text;
                ALTER TABLE calls ADD COLUMN method text;
                ALTER TABLE calls ADD COLUMN callback_method text;
                -- Pacing (Twilio's calls per second per account): NULL = not paced or no slot yet;
                -- 'waiting' = the slot at scheduled_at is in the future; 'due' = being handed to the
                -- stream; 'released' = placed through the normal path.
                ALTER TABLE calls ADD COLUMN paced boolean NOT NULL DEFAULT false;
                ALTER TABLE calls ADD COLUMN pace_state text CHECK (pace_state IN ('waiting', 'due', 'released'));
                ALTER TABLE calls ADD COLUMN scheduled_at timestamptz;
                -- When the call was first claimed for a node (Twilio's start_time; queue_time is
                -- placed_at - created_at).
                ALTER TABLE calls ADD COLUMN placed_at timestamptz;
                -- DELETE on the Twilio surface hides a finished call; its CDRs stay (billing).
                ALTER TABLE calls ADD COLUMN deleted_at timestamptz;
                CREATE INDEX calls_pacing ON calls (scheduled_at) WHERE pace_state IN ('waiting', 'due') AND status = 'queued';
                CREATE INDEX calls_account_open ON calls (account_id) WHERE status IN ('queued', 'ringing', 'in-progress');
                ALTER TABLE accounts ADD COLUMN calls_per_second double precision NOT NULL DEFAULT 1 CHECK (calls_per_second > 0);
                ALTER TABLE accounts ADD COLUMN max_concurrent_calls integer NOT NULL DEFAULT 1000 CHECK (max_concurrent_calls > 0);
                ALTER TABLE accounts ADD COLUMN next_call_at timestamptz NOT NULL DEFAULT 'epoch';
                """),
        Migration(
            version: 5, name: "an upper bound of each account's open Twilio-surface calls",
            sql: """
                -- Never below the account's open Twilio-surface calls: every insert under the account's
                -- lock raises it, ends only lower the true count. A create far from the limit needs no
                -- count; near it (or when the bound has drifted up), the calls are counted and the bound
                -- reset. It starts past any limit, so the first create counts.
                ALTER TABLE accounts ADD COLUMN open_calls_bound integer NOT NULL DEFAULT 2147483647;
                DROP INDEX calls_account_open;
                CREATE INDEX calls_account_open ON calls (account_id) WHERE status IN ('queued', 'ringing', 'in-progress') AND api = '2010-04-01';
                """),
        Migration(
            version: 6, name: "the publish outbox as a table of its own",
            sql: """
                -- A call not yet on the stream has a row here, inserted by the statement that inserts the
                -- call and deleted once the stream has acknowledged its job. Marking calls.published_at
                -- instead updated every call row once more: a non-HOT update (status and node are in
                -- partial indexes, so each update writes an entry in every index of calls) that also held
                -- the row lock the orchestrator's claim of the same call waited on.
                CREATE TABLE call_outbox (
                    call_id     uuid PRIMARY KEY,
                    created_at  timestamptz NOT NULL
                );
                CREATE INDEX call_outbox_age ON call_outbox (created_at);
                INSERT INTO call_outbox (call_id, created_at) SELECT id, created_at FROM calls WHERE published_at IS NULL;
                DROP INDEX calls_unpublished;
                ALTER TABLE calls DROP COLUMN published_at;
                """),
        Migration(
            version: 7, name: "status changes as HOT updates: the open-call indexes keyed on ended_at",
            sql: """
                -- A call's row is updated four times (claimed, ringing, answered, ended). With status in
                -- the predicates of the open-call indexes, each update wrote a new entry in every index of
                -- calls (a non-HOT update). "Open" is now ended_at IS NULL (every final status sets
                -- ended_at, in the same statement), so ringing and answered change no indexed column and
                -- are HOT updates: the new row version goes in the same page, no index is touched. Free
                -- room in each page for those versions: fillfactor 80 (new pages).
                UPDATE calls SET ended_at = updated_at WHERE ended_at IS NULL AND status NOT IN ('queued', 'ringing', 'in-progress');
                DROP INDEX calls_node_open;
                CREATE INDEX calls_node_open ON calls (node) WHERE ended_at IS NULL;
                DROP INDEX calls_account_open;
                CREATE INDEX calls_account_open ON calls (account_id) WHERE ended_at IS NULL AND api = '2010-04-01';
                -- A paced call leaves waiting/due when it ends (each final status write sets it
                -- 'released'), so the pacing index needs no status either. Its predicate shares nothing
                -- with the others: the scheduler's poll can only use it (with a shared predicate, a
                -- planner that believed both indexes empty could scan every open call instead).
                UPDATE calls SET pace_state = 'released' WHERE pace_state IN ('waiting', 'due') AND status NOT IN ('queued', 'ringing', 'in-progress');
                DROP INDEX calls_pacing;
                CREATE INDEX calls_pacing ON calls (scheduled_at) WHERE pace_state IN ('waiting', 'due');
                ALTER TABLE calls SET (fillfactor = 80);
                """),
    ]

    /// Applies every migration not yet recorded in `schema_migrations`; returns the versions applied.
    @discardableResult
    public static func migrate(_ pool: PostgresPool) async throws(StoreError) -> [Int] {
        // Under the lock too: two concurrent CREATE TABLE IF NOT EXISTS can still collide (23505).
        try await pool.transaction { (c: PostgresConnectionHandle) throws(StoreError) in
            try c.query("SELECT pg_advisory_xact_lock(7201994)")
            try c.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
        }
        var applied: [Int] = []
        for m in all {
            let done = try await pool.transaction { (c: PostgresConnectionHandle) throws(StoreError) -> Bool in
                // One migrator at a time across processes.
                try c.query("SELECT pg_advisory_xact_lock(7201994)")
                guard try c.query("SELECT 1 FROM schema_migrations WHERE version = $1", [String(m.version)]).rows.isEmpty else { return false }
                do throws(StoreError) {
                    try c.query(m.sql, context: "migration \(m.version)")
                } catch {
                    throw StoreError(.migrationFailed, error.message, sqlState: error.sqlState, context: "migration \(m.version) \(m.name)")
                }
                try c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [String(m.version), m.name])
                return true
            }
            if done { applied.append(m.version) }
        }
        return applied
    }
}
