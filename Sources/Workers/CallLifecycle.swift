/// One API call's life as an orchestrator sees it, as a pure value: events in, actions out.
/// `CallDriver` performs the actions (database, ESL, timers, the job's ack) and feeds their
/// results back as events. No sockets, no clock of its own: `now` comes with every event, so
/// every path runs in unit tests on a manual clock.
///
/// The rule it exists for: **a call is never placed twice.** Another node is tried only when
/// the node of the last attempt provably has no channel for it: the node refused before
/// creating one (a node refusal cause in its job result, or the command provably never left),
/// or a connected node answered `uuid_exists` with false. When the state is unknown (ESL slow
/// or down), the machine asks again (bounded by `confirmFor`) and never redials blindly; when
/// the bound runs out the call ends `failed` (cause `node-unreachable`) and a channel that
/// turns up later is hung up.
///
/// A call has exactly one final status: the first of its hangup event, a far-end refusal, a
/// reconcile against the node's channels after a reconnect (`absent` → ended unseen), or the
/// node staying lost for `nodeLostAfter` (driver's sweep). Later events change nothing.
public struct CallLifecycle<C: Clock>: Sendable where C.Duration == Duration {
    public struct Settings: Sendable, Hashable {
        /// How long a node has to create the channel after the originate before it is asked.
        public var acceptTimeout: Duration
        /// Between two `uuid_exists` questions while the answer is unknown.
        public var confirmEvery: Duration
        /// How long an unknown state is asked about before the call is given up (not redialed).
        public var confirmFor: Duration

        public init(acceptTimeout: Duration = .seconds(5), confirmEvery: Duration = .seconds(1), confirmFor: Duration = .seconds(30)) {
            self.acceptTimeout = acceptTimeout
            self.confirmEvery = confirmEvery
            self.confirmFor = confirmFor
        }
    }

    /// A node the call can go to.
    public struct Placement: Sendable, Hashable {
        public var node: String
        public var region: String?
        public init(node: String, region: String?) {
            self.node = node
            self.region = region
        }
    }

    public struct Attempt: Sendable, Hashable {
        public var number: Int
        public var placement: Placement
        public var started: C.Instant
    }

    /// What the call row said when its placement job arrived.
    public struct Job: Sendable, Hashable {
        public var status: String
        /// The node recorded by an earlier claim (a redelivered job), if any.
        public var node: String?
        /// True while the call may still wait for a node (its own timeout has not passed).
        public var mayWait: Bool

        public init(status: String, node: String?, mayWait: Bool) {
            self.status = status
            self.node = node
            self.mayWait = mayWait
        }
    }

    /// A node's answer to "is the call there?".
    public enum Presence: Sendable, Hashable {
        case present(answered: Bool)
        /// No channel, and no CDR for one: the node never had it (or it left no trace).
        case absent
        /// No channel, but its CDR is written: it ended there (with this final status).
        case ended(status: String)
        /// No answer (ESL down, timeout, error).
        case unknown(String)
    }

    public enum ChannelEvent: Sendable, Hashable {
        case created
        case progress
        case answered
        case hangup(status: String, cause: String)
    }

    public enum TimerKind: Sendable, Hashable { case accept, confirm }

    public struct TimerID: Sendable, Hashable {
        public var kind: TimerKind
        public var generation: Int
    }

    public enum Event: Sendable, Hashable {
        case job(Job)
        case candidates([Placement])
        /// The claim (node recorded on the call) succeeded, or the call is no longer queued.
        case claimed(Bool)
        /// The database could not be reached for a step of the placement.
        case storeUnavailable(String)
        /// The originate provably did not leave (no ESL session).
        case originateNotSent(String)
        /// Sending the originate failed in a way that leaves open whether the node got it.
        case originateFailed(String)
        /// The node's BACKGROUND_JOB for attempt `attempt`: `+OK …` or `-ERR <cause>`.
        case jobResult(attempt: Int, reply: String)
        case channel(ChannelEvent, node: String)
        case presence(Presence, node: String)
        case timer(TimerID)
        case cancel
        /// The node's ESL session stayed lost for the configured bound.
        case nodeLost(node: String)
        /// After a reconnect, the node's truth (`show channels`), with the status the database had.
        case reconciled(Presence, node: String, storedStatus: String)
    }

    public enum Action: Sendable, Hashable {
        /// Ask the node (`uuid_exists`, then the CDR table): answer with `.presence`.
        case checkPresence(node: String)
        /// Answer with `.candidates`: usable nodes in preference order, without `excluding`.
        case chooseNodes(excluding: [String])
        /// Record the node on the call: only while it is `queued` and its row still names
        /// `expectedNode` (nil: none yet), so that two jobs for one call (a re-publish after the
        /// stream's duplicate window) never both place it. Answer with `.claimed`.
        case claim(Placement, expectedNode: String?)
        case originate(Placement, attempt: Int)
        /// A placement attempt for the call's event log.
        case recordAttempt(Placement, result: String, elapsed: Duration)
        case reconcileNote(node: String, result: String)
        /// Move the call's status forward (a database write, then the status callback).
        /// `channelLost`: no hangup event will come; write an incomplete CDR for the channel.
        case setStatus(String, node: String?, cause: String?, channelLost: Bool)
        case ackJob
        case nakJob(after: Duration)
        /// Another delivery of the job arrived while this one is placed: release it for later.
        case nakDuplicate(after: Duration)
        case jobInProgress
        case startTimer(TimerID, after: Duration)
        /// A node answered with a refusal: keep new calls off it for a moment.
        case holdDown(node: String, for: Duration)
        case hangup(node: String, cause: String)
        /// A channel of this call on a second node: logged and counted as an error, and hung up.
        case secondChannel(node: String)
        /// The call reached its end here: the driver forgets it.
        case forget
    }

    public enum Phase: Sendable, Hashable {
        /// Nothing owned: no job yet (events of a call another orchestrator placed are observed from here).
        case idle
        case choosing
        case claiming(Placement)
        case originating(Attempt)
        /// The state of `node` is unknown (accept timeout, a failed send, a redelivered job): asking it.
        case confirming(node: String, attempt: Attempt?, until: C.Instant)
        case live(node: String, answered: Bool)
        case ended(status: String)
    }

    public private(set) var phase: Phase = .idle
    /// A placement job is held (not yet acked or released).
    public private(set) var jobHeld = false
    public private(set) var attempts = 0
    /// Nodes that provably have no channel for this call and refused it.
    public private(set) var excluded: [String] = []
    private var cancelRequested = false
    private var mayWait = false
    /// The node the call's row names, as far as this lifecycle knows (the claim checks it).
    private var rowNode: String?
    private var generation = 0
    let settings: Settings

    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// A call known to have ended (its lifecycle was forgotten): late events find the end.
    public static func ended(settings: Settings = Settings(), status: String = "ended") -> CallLifecycle {
        var l = CallLifecycle(settings: settings)
        l.phase = .ended(status: status)
        return l
    }

    public var isEnded: Bool {
        if case .ended = phase { return true }
        return false
    }

    // MARK: Events

    public mutating func handle(_ event: Event, now: C.Instant) -> [Action] {
        switch event {
        case .job(let job): return jobArrived(job, now: now)
        case .candidates(let list): return candidates(list, now: now)
        case .claimed(let ok): return claimed(ok, now: now)
        case .storeUnavailable: return storeUnavailable()
        case .originateNotSent(let why):
            guard case .originating(let a) = phase else { return [] }
            return refused(a, reason: "not sent: \(why)", now: now)
        case .originateFailed(let why):
            guard case .originating(let a) = phase else { return [] }
            return confirm(node: a.placement.node, attempt: a, now: now, note: "originate send failed: \(why)")
        case .jobResult(let n, let reply): return jobResult(n, reply: reply, now: now)
        case .channel(let e, let node): return channel(e, node: node, now: now)
        case .presence(let p, let node): return presence(p, node: node, now: now)
        case .timer(let t): return timer(t, now: now)
        case .cancel: return cancel()
        case .nodeLost(let node): return nodeLost(node)
        case .reconciled(let p, let node, let stored): return reconciled(p, node: node, stored: stored)
        }
    }

    private mutating func jobArrived(_ job: Job, now: C.Instant) -> [Action] {
        if jobHeld { return [.nakDuplicate(after: .seconds(5))] }
        switch phase {
        case .live, .ended:
            // Placed already (its events came first): the job's work is done.
            return [.ackJob]
        case .idle:
            break
        default:
            return [.nakDuplicate(after: .seconds(5))]
        }
        guard job.status == "queued" else {
            // Past queued (placed, or canceled): a redelivery finds nothing to do.
            return [.ackJob, .forget]
        }
        jobHeld = true
        mayWait = job.mayWait
        rowNode = job.node
        if let node = job.node {
            // Claimed before by an orchestrator that stopped: is the call on that node?
            return confirm(node: node, attempt: nil, now: now, note: nil)
        }
        phase = .choosing
        return [.chooseNodes(excluding: excluded)]
    }

    private mutating func candidates(_ list: [Placement], now: C.Instant) -> [Action] {
        guard phase == .choosing else { return [] }
        if let next = list.first(where: { !excluded.contains($0.node) }) {
            phase = .claiming(next)
            return [.claim(next, expectedNode: rowNode), .jobInProgress]
        }
        if excluded.isEmpty, mayWait {
            // No node usable yet (all down, or ESL sessions not up): the job comes back later.
            phase = .idle
            jobHeld = false
            return [.nakJob(after: .seconds(1)), .forget]
        }
        return end("failed", node: nil, cause: excluded.isEmpty ? "no-node" : "all-nodes-refused")
    }

    private mutating func claimed(_ ok: Bool, now: C.Instant) -> [Action] {
        guard case .claiming(let p) = phase else { return [] }
        guard ok else {
            // No longer queued: canceled (or placed by another orchestrator) meanwhile.
            phase = .idle
            jobHeld = false
            return [.ackJob, .forget]
        }
        rowNode = p.node
        attempts += 1
        generation += 1  // an earlier attempt's accept timer is void
        let a = Attempt(number: attempts, placement: p, started: now)
        phase = .originating(a)
        return [.originate(p, attempt: a.number), startTimer(.accept, settings.acceptTimeout)]
    }

    private mutating func storeUnavailable() -> [Action] {
        switch phase {
        case .choosing, .claiming, .idle:
            // Nothing was sent to a node: give the job back and try later.
            phase = .idle
            let held = jobHeld
            jobHeld = false
            return held ? [.nakJob(after: .seconds(2)), .forget] : [.forget]
        default:
            // A node may have the call: stay, the status writes retry on their own.
            return []
        }
    }

    private mutating func jobResult(_ n: Int, reply: String, now: C.Instant) -> [Action] {
        let attempt: Attempt
        switch phase {
        case .originating(let a) where a.number == n: attempt = a
        case .confirming(_, let a?, _) where a.number == n: attempt = a
        default: return []  // late, or the channel is already known
        }
        let text = reply.trimmingWhitespace()
        guard text.hasPrefix("-ERR") else {
            // +OK: the channel exists (CHANNEL_CREATE may still be on its way).
            return created(on: attempt.placement.node, attempt: attempt, now: now, via: "originate +OK")
        }
        let cause = String(text.dropFirst(4)).trimmingWhitespace()
        if CallEvents.nodeRefusals.contains(cause) || cause.isEmpty {
            return refused(attempt, reason: cause.isEmpty ? "-ERR" : cause, now: now)
        }
        // The far end answered (busy, no answer ...) before any channel event: final.
        let status = CallEvents.finalStatusForCause(cause)
        return [.recordAttempt(attempt.placement, result: "far end: \(cause)", elapsed: attempt.started.duration(to: now))]
            + end(status, node: attempt.placement.node, cause: cause)
    }

    /// The node provably has no channel: try the next.
    private mutating func refused(_ a: Attempt, reason: String, now: C.Instant) -> [Action] {
        excluded.append(a.placement.node)
        phase = .choosing
        return [
            .recordAttempt(a.placement, result: "refused: \(reason)", elapsed: a.started.duration(to: now)),
            .holdDown(node: a.placement.node, for: .seconds(2)),
            .chooseNodes(excluding: excluded),
        ]
    }

    private mutating func confirm(node: String, attempt: Attempt?, now: C.Instant, note: String?) -> [Action] {
        phase = .confirming(node: node, attempt: attempt, until: now.advanced(by: settings.confirmFor))
        var actions: [Action] = []
        if let attempt, let note {
            actions.append(.recordAttempt(attempt.placement, result: "unknown: \(note)", elapsed: attempt.started.duration(to: now)))
        }
        actions.append(.checkPresence(node: node))
        return actions
    }

    private mutating func presence(_ p: Presence, node: String, now: C.Instant) -> [Action] {
        guard case .confirming(let n, let attempt, let until) = phase, n == node else { return [] }
        switch p {
        case .present(let answered):
            var actions = created(on: node, attempt: attempt, now: now, via: "uuid_exists true")
            if answered {
                phase = .live(node: node, answered: true)
                actions.append(.setStatus("in-progress", node: node, cause: nil, channelLost: false))
            }
            return actions
        case .ended(let status):
            var actions: [Action] = []
            if let attempt {
                actions.append(.recordAttempt(attempt.placement, result: "ended (its CDR is written)", elapsed: attempt.started.duration(to: now)))
            }
            return actions + end(status, node: node, cause: nil)
        case .absent:
            if let attempt {
                return refused(attempt, reason: "no channel (uuid_exists false)", now: now)
            }
            // A redelivered job whose claim never reached a node: place it now.
            phase = .choosing
            return [.reconcileNote(node: node, result: "redelivered job: no channel on the claimed node"), .chooseNodes(excluding: excluded)]
        case .unknown(let why):
            if now >= until {
                var actions: [Action] = []
                if let attempt {
                    actions.append(
                        .recordAttempt(
                            attempt.placement, result: "state unknown for \(settings.confirmFor): not redialed (\(why))",
                            elapsed: attempt.started.duration(to: now)))
                }
                return actions + end("failed", node: node, cause: "node-unreachable")
            }
            return [startTimer(.confirm, settings.confirmEvery)]
        }
    }

    private mutating func timer(_ t: TimerID, now: C.Instant) -> [Action] {
        guard t.generation == generation else { return [] }  // a stale timer
        switch (t.kind, phase) {
        case (.accept, .originating(let a)):
            return confirm(node: a.placement.node, attempt: a, now: now, note: "no channel within \(settings.acceptTimeout)")
        case (.confirm, .confirming(let node, _, _)):
            return [.checkPresence(node: node)]
        default:
            return []
        }
    }

    private mutating func created(on node: String, attempt: Attempt?, now: C.Instant, via: String) -> [Action] {
        phase = .live(node: node, answered: false)
        generation += 1  // the accept and confirm timers are void
        var actions: [Action] = []
        if let attempt { actions.append(.recordAttempt(attempt.placement, result: "created (\(via))", elapsed: attempt.started.duration(to: now))) }
        actions.append(.setStatus("ringing", node: node, cause: nil, channelLost: false))
        if jobHeld {
            jobHeld = false
            actions.append(.ackJob)
        }
        if cancelRequested { actions.append(.hangup(node: node, cause: "ORIGINATOR_CANCEL")) }
        return actions
    }

    private mutating func channel(_ e: ChannelEvent, node: String, now: C.Instant) -> [Action] {
        switch phase {
        case .ended:
            // A channel after the call's end (it was given up as unknown): it must not live on.
            if e == .created || e == .answered { return [.hangup(node: node, cause: "ORIGINATOR_CANCEL")] }
            return []
        case .live(let liveNode, let answered):
            guard liveNode == node else {
                return e == .created ? [.secondChannel(node: node), .hangup(node: node, cause: "LOSE_RACE")] : []
            }
            switch e {
            case .created, .progress: return []
            case .answered:
                guard !answered else { return [] }
                phase = .live(node: node, answered: true)
                return [.setStatus("in-progress", node: node, cause: nil, channelLost: false)]
            case .hangup(let status, let cause):
                return end(status, node: node, cause: cause)
            }
        case .originating(let a):
            guard a.placement.node == node else { return foreignChannel(e, node: node) }
            return channelWhilePlacing(e, node: node, attempt: a, now: now)
        case .confirming(let n, let a, _):
            guard n == node else { return foreignChannel(e, node: node) }
            return channelWhilePlacing(e, node: node, attempt: a, now: now)
        case .idle, .choosing, .claiming:
            // A call placed by another orchestrator (observed), or events racing our own bookkeeping.
            return channelWhilePlacing(e, node: node, attempt: nil, now: now)
        }
    }

    private mutating func channelWhilePlacing(_ e: ChannelEvent, node: String, attempt: Attempt?, now: C.Instant) -> [Action] {
        switch e {
        case .created, .progress:
            return created(on: node, attempt: attempt, now: now, via: "CHANNEL_CREATE")
        case .answered:
            var actions = created(on: node, attempt: attempt, now: now, via: "CHANNEL_ANSWER")
            phase = .live(node: node, answered: true)
            actions.append(.setStatus("in-progress", node: node, cause: nil, channelLost: false))
            return actions
        case .hangup(let status, let cause):
            var actions: [Action] = []
            if let attempt { actions.append(.recordAttempt(attempt.placement, result: "ended: \(cause)", elapsed: attempt.started.duration(to: now))) }
            return actions + end(status, node: node, cause: cause)
        }
    }

    /// A channel of this call on a node other than the one being placed on.
    private func foreignChannel(_ e: ChannelEvent, node: String) -> [Action] {
        e == .created ? [.secondChannel(node: node), .hangup(node: node, cause: "LOSE_RACE")] : []
    }

    private mutating func cancel() -> [Action] {
        switch phase {
        case .live(let node, _):
            return [.hangup(node: node, cause: "ORIGINATOR_CANCEL")]
        case .originating, .confirming, .claiming, .choosing:
            cancelRequested = true
            return []
        case .idle, .ended:
            return []
        }
    }

    private mutating func nodeLost(_ node: String) -> [Action] {
        switch phase {
        case .live(let n, let answered) where n == node:
            return end(answered ? "completed" : "failed", node: node, cause: "node-lost", channelLost: true)
        case .idle:
            // Not followed here (placed by an orchestrator that is gone): the driver read the
            // call from the database, so it is open on that node.
            return end("failed", node: node, cause: "node-lost", channelLost: true)
        default:
            return []
        }
    }

    private mutating func reconciled(_ p: Presence, node: String, stored: String) -> [Action] {
        let answeredBefore: Bool
        switch phase {
        case .live(let n, let a) where n == node: answeredBefore = a
        case .idle: answeredBefore = stored == "in-progress"
        default: return []  // placing: the attempt's own timers decide
        }
        switch p {
        case .present(let answered):
            // Followed from here on. (Queued calls are not reconciled: their job is still held.)
            phase = .live(node: node, answered: answered || answeredBefore)
            return answered && !answeredBefore ? [.setStatus("in-progress", node: node, cause: nil, channelLost: false)] : []
        case .absent:
            return [.reconcileNote(node: node, result: "channel gone while unseen")]
                + end(answeredBefore ? "completed" : "failed", node: node, cause: "ended-unseen", channelLost: true)
        case .ended(let status):
            return end(status, node: node, cause: nil)
        case .unknown:
            return []
        }
    }

    /// The one final status.
    private mutating func end(_ status: String, node: String?, cause: String?, channelLost: Bool = false) -> [Action] {
        phase = .ended(status: status)
        generation += 1
        var actions: [Action] = [.setStatus(status, node: node, cause: cause, channelLost: channelLost)]
        if jobHeld {
            jobHeld = false
            actions.append(.ackJob)
        }
        actions.append(.forget)
        return actions
    }

    private mutating func startTimer(_ kind: TimerKind, _ after: Duration) -> Action {
        .startTimer(TimerID(kind: kind, generation: generation), after: after)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
