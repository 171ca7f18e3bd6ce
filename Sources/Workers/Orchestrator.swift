public import Bus
public import Dispatcher
import ESL
import Foundation
public import Logging
import Metrics
public import Store
import Synchronization

/// Consumes the `calls` stream and places each call on a node with `bgapi originate`, choosing
/// the node with the same `NodeDispatcher` as the proxy (regions, policy, load from ESL); moves
/// each call's status from the node's CHANNEL_* events; hangs calls up on cancel jobs and at
/// their time limit; posts status callbacks.
///
/// A job is acknowledged only when a node created the channel (CHANNEL_CREATE) or the call was
/// marked failed. The node is recorded on the call before the originate, so a redelivered job
/// (the orchestrator died mid-job) finds the channel (`uuid_exists`) or its CDR and does not
/// place the call twice.
public final class Orchestrator: Sendable {
    public struct Configuration: Sendable {
        public var regions: RegionsConfig
        public var region: String?
        /// `sofia/gateway/<gateway>/<to>`.
        public var gateway: String
        public var eslPassword: String
        /// How long a node has to create the channel after the originate before the next is tried.
        public var acceptTimeout: Duration
        public var ackWait: Duration
        public var maxInFlight: Int

        public init(regions: RegionsConfig, region: String?, gateway: String = "carrier", eslPassword: String = "ClueCon",
                    acceptTimeout: Duration = .seconds(5), ackWait: Duration = .seconds(30), maxInFlight: Int = 256) {
            self.regions = regions
            self.region = region
            self.gateway = gateway
            self.eslPassword = eslPassword
            self.acceptTimeout = acceptTimeout
            self.ackWait = ackWait
            self.maxInFlight = maxInFlight
        }
    }

    enum Acceptance: Sendable { case created, refused(String), timeout }

    let config: Configuration
    let calls: CallStore
    let cdrs: CDRStore
    let bus: NATSBus
    let logger: Logger
    let sessions: NodeSessions
    let callbacks: StatusCallbacks
    private let dispatcher: Mutex<NodeDispatcher>
    /// Call id → the one placement attempt waiting for its CHANNEL_CREATE (from that node) or
    /// its BACKGROUND_JOB (that job): a stale timer or a late result of an earlier attempt
    /// carries another token and changes nothing.
    private let waiters = Mutex<[String: (token: String, node: String, continuation: CheckedContinuation<Acceptance, Never>)]>([:])
    /// Job-UUID → (call id, attempt token), for BACKGROUND_JOB results.
    private let jobs = Mutex<[String: (callID: String, token: String)]>([:])
    /// Calls being placed by this process (a redelivery while the first placement runs waits).
    private let placing = Mutex<Set<String>>([])
    /// Set by tests: exit right after sending an originate, before acknowledging the job.
    private let crashAfterOriginate: Bool
    /// The last status written per call, to skip events that cannot move it (PROGRESS after
    /// CREATE): a database round trip saved. Bounded; a miss only costs the round trip.
    private let lastStatus = Mutex<[String: String]>([:])
    /// Channel events by call: in order per call, calls in parallel.
    private let lanes = Lanes<(ESLEvent, Node)>(count: 16)

    public init(_ config: Configuration, pool: PostgresPool, bus: NATSBus, logger: Logger, crashAfterOriginate: Bool = false) {
        self.config = config
        self.calls = CallStore(pool: pool)
        self.cdrs = CDRStore(pool: pool)
        self.bus = bus
        self.logger = logger
        self.crashAfterOriginate = crashAfterOriginate
        self.callbacks = StatusCallbacks(logger: logger)
        var d = NodeDispatcher(config: config.regions, localRegion: config.region)
        // Health comes from ESL here (no OPTIONS prober): a node is usable once connected.
        for node in config.regions.allNodes { d.reportFailure(node: node.name, now: .now, reason: "ESL not connected yet", retryAfter: .zero) }
        self.dispatcher = Mutex(d)
        self.sessions = NodeSessions(
            nodes: config.regions.allNodes, password: config.eslPassword,
            events: ["CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"], logger: logger)
    }

    public func run() async throws {
        try await bus.ensureStream(StreamConfig(name: "calls", subjects: ["calls.>"], duplicateWindow: .seconds(86400)))
        let consumer = try await bus.pullConsumer(
            ConsumerConfig(stream: "calls", durable: "orchestrator", subject: "calls.>", ackWait: config.ackWait, maxDeliver: 1000,
                           maxAckPending: config.maxInFlight * 2, batch: 32))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.sessions.run() }
            group.addTask { await self.routeUpdates() }
            group.addTask { await self.lanes.run { e, node in await self.event(e, node: node) } }
            group.addTask { await self.consume(consumer) }
            // Until cancelled (the service's graceful shutdown): then everything stops.
            await group.next()
            group.cancelAll()
        }
        await consumer.stop()
        await callbacks.shutdown()
    }

    // MARK: Jobs

    private func consume(_ consumer: PullConsumer) async {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for await message in consumer {
                if inFlight >= config.maxInFlight {
                    await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask { await self.handle(message) }
            }
        }
    }

    private func handle(_ message: BusMessage) async {
        guard let job = try? JSONDecoder().decode(Job.self, from: Data(message.data)) else {
            logger.error("undecodable job terminated", metadata: ["subject": "\(message.subject)"])
            try? message.term()
            return
        }
        var log = logger
        log[metadataKey: "call"] = "\(job.call_id)"
        if job.type == "originate" {
            guard placing.withLock({ $0.insert(job.call_id).inserted }) else {
                try? message.nak(delay: .seconds(5))   // still being placed here
                return
            }
        }
        defer { if job.type == "originate" { placing.withLock { _ = $0.remove(job.call_id) } } }
        do {
            switch job.type {
            case "originate": try await place(job.call_id, message: message, logger: log)
            case "cancel": try await cancel(job.call_id, logger: log)
            default:
                log.error("unknown job type terminated", metadata: ["type": "\(job.type)"])
                try? message.term()
                return
            }
            try? message.ack()
        } catch let retry as RetryLater {
            log.info("job postponed", metadata: ["reason": "\(retry.reason)"])
            try? message.nak(delay: .seconds(1))
        } catch {
            // PostgreSQL unavailable and the like: try again a little later.
            log.warning("job failed, redelivering", metadata: ["error": "\(error)", "deliveries": "\(message.deliveries)"])
            try? message.nak(delay: .seconds(min(30, Int(message.deliveries) * 2)))
        }
    }

    struct RetryLater: Error {
        var reason: String
    }

    struct Job: Decodable {
        var type: String
        var call_id: String
    }

    /// The operator drained (`true`) or re-enabled a node (shared drain state): no new
    /// originate goes to a drained node; its calls in progress are untouched.
    public func setDrained(_ node: String, _ drained: Bool) {
        let known = dispatcher.withLock { $0.setDrained(node, drained) }
        logger.notice(known ? "node drain state" : "drain state for an unknown node ignored", metadata: ["node": "\(node)", "drained": "\(drained)"])
    }

    private func place(_ id: String, message: BusMessage, logger: Logger) async throws {
        guard let call = try await calls.get(id: id) else {
            logger.warning("job for an unknown call dropped")
            return
        }
        guard call.status == "queued" else {
            // Placed already (its events may have arrived before the redelivery), or canceled.
            if message.deliveries > 1 {
                logger.notice("redelivered job: the call is already past queued", metadata: ["status": "\(call.status)"])
            }
            return
        }
        if let node = call.node {
            // A redelivery: was it placed before the last orchestrator stopped?
            if let out = try? await sessions.session(node)?.api("uuid_exists \(id)", timeout: .seconds(3)), out.hasPrefix("true") {
                logger.notice("redelivered job: the call is already on its node", metadata: ["node": "\(node)"])
                return
            }
            if try await cdrs.exists(channelUUID: id) {
                logger.notice("redelivered job: the call already ended on its node", metadata: ["node": "\(node)"])
                return
            }
        }
        var candidates = dispatcher.withLock { $0.candidates(callID: id, number: call.to, now: .now) }
        if let region = call.region {
            candidates.sort { ($0.region == region ? 0 : 1) < ($1.region == region ? 0 : 1) }
        }
        if candidates.isEmpty {
            // No node usable right now (all down, or this orchestrator just started and its ESL
            // sessions are not up yet): retry while the call's own timeout allows.
            let ageSeconds = (Int64(Date().timeIntervalSince1970 * 1_000_000) - call.createdMicros) / 1_000_000
            if ageSeconds < Int64(call.timeout) { throw RetryLater(reason: "no node usable yet") }
        }
        var reasons: [String] = []
        for node in candidates {
            guard try await calls.claim(id: id, node: node.name) else { return }   // canceled meanwhile
            try? message.inProgress()
            switch await originate(call, on: node, logger: logger) {
            case .created:
                dispatcher.withLock {
                    $0.callStarted(node: node.name)
                    $0.reportSuccess(node: node.name)
                }
                return
            case .refused(let why):
                reasons.append("\(node.name): \(why)")
                if why.hasPrefix("-ERR "), !CallEvents.nodeRefusals.contains(String(why.dropFirst(5))) {
                    // The far end answered (busy, no answer ...) without a channel event: final.
                    try await finish(id, status: CallEvents.finalStatusForCause(String(why.dropFirst(5))), logger: logger)
                    return
                }
                // A refusal says nothing about the node being alive: a hold-down, not a health change.
                dispatcher.withLock { $0.holdDown(node: node.name, for: .seconds(2), now: .now) }
            case .timeout:
                if let out = try? await sessions.session(node.name)?.api("uuid_exists \(id)", timeout: .seconds(3)), out.hasPrefix("true") { return }
                reasons.append("\(node.name): no channel within \(config.acceptTimeout)")
                dispatcher.withLock { $0.holdDown(node: node.name, for: .seconds(5), now: .now) }
            }
            logger.warning("node did not take the call, trying the next", metadata: ["node": "\(node.name)", "reason": "\(reasons.last ?? "")"])
        }
        logger.error("no node could take the call", metadata: ["tried": "\(reasons)"])
        try await finish(id, status: "failed", logger: logger)
    }

    /// Sends the originate and waits for the node to create the channel or refuse.
    private func originate(_ call: CallStore.Call, on node: Node, logger: Logger) async -> Acceptance {
        guard let session = sessions.session(node.name) else { return .refused("no ESL address") }
        let jobUUID = UUID().uuidString.lowercased()
        let vars = [
            "origination_uuid=\(call.id)", "sip_h_X-Call-ID=\(call.id)", "originate_timeout=\(call.timeout)",
            "origination_caller_id_number=\(call.from)",
        ].joined(separator: ",")
        let command = "originate {\(vars)}sofia/gateway/\(config.gateway)/\(call.to) &park()"
        let acceptTimeout = config.acceptTimeout
        let token = jobUUID
        return await withCheckedContinuation { (c: CheckedContinuation<Acceptance, Never>) in
            let previous = waiters.withLock { w -> CheckedContinuation<Acceptance, Never>? in
                defer { w[call.id] = (token, node.name, c) }
                return w[call.id]?.continuation
            }
            previous?.resume(returning: .timeout)
            jobs.withLock { $0[jobUUID] = (call.id, token) }
            Task {
                do {
                    try await session.bgapi(command, jobUUID: jobUUID)
                    logger.info("originate sent", metadata: ["node": "\(node.name)"])
                    if self.crashAfterOriginate {
                        logger.critical("test hook: exiting after the originate, before the ack")
                        exit(3)
                    }
                } catch {
                    self.resolve(call.id, .refused("\(error)"), token: token)
                }
                try? await Task.sleep(for: acceptTimeout)
                self.resolve(call.id, .timeout, token: token)
            }
        }
    }

    /// Resolves the call's waiting attempt if it is the one meant (by token, or by node for a
    /// CHANNEL_CREATE).
    private func resolve(_ callID: String, _ acceptance: Acceptance, token: String? = nil, node: String? = nil) {
        let c = waiters.withLock { w -> CheckedContinuation<Acceptance, Never>? in
            guard let entry = w[callID] else { return nil }
            if let token, entry.token != token { return nil }
            if let node, entry.node != node { return nil }
            w[callID] = nil
            return entry.continuation
        }
        c?.resume(returning: acceptance)
    }

    private func cancel(_ id: String, logger: Logger) async throws {
        guard let call = try await calls.get(id: id), let node = call.node, !CallStore.finalStatuses.contains(call.status) || call.status == "canceled"
        else { return }
        do {
            try await sessions.session(node)?.api("uuid_kill \(id) ORIGINATOR_CANCEL", timeout: .seconds(5))
            logger.info("call hung up on cancel", metadata: ["node": "\(node)"])
        } catch {
            guard let e = error as? ESLError, e.code == .commandFailed else { throw error }
            logger.info("cancel: no channel to hang up", metadata: ["node": "\(node)", "error": "\(e)"])
        }
        // Any other error (ESL down, timeout) throws: the job is redelivered.
    }

    private func finish(_ id: String, status: String, logger: Logger) async throws {
        if let changed = try await calls.advance(id: id, to: status) {
            logger.info("call finished without a channel", metadata: ["status": "\(status)"])
            callbacks.notify(changed)
        }
    }

    // MARK: Events

    private func routeUpdates() async {
        for await u in sessions.updates {
            switch u.update {
            case .connected:
                let upAfter = config.regions.probe.upAfter
                dispatcher.withLock {
                    for _ in 0..<upAfter { _ = $0.probeSucceeded(node: u.node.name, rtt: .zero, now: .now) }
                    $0.reportSuccess(node: u.node.name)
                }
            case .disconnected(let error, _):
                dispatcher.withLock {
                    $0.reportFailure(node: u.node.name, now: .now, reason: "ESL: \(error)", retryAfter: .seconds(1))
                    $0.channelCountLost(node: u.node.name)
                }
            case .event(let e):
                if e.name == "HEARTBEAT" || e.name == "BACKGROUND_JOB" {
                    await event(e, node: u.node)
                } else if let callID = CallEvents.callID(e) {
                    if e.name == "CHANNEL_CREATE" { resolve(callID, .created, node: u.node.name) }
                    lanes.submit((e, u.node), key: callID)
                }
            }
        }
    }

    private func event(_ e: ESLEvent, node: Node) async {
        if e.name == "HEARTBEAT" {
            // A heartbeat is this worker's health probe of the node.
            let count = e["Session-Count"].flatMap { Int($0) }
            dispatcher.withLock {
                _ = $0.probeSucceeded(node: node.name, rtt: .zero, now: .now)
                if let count { $0.channelCountRead(node: node.name, count: count) }
            }
            return
        }
        if e.name == "BACKGROUND_JOB", let job = e["Job-UUID"], let entry = jobs.withLock({ $0.removeValue(forKey: job) }) {
            let body = (e.body ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if body.hasPrefix("-ERR") { resolve(entry.callID, .refused(body), token: entry.token) }
            return
        }
        guard let callID = CallEvents.callID(e), let status = CallEvents.status(for: e) else { return }
        if e.name == "CHANNEL_HANGUP_COMPLETE" { dispatcher.withLock { $0.callEnded(node: node.name) } }
        if lastStatus.withLock({ $0[callID] == status }) { return }
        do {
            let result = try await calls.advance(id: callID, to: status, node: node.name)
            lastStatus.withLock { last in
                if last.count > 50_000 { last.removeAll() }
                last[callID] = CallStore.finalStatuses.contains(status) ? nil : status
            }
            if result == nil, e.name == "CHANNEL_CREATE" || e.name == "CHANNEL_ANSWER",
               let call = try await calls.get(id: callID), call.status == "canceled" {
                // Canceled between the claim and the channel: hang the leg up.
                _ = try? await sessions.session(node.name)?.api("uuid_kill \(callID) ORIGINATOR_CANCEL", timeout: .seconds(5))
            }
            guard let changed = result else { return }
            logger.info("call status", metadata: ["call": "\(callID)", "status": "\(status)", "node": "\(node.name)"])
            callbacks.notify(changed, initiated: e.name == "CHANNEL_CREATE")
            if status == "in-progress", let limit = changed.timeLimit {
                let session = sessions.session(node.name)
                Task {
                    try? await Task.sleep(for: .seconds(limit))
                    _ = try? await session?.api("uuid_kill \(callID) ALLOTTED_TIMEOUT", timeout: .seconds(5))
                }
            }
        } catch {
            logger.error("status update failed", metadata: ["call": "\(callID)", "status": "\(status)", "error": "\(error)"])
        }
    }
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
