public import Bus
import CallPlane
public import Dispatcher
import ESL
import Foundation
public import Logging
import Metrics
import ServiceLifecycle
public import Store
import Synchronization

/// Consumes the `calls` stream and places each call on a node with `bgapi originate`, choosing
/// the node with the same `NodeDispatcher` as the proxy (regions, policy, load from ESL).
///
/// Each call's life is one `CallLifecycle` value, run by this driver in the call's lane (events
/// of one call in order, calls in parallel): job, originate result, CHANNEL_* events, timers,
/// presence checks and reconciles go in; the lifecycle's actions (claim, originate, status
/// writes, callbacks, ack/nak, timers, hangups) are performed here and their results fed back.
///
/// Beyond one call:
/// - On every ESL (re)connect to a node, the calls the database has open on it are reconciled
///   against the node's channels (`show channels`): a call whose channel is gone ends (cause
///   `ended-unseen`, with an incomplete CDR); a channel whose call already ended is hung up.
/// - A node whose ESL stays lost for `nodeLostAfter` has its open calls ended (cause
///   `node-lost`, with an incomplete CDR). Every orchestrator does both; the forward-only
///   status write makes the first one win and the others no-ops.
/// - The time limit is the node's (`execute_on_answer=sched_hangup +N`): it survives restarts.
/// - On graceful shutdown no new job is taken; calls being placed finish (bounded), then exit.
public final class Orchestrator: Sendable {
    public struct Configuration: Sendable {
        public var regions: RegionsConfig
        public var region: String?
        /// `sofia/gateway/<gateway>/<to>`.
        public var gateway: String
        public var eslPassword: String
        public var lifecycle: CallLifecycle<ContinuousClock>.Settings
        /// ESL lost this long: the node's open calls end.
        public var nodeLostAfter: Duration
        public var ackWait: Duration
        public var maxInFlight: Int
        /// On graceful shutdown, how long calls being placed may take to finish.
        public var drainTimeout: Duration
        /// Let status callbacks reach loopback and private addresses (tests, labs; off in production).
        public var allowPrivateCallbacks: Bool

        public init(
            regions: RegionsConfig, region: String?, gateway: String = "carrier", eslPassword: String = "ClueCon",
            acceptTimeout: Duration = .seconds(5), confirmFor: Duration = .seconds(30), nodeLostAfter: Duration = .seconds(30),
            ackWait: Duration = .seconds(30), maxInFlight: Int = 256, drainTimeout: Duration = .seconds(15),
            allowPrivateCallbacks: Bool = false
        ) {
            self.regions = regions
            self.region = region
            self.gateway = gateway
            self.eslPassword = eslPassword
            self.lifecycle = .init(acceptTimeout: acceptTimeout, confirmFor: confirmFor)
            self.nodeLostAfter = nodeLostAfter
            self.ackWait = ackWait
            self.maxInFlight = maxInFlight
            self.drainTimeout = drainTimeout
            self.allowPrivateCallbacks = allowPrivateCallbacks
        }
    }

    typealias Lifecycle = CallLifecycle<ContinuousClock>

    /// What a call's lane handles.
    enum Input: Sendable {
        case event(Lifecycle.Event)
        case placeJob(BusMessage, CallJobs.Job)
        case cancelJob(BusMessage)
    }

    let config: Configuration
    let calls: CallStore
    let cdrs: CDRStore
    let bus: NATSBus
    let logger: Logger
    let sessions: NodeSessions
    let callbacks: StatusCallbacks
    let statusWrites: StatusBatcher
    /// Claims of concurrent placements, one statement and one commit per batch (a commit cost the
    /// database more than the claim's own work): a lone claim runs at once.
    let claims: Coalescer<CallStore.Claim, Result<CallStore.Call?, StoreError>>
    private let dispatcher: Mutex<NodeDispatcher>
    /// The lifecycle of every call followed here, and the job message each holds.
    private let state = Mutex<(calls: [String: Lifecycle], jobs: [String: BusMessage], rows: [String: CallStore.Call], ended: EndedCalls)>(
        ([:], [:], [:], EndedCalls(capacity: 50_000)))
    /// Job-UUID of an originate → (call id, attempt), for its BACKGROUND_JOB.
    private let bgJobs = Mutex<[String: (callID: String, attempt: Int)]>([:])
    /// Since when each node's ESL is lost, and whether its open calls were ended for it.
    private let lostSince = Mutex<[String: (since: ContinuousClock.Instant, swept: Bool)]>([:])
    private let lanes = Lanes<(String, Input)>(count: 64)
    private let jobsHeld = Gauge(label: "orchestrator_jobs_held")
    private let secondChannels = Counter(label: "orchestrator_second_channels_total")
    private let reconciledCalls = Counter(label: "orchestrator_reconciled_calls_total")

    public init(_ config: Configuration, pool: PostgresPool, bus: NATSBus, logger: Logger) {
        self.config = config
        let calls = CallStore(pool: pool)
        self.calls = calls
        self.cdrs = CDRStore(pool: pool)
        self.bus = bus
        self.logger = logger
        self.statusWrites = StatusBatcher(calls: calls)
        self.claims = Coalescer(flushes: 2, maxBatch: 64) { batch in
            do throws(StoreError) {
                return try await calls.claimMany(batch).map { .success($0) }
            } catch {
                return batch.map { _ in .failure(error) }
            }
        }
        self.callbacks = StatusCallbacks(
            calls: calls, accounts: AccountStore(pool: pool), allowPrivate: config.allowPrivateCallbacks, logger: logger)
        var d = NodeDispatcher(config: config.regions, localRegion: config.region)
        // Health comes from ESL here (no OPTIONS prober): a node is usable once connected.
        for node in config.regions.allNodes { d.reportFailure(node: node.name, now: .now, reason: "ESL not connected yet", retryAfter: .zero) }
        self.dispatcher = Mutex(d)
        self.sessions = NodeSessions(
            nodes: config.regions.allNodes, password: config.eslPassword,
            // No CHANNEL_PROGRESS: a call is ringing from its CHANNEL_CREATE on, so it could not
            // move the status (a fifth of the events parsed per call saved).
            events: ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"], logger: logger)
    }

    public func run() async throws {
        try await bus.ensureStream(CallJobs.stream)
        let consumer = try await bus.pullConsumer(
            ConsumerConfig(
                stream: CallJobs.stream.name, durable: "orchestrator", subject: "calls.>", ackWait: config.ackWait, maxDeliver: 1000,
                maxAckPending: config.maxInFlight * 2, batch: 32))
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.sessions.run(); return false
            }
            group.addTask {
                await self.routeUpdates(); return false
            }
            group.addTask {
                await self.lanes.run { id, input in await self.handle(id, input) }; return false
            }
            group.addTask {
                await self.sweepLostNodes(); return false
            }
            group.addTask {
                await self.releasePacedCalls(); return false
            }
            group.addTask {
                await self.consume(consumer); return false
            }
            group.addTask {
                // Graceful shutdown: take no new job, let the calls being placed finish (bounded).
                // Cancelled instead: stop at once.
                try? await gracefulShutdown()
                guard !Task.isCancelled else { return true }
                await consumer.stop()
                await self.drain()
                return true
            }
            while let done = await group.next() {
                if done { break }
            }
            group.cancelAll()
        }
        await consumer.stop()
        await callbacks.shutdown()
    }

    /// Waits (bounded) until no job is held: every call being placed has its channel or its end.
    private func drain() async {
        let deadline = ContinuousClock.now + config.drainTimeout
        var held = state.withLock { $0.jobs.count }
        logger.notice("draining: no new jobs", metadata: ["held": "\(held)"])
        while held > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            held = state.withLock { $0.jobs.count }
        }
        // Status writes of events already received run in their lanes; give them a moment.
        try? await Task.sleep(for: .milliseconds(300))
        logger.notice(held == 0 ? "drained" : "drain timed out: held jobs will be redelivered", metadata: ["held": "\(held)"])
    }

    // MARK: Jobs

    private func consume(_ consumer: PullConsumer) async {
        for await message in consumer {
            // Bounded work in flight: a job held per call being placed.
            while state.withLock({ $0.jobs.count }) >= config.maxInFlight { try? await Task.sleep(for: .milliseconds(5)) }
            guard let job = try? JSONDecoder().decode(CallJobs.Job.self, from: Data(message.data)), isUUID(job.call_id) else {
                logger.error("undecodable job terminated", metadata: ["subject": "\(message.subject)"])
                try? message.term()
                continue
            }
            switch job.type {
            case CallJobs.originate: lanes.submit((job.call_id, .placeJob(message, job)), key: job.call_id)
            case CallJobs.cancel: lanes.submit((job.call_id, .cancelJob(message)), key: job.call_id)
            default:
                logger.error("unknown job type terminated", metadata: ["type": "\(job.type)"])
                try? message.term()
            }
        }
    }

    /// Hands paced calls whose slot has come to the stream (every 50 ms). Any orchestrator may
    /// take any account's calls: `SKIP LOCKED` keeps them apart, and a call taken by one that
    /// died is taken again after 5 s (its job's message id drops a second copy).
    private func releasePacedCalls() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            guard bus.isConnected, let due = try? await calls.takeDuePaced(), !due.isEmpty else { continue }
            var released: [String] = []
            for call in due {
                var job = CallJobs.Job(call)
                job.paced = nil
                job.pacedRelease = true
                guard let data = try? JSONEncoder().encode(job) else { continue }
                do {
                    try await bus.publish(job.subject, Array(data), messageID: job.messageID, timeout: .seconds(2))
                    released.append(call.id)
                } catch {
                    logger.warning("paced call not handed on yet", metadata: ["call": "\(call.id)", "error": "\(error)"])
                }
            }
            try? await calls.markPaceReleased(ids: released)
        }
    }

    /// The operator drained (`true`) or re-enabled a node (shared drain state): no new
    /// originate goes to a drained node; its calls in progress are untouched.
    public func setDrained(_ node: String, _ drained: Bool) {
        let known = dispatcher.withLock { $0.setDrained(node, drained) }
        logger.notice(known ? "node drain state" : "drain state for an unknown node ignored", metadata: ["node": "\(node)", "drained": "\(drained)"])
    }

    // MARK: The driver

    private func submit(_ id: String, _ event: Lifecycle.Event) {
        lanes.submit((id, .event(event)), key: id)
    }

    /// One input of one call, in its lane.
    private func handle(_ id: String, _ input: Input) async {
        var log = logger
        log[metadataKey: "call"] = "\(id)"
        switch input {
        case .event(let e):
            await step(id, e, logger: log)
        case .placeJob(let message, let job):
            if job.paced == true {
                // Twilio's pacing: the call's slot at its account's rate, reserved once.
                switch try? await calls.reservePaceSlot(id: id) {
                case .placeNow: break
                case .waiting:
                    // It waits in the table; the scheduler hands it on when its slot comes.
                    try? message.ack()
                    return
                case .unknown:
                    log.warning("job for an unknown call dropped")
                    try? message.ack()
                    return
                case nil:
                    log.warning("job postponed: its pacing slot could not be reserved")
                    message.nakQuietly(.seconds(min(30, Int(message.deliveries) * 2)))
                    return
                }
            }
            if message.deliveries == 1, job.to != nil {
                // A first delivery: the job carries what the choice needs; the claim reads the
                // row (and finds a call canceled meanwhile). One round trip saved.
                let first = Lifecycle.Job(status: "queued", node: nil, mayWait: true)
                await step(id, .job(first), logger: log, message: message, hint: job)
                return
            }
            let row: CallStore.Call?
            do {
                row = try await calls.get(id: id)
            } catch {
                log.warning("job postponed: the call could not be read", metadata: ["error": "\(error)"])
                try? message.nak(delay: .seconds(min(30, Int(message.deliveries) * 2)))
                return
            }
            guard let call = row else {
                log.warning("job for an unknown call dropped")
                try? message.ack()
                return
            }
            let ageSeconds = (Int64(Date().timeIntervalSince1970 * 1_000_000) - call.createdMicros) / 1_000_000
            let queued = Lifecycle.Job(status: call.status, node: call.node, mayWait: ageSeconds < Int64(call.timeout))
            if message.deliveries > 1 { log.notice("redelivered job", metadata: ["status": "\(call.status)", "node": "\(call.node ?? "-")"]) }
            await step(id, .job(queued), logger: log, message: message, call: call)
        case .cancelJob(let message):
            let followed = state.withLock { s -> Bool in
                guard let l = s.calls[id] else { return false }
                return l.phase != .idle
            }
            if followed {
                await step(id, .cancel, logger: log)
                try? message.ack()
            } else {
                await cancelUnfollowed(id, message: message, logger: log)
            }
        }
    }

    /// Feeds one event to the call's lifecycle and performs what it asks, feeding back the
    /// results that are immediate.
    private func step(
        _ id: String, _ first: Lifecycle.Event, logger: Logger, message: BusMessage? = nil, call row: CallStore.Call? = nil,
        hint: CallJobs.Job? = nil
    ) async {
        var queue: [Lifecycle.Event] = [first]
        var incoming = message
        if let row { state.withLock { $0.rows[id] = row } }
        var ctx = StepContext(call: row ?? state.withLock { $0.rows[id] }, hint: hint)
        while !queue.isEmpty {
            let event = queue.removeFirst()
            let now = ContinuousClock.now
            let actions = state.withLock { s -> [Lifecycle.Action] in
                var l = s.calls[id] ?? Lifecycle(settings: config.lifecycle)
                if s.calls[id] == nil, s.ended.contains(id) {
                    // Ended here recently: a late event finds the end, not a blank.
                    l = Lifecycle.ended(settings: config.lifecycle)
                }
                let wasHeld = l.jobHeld
                let actions = l.handle(event, now: now)
                if let m = incoming, !wasHeld, l.jobHeld { s.jobs[id] = m; incoming = nil }
                s.calls[id] = l
                return actions
            }
            for action in actions {
                if let next = await perform(action, id: id, logger: logger, incoming: &incoming, ctx: &ctx) { queue.append(next) }
            }
        }
        // Log entries no status write carried.
        if !ctx.pendingEvents.isEmpty { await record(id, ctx.pendingEvents, logger: logger) }
        // A job message the lifecycle did not take (answered at once): settle it.
        if let m = incoming { try? m.ack() }
        jobsHeld.record(state.withLock { $0.jobs.count })
    }

    /// What one `step` carries between its actions.
    struct StepContext {
        /// The call's row, once read (by the job's read or the claim).
        var call: CallStore.Call?
        /// A first delivery's job: what the choice needs before the row is read.
        var hint: CallJobs.Job?
        /// Log entries to write with the next status change (one round trip for both).
        var pendingEvents: [CallStore.Event] = []
    }

    /// Performs one action; returns an event to feed back at once, if the result is immediate.
    private func perform(_ action: Lifecycle.Action, id: String, logger: Logger, incoming: inout BusMessage?, ctx: inout StepContext) async -> Lifecycle.Event?
    {
        let call = ctx.call
        switch action {
        case .chooseNodes(let excluding):
            var nodes = dispatcher.withLock { $0.candidates(callID: id, number: call?.to ?? ctx.hint?.to, now: .now) }
            if let region = call?.region ?? ctx.hint?.region {
                nodes.sort { ($0.region == region ? 0 : 1) < ($1.region == region ? 0 : 1) }
            }
            return .candidates(nodes.filter { !excluding.contains($0.name) }.map { .init(node: $0.name, region: $0.region) })
        case .claim(let p, let expected):
            do {
                guard let row = try await claims.submit(.init(id: id, node: p.node, expectedNode: expected)).get() else { return .claimed(false) }
                ctx.call = row
                state.withLock { $0.rows[id] = row }
                return .claimed(true)
            } catch {
                return .storeUnavailable("\(error)")
            }
        case .originate(let p, let attempt):
            originate(id, on: p, attempt: attempt, call: ctx.call, logger: logger)
            return nil
        case .checkPresence(let node):
            jobMessage(id)?.inProgressQuietly()
            let session = sessions.session(node)
            Task {
                self.submit(id, .presence(await self.presence(of: id, on: node, session: session), node: node))
            }
            return nil
        case .recordAttempt(let p, let result, let elapsed):
            let ms = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            if !result.hasPrefix("created") {
                logger.warning("placement attempt", metadata: ["node": "\(p.node)", "result": "\(result)", "ms": "\(ms)"])
            }
            ctx.pendingEvents.append(CallStore.Event(kind: "attempt", node: p.node, region: p.region, result: result, elapsedMs: ms))
            return nil
        case .reconcileNote(let node, let result):
            ctx.pendingEvents.append(CallStore.Event(kind: "reconcile", node: node, region: region(of: node), result: result))
            return nil
        case .setStatus(let status, let node, let cause, let channelLost):
            let events = ctx.pendingEvents
            ctx.pendingEvents = []
            await setStatus(id, status, node: node, cause: cause, channelLost: channelLost, events: events, logger: logger)
            return nil
        case .ackJob:
            (takeJob(id) ?? incoming)?.ackQuietly()
            incoming = nil
            return nil
        case .nakJob(let after):
            (takeJob(id) ?? incoming)?.nakQuietly(after)
            incoming = nil
            return nil
        case .nakDuplicate(let after):
            incoming?.nakQuietly(after)
            incoming = nil
            return nil
        case .jobInProgress:
            // The claim: the node has the accept timeout to create the channel (then the job is
            // acked, or each presence check restarts the ack timer). A job whose ack wait has that
            // long left, with 2 s to spare, needs no message to the server for it.
            if let message = jobMessage(id),
                message.received.duration(to: .now) + config.lifecycle.acceptTimeout + .seconds(2) >= config.ackWait
            {
                message.inProgressQuietly()
            }
            return nil
        case .startTimer(let t, let after):
            Task {
                try? await Task.sleep(for: after)
                self.submit(id, .timer(t))
            }
            return nil
        case .holdDown(let node, let duration):
            dispatcher.withLock { $0.holdDown(node: node, for: duration, now: .now) }
            return nil
        case .hangup(let node, let cause):
            hangup(id, on: node, cause: cause, logger: logger)
            return nil
        case .secondChannel(let node):
            secondChannels.increment()
            logger.error("a second channel for one call: hanging it up", metadata: ["node": "\(node)"])
            ctx.pendingEvents.append(CallStore.Event(kind: "attempt", node: node, region: region(of: node), result: "second channel: hung up"))
            return nil
        case .forget:
            state.withLock { s in
                s.rows[id] = nil
                if let l = s.calls.removeValue(forKey: id), l.isEnded { s.ended.insert(id) }
            }
            return nil
        }
    }

    private func jobMessage(_ id: String) -> BusMessage? { state.withLock { $0.jobs[id] } }
    private func takeJob(_ id: String) -> BusMessage? { state.withLock { $0.jobs.removeValue(forKey: id) } }
    private func region(of node: String) -> String? { config.regions.allNodes.first { $0.name == node }?.region }

    private func originate(_ id: String, on p: Lifecycle.Placement, attempt: Int, call: CallStore.Call?, logger: Logger) {
        guard let session = sessions.session(p.node), let call else {
            submit(id, .originateNotSent("no ESL address"))
            return
        }
        // Store's generator: Foundation's UUID() opens /dev/urandom on every call on Linux.
        let jobUUID = newUUID()
        var vars = [
            "origination_uuid=\(call.id)", "sip_h_X-Call-ID=\(call.id)", "originate_timeout=\(call.timeout)",
            "origination_caller_id_number=\(call.from)",
        ]
        // The time limit lives on the node, so it holds whatever happens to this process.
        if let limit = call.timeLimit { vars.append("execute_on_answer='sched_hangup +\(limit) ALLOTTED_TIMEOUT'") }
        let command = "originate {\(vars.joined(separator: ","))}sofia/gateway/\(config.gateway)/\(call.to) &park()"
        bgJobs.withLock { $0[jobUUID] = (id, attempt) }
        Task {
            do throws(ESLError) {
                _ = try await session.bgapi(command, jobUUID: jobUUID)
                logger.info("originate sent", metadata: ["node": "\(p.node)", "attempt": "\(attempt)"])
            } catch {
                self.bgJobs.withLock { _ = $0.removeValue(forKey: jobUUID) }
                // Not connected: the command never left. Anything else: it may have.
                self.submit(id, error.code == .notConnected ? .originateNotSent("\(error)") : .originateFailed("\(error)"))
            }
        }
    }

    /// Is the call on `node`? A channel (`uuid_exists`), else its CDR, else absent; unknown on any error.
    private func presence(of id: String, on node: String, session: ESLSession?) async -> Lifecycle.Presence {
        guard let session else { return .unknown("no ESL address") }
        do {
            let out = try await session.api("uuid_exists \(id)", timeout: .seconds(3)).trimmingWhitespace()
            if out.hasPrefix("true") { return .present(answered: false) }
            guard out.hasPrefix("false") else { return .unknown("uuid_exists said \(out)") }
        } catch {
            return .unknown("\(error)")
        }
        do {
            guard let cdr = try await cdrs.find(node: node, channelUUID: id) else { return .absent }
            return .ended(status: cdr.answered ? "completed" : CallEvents.finalStatusForCause(cdr.cause ?? ""))
        } catch {
            return .unknown("CDR lookup: \(error)")
        }
    }

    private func hangup(_ id: String, on node: String, cause: String, logger: Logger) {
        let session = sessions.session(node)
        Task {
            do {
                _ = try await session?.api("uuid_kill \(id) \(cause)", timeout: .seconds(5))
                logger.info("channel hung up", metadata: ["node": "\(node)", "cause": "\(cause)"])
            } catch {
                logger.warning("hangup failed", metadata: ["node": "\(node)", "cause": "\(cause)", "error": "\(error)"])
            }
        }
    }

    /// A cancel job for a call not followed here (placed by another orchestrator, or before a restart).
    private func cancelUnfollowed(_ id: String, message: BusMessage, logger: Logger) async {
        let row: CallStore.Call?
        do {
            row = try await calls.get(id: id)
        } catch {
            logger.warning("cancel postponed: the call could not be read", metadata: ["error": "\(error)"])
            message.nakQuietly(.seconds(min(30, Int(message.deliveries) * 2)))
            return
        }
        guard let call = row, let node = call.node, !CallStore.finalStatuses.contains(call.status) || call.status == "canceled" else {
            message.ackQuietly()
            return
        }
        let result = await killChannel(id, on: node)
        switch result {
        case .killed:
            logger.info("call hung up on cancel", metadata: ["node": "\(node)"])
            message.ackQuietly()
        case .noChannel(let why):
            logger.info("cancel: no channel to hang up", metadata: ["node": "\(node)", "error": "\(why)"])
            message.ackQuietly()
        case .failed(let why):
            // ESL unavailable: the job comes back.
            logger.warning("cancel postponed", metadata: ["node": "\(node)", "error": "\(why)"])
            message.nakQuietly(.seconds(min(30, Int(message.deliveries) * 2)))
        }
    }

    enum KillResult { case killed, noChannel(String), failed(String) }

    private func killChannel(_ id: String, on node: String, cause: String = "ORIGINATOR_CANCEL") async -> KillResult {
        guard let session = sessions.session(node) else { return .failed("no ESL address") }
        do {
            _ = try await session.api("uuid_kill \(id) \(cause)", timeout: .seconds(5))
            return .killed
        } catch {
            return error.code == .commandFailed ? .noChannel("\(error)") : .failed("\(error)")
        }
    }

    /// The forward-only status write (retried while PostgreSQL is away), then the callback;
    /// for a channel that left no hangup event, an incomplete CDR.
    private func setStatus(_ id: String, _ status: String, node: String?, cause: String?, channelLost: Bool, events: [CallStore.Event], logger: Logger) async {
        for attempt in 1...20 {
            do {
                guard let changed = try await statusWrites.advance(.init(id: id, status: status, node: node, cause: cause, events: events)) else { return }
                logger.info("call status", metadata: ["status": "\(status)", "node": "\(node ?? "-")", "cause": "\(cause ?? "-")"])
                callbacks.notify(changed, initiated: status == "ringing")
                if channelLost, let node {
                    reconciledCalls.increment()
                    let n = config.regions.allNodes.first { $0.name == node }
                    _ = try? await cdrs.insert(
                        CDRStore.NewCDR(
                            channelUUID: id, callID: id, node: node, region: n?.region, direction: "outbound", from: changed.from, to: changed.to,
                            startMicros: 0, answerMicros: 0, endMicros: Int64(Date().timeIntervalSince1970 * 1_000_000), duration: 0, billsec: 0,
                            hangupCause: "UNKNOWN_MISSED_EVENT", codec: nil, rtpInPackets: nil, rtpInSkipped: nil, jitterMaxMs: nil, lossPercent: nil,
                            mos: nil, incomplete: true))
                    logger.error("call ended without its hangup event: incomplete CDR written", metadata: ["node": "\(node)", "cause": "\(cause ?? "-")"])
                }
                return
            } catch {
                logger.warning("status write failed, retrying", metadata: ["status": "\(status)", "error": "\(error)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(min(2000, 100 * attempt)))
            }
        }
        logger.error("status write given up", metadata: ["status": "\(status)"])
    }

    private func record(_ id: String, _ events: [CallStore.Event], logger: Logger) async {
        do {
            try await calls.record(id, events)
        } catch {
            logger.warning("call events not recorded", metadata: ["kinds": "\(events.map(\.kind))", "error": "\(error)"])
        }
    }

    // MARK: Nodes

    private func routeUpdates() async {
        for await u in sessions.updates {
            let node = u.node.name
            switch u.update {
            case .connected:
                let upAfter = config.regions.probe.upAfter
                dispatcher.withLock {
                    for _ in 0..<upAfter { _ = $0.probeSucceeded(node: node, rtt: .zero, now: .now) }
                    $0.reportSuccess(node: node)
                }
                lostSince.withLock { _ = $0.removeValue(forKey: node) }
                Task { await self.reconcile(u.node) }
            case .disconnected(let error, _):
                dispatcher.withLock {
                    $0.reportFailure(node: node, now: .now, reason: "ESL: \(error)", retryAfter: .seconds(1))
                    $0.channelCountLost(node: node)
                }
                lostSince.withLock { if $0[node] == nil { $0[node] = (.now, false) } }
            case .event(let e):
                switch e.name {
                case "HEARTBEAT":
                    // A heartbeat is this worker's health probe of the node.
                    let count = e["Session-Count"].flatMap { Int($0) }
                    dispatcher.withLock {
                        _ = $0.probeSucceeded(node: node, rtt: .zero, now: .now)
                        if let count { $0.channelCountRead(node: node, count: count) }
                    }
                case "BACKGROUND_JOB":
                    guard let job = e["Job-UUID"], let entry = bgJobs.withLock({ $0.removeValue(forKey: job) }) else { continue }
                    submit(entry.callID, .jobResult(attempt: entry.attempt, reply: e.body ?? ""))
                default:
                    guard let callID = CallEvents.callID(e) else { continue }
                    let kind: Lifecycle.ChannelEvent
                    switch e.name {
                    case "CHANNEL_CREATE":
                        kind = .created
                        dispatcher.withLock {
                            $0.callStarted(node: node)
                            $0.reportSuccess(node: node)
                        }
                    case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA": kind = .progress
                    case "CHANNEL_ANSWER": kind = .answered
                    case "CHANNEL_HANGUP_COMPLETE":
                        kind = .hangup(status: CallEvents.finalStatus(e), cause: e["Hangup-Cause"] ?? e["variable_hangup_cause"] ?? "")
                        dispatcher.withLock { $0.callEnded(node: node) }
                    default: continue
                    }
                    submit(callID, .channel(kind, node: node))
                }
            }
        }
    }

    /// After a (re)connect: the database's open calls on `node` against the node's channels.
    private func reconcile(_ node: Node) async {
        guard let session = sessions.session(node.name) else { return }
        do {
            // The database first, then the node: a call open in the database has its channel
            // already, unless it ended since (checked again below).
            let open = try await calls.open(node: node.name).filter { $0.status != "queued" }  // queued: its job is still held
            let json = try await session.api("show channels as json", timeout: .seconds(5))
            let channels = Self.channelStates(fromShowChannels: json)
            let finishedMeanwhile = try await calls.finalized(open.map(\.id))
            var ended = 0
            for (id, stored) in open where !finishedMeanwhile.contains(id) {
                let presence: Lifecycle.Presence
                if let callstate = channels[id] {
                    presence = .present(answered: callstate == "ACTIVE")
                } else if let cdr = try await cdrs.find(node: node.name, channelUUID: id) {
                    presence = .ended(status: cdr.answered ? "completed" : CallEvents.finalStatusForCause(cdr.cause ?? ""))
                } else {
                    presence = .absent
                    ended += 1
                }
                submit(id, .reconciled(presence, node: node.name, storedStatus: stored))
            }
            // Channels whose call already has its final status (given up, or ended by a sweep).
            let stale = try await calls.finalized(Array(channels.keys))
            for id in stale {
                logger.warning("reconcile: a channel whose call has ended is hung up", metadata: ["node": "\(node.name)", "call": "\(id)"])
                hangup(id, on: node.name, cause: "ORIGINATOR_CANCEL", logger: logger)
            }
            logger.info("reconciled", metadata: ["node": "\(node.name)", "open": "\(open.count)", "gone": "\(ended)", "stale": "\(stale.count)"])
        } catch {
            logger.warning("reconcile failed", metadata: ["node": "\(node.name)", "error": "\(error)"])
        }
    }

    /// Every second: a node lost longer than `nodeLostAfter` has its open calls ended, once.
    private func sweepLostNodes() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let due = lostSince.withLock { l in l.filter { !$0.value.swept && $0.value.since.duration(to: .now) >= config.nodeLostAfter }.map(\.key) }
            for node in due {
                do {
                    let open = try await calls.open(node: node).filter { $0.status != "queued" }
                    logger.error(
                        "node lost: ending its open calls", metadata: ["node": "\(node)", "calls": "\(open.count)", "after": "\(config.nodeLostAfter)"])
                    for (id, _) in open { submit(id, .nodeLost(node: node)) }
                    lostSince.withLock { if $0[node] != nil { $0[node]?.swept = true } }
                } catch {
                    logger.warning("lost-node sweep failed, retrying", metadata: ["node": "\(node)", "error": "\(error)"])
                }
            }
        }
    }

    /// `uuid` → `callstate` of `show channels as json`.
    static func channelStates(fromShowChannels json: String) -> [String: String] {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], let rows = o["rows"] as? [[String: Any]] else { return [:] }
        var out: [String: String] = [:]
        for row in rows {
            if let uuid = row["uuid"] as? String { out[uuid] = row["callstate"] as? String ?? "" }
        }
        return out
    }
}

/// Call ids that ended here recently (bounded, oldest forgotten first).
struct EndedCalls: Sendable {
    let capacity: Int
    private var set: Set<String> = []
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    func contains(_ id: String) -> Bool { set.contains(id) }

    mutating func insert(_ id: String) {
        guard set.insert(id).inserted else { return }
        order.append(id)
        if set.count > capacity {
            set.remove(order[head])
            head += 1
            if head > capacity {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}

extension BusMessage {
    func ackQuietly() { try? ack() }
    func nakQuietly(_ after: Duration) { try? nak(delay: after) }
    func inProgressQuietly() { try? inProgress() }
}

extension CallEvents {
    /// The status for a cause reported without a channel event (a `-ERR <cause>` originate result).
    static func finalStatusForCause(_ cause: String) -> String {
        var h = ESLHeaders()
        h.add("Event-Name", "CHANNEL_HANGUP_COMPLETE")
        h.add("Hangup-Cause", cause)
        return finalStatus(ESLEvent(headers: h))
    }
}
