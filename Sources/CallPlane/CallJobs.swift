public import Bus
public import Store

/// The call plane's contract, declared once for the API (which publishes) and the workers
/// (which consume): the `calls` stream and its job, and the `events` stream. Whichever process
/// starts first creates a stream; every process asks for the same configuration, so none
/// rewrites another's.
public enum CallJobs {
    /// Jobs for the orchestrators: `calls.originate`, `calls.cancel`. Kept a week; a
    /// re-published originate within the duplicate window is dropped by its message id (the
    /// call id).
    ///
    /// The window covers what re-publishes: the outbox sweeper (a call unacknowledged for 2 s,
    /// every second) and publish retries (seconds). nats-server keeps every id of the window in
    /// memory: a day's window grew it ~2 MB a minute at 60 calls/s in `make soak`, for good.
    /// A job that comes after the window anyway is not placed twice: the orchestrator's claim
    /// is a compare-and-set on the call's node (`CallStore.claim`).
    public static let duplicateWindow: Duration = .seconds(600)
    public static let stream = StreamConfig(
        name: "calls", subjects: ["calls.>"], maxAge: .seconds(7 * 86400), duplicateWindow: duplicateWindow)

    /// CDRs and other call-plane events: `events.cdr.<region>`, message id = node:channel (the
    /// CDR writer's publish retries last 20 s).
    public static let events = StreamConfig(name: "events", subjects: ["events.>"], duplicateWindow: duplicateWindow)

    public static let originate = "originate"
    public static let cancel = "cancel"

    /// The job on the `calls` stream. The orchestrator reads the call's row for everything but
    /// the id (the row is the truth); the rest travels for consumers that have no database.
    public struct Job: Codable, Sendable, Hashable {
        public var type: String
        public var call_id: String
        public var account_id: String?
        public var to: String?
        public var from: String?
        public var timeout: Int?
        public var time_limit: Int?
        public var region: String?
        public var url: String?
        public var status_callback: String?
        public var status_callback_events: [String]?
        public var client_state: String?
        /// Set on a Twilio-surface call's first job: the orchestrator reserves its pacing slot
        /// before placing it. A paced call's job from the scheduler (its slot has come) has none.
        public var paced: Bool?

        public init(_ c: CallStore.Call, type: String = CallJobs.originate) {
            self.type = type
            call_id = c.id
            account_id = c.accountID
            to = c.to
            from = c.from
            timeout = c.timeout
            time_limit = c.timeLimit
            region = c.region
            url = c.url
            status_callback = c.statusCallback
            status_callback_events = c.statusCallbackEvents
            client_state = c.clientState
            paced = c.paced && c.placedAt == nil ? true : nil
        }

        /// `calls.originate` / `calls.cancel`.
        public var subject: String { "calls.\(type)" }

        /// The originate's id is the call id (a re-publish is a duplicate); every cancel request is
        /// its own message (cancelling twice is harmless, a dropped retry is not).
        public var messageID: String {
            guard type == CallJobs.originate else { return "\(type)-\(call_id)-\(UInt64.random(in: 0...UInt64.max))" }
            return pacedRelease ? "\(call_id).due" : call_id
        }

        /// A paced call handed on by the scheduler when its slot came: its own message id, since
        /// the first job's id is within the stream's duplicate window.
        public var pacedRelease = false

        enum CodingKeys: String, CodingKey {
            case type, call_id, account_id, to, from, timeout, time_limit, region, url, status_callback, status_callback_events, client_state, paced
        }
    }
}
