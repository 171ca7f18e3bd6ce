public import Bus
import CallPlane
public import Dispatcher
public import ESL
import Foundation
public import Logging
import Metrics
public import Store
import ServiceLifecycle
import Synchronization

/// Turns every CHANNEL_HANGUP_COMPLETE on every node into one `cdr` row (keyed by node and
/// channel UUID, so a repeated event or a second writer writes nothing) and one event on the
/// JetStream stream `events` (subject `events.cdr.<region>`, message id = `<node>:<channel>`).
/// A call id whose CDRs span two channels (a call placed twice) is an error:
/// `cdr_second_channel_total` and a log line; both rows stay, so both are billed and visible.
///
/// ESL events are not durable: a hangup that happens while no writer is connected to a node is
/// never sent. So every channel seen created is recorded in `cdr_live` until its CDR is
/// written (except API calls' channels, which their `calls` row tracks), and on every
/// (re)connect to a node the writer reconciles:
/// 1. channels in `cdr_live` that the node no longer has → an `incomplete` CDR each;
/// 2. API calls the orchestrator saw finish on that node without a CDR → an `incomplete` CDR
///    each (the channel UUID of an API call is its call id);
/// 3. the node's `sessions since startup` minus its CDR rows of this boot minus its live
///    channels → channels that started and ended unseen and cannot be identified: counted in
///    `cdr_gaps`, `cdr_unidentified_total` and an error log line.
/// Every incomplete row is logged (`CDR gap`) and counted in `cdr_missed_total`.
public final class CDRWriter: Sendable {
    let regions: RegionsConfig
    let cdrs: CDRStore
    let bus: NATSBus
    let logger: Logger
    let sessions: NodeSessions
    private let written = Counter(label: "cdr_written_total")
    private let duplicates = Counter(label: "cdr_duplicates_total")
    private let missed = Counter(label: "cdr_missed_total")
    private let unidentified = Counter(label: "cdr_unidentified_total")
    private let secondChannels = Counter(label: "cdr_second_channel_total")
    private let lag = Timer(label: "cdr_lag_seconds", preferredDisplayUnit: .seconds)
    /// Concurrent hangups' CDRs, one statement and one commit per batch (a commit cost the
    /// database more than the row): a lone CDR is written at once.
    private let inserts: Coalescer<CDRStore.NewCDR, Result<CDRStore.InsertResult, StoreError>>
    /// Concurrent CDR events, one wait for all their acknowledgements (`NATSBus.publishBatch`);
    /// an event the batch did not get acknowledged is published again on its own, with retries.
    private let publishes: Coalescer<(subject: String, data: [UInt8], messageID: String), Bool>

    public init(regions: RegionsConfig, pool: PostgresPool, bus: NATSBus, eslPassword: String, logger: Logger) {
        self.regions = regions
        let cdrs = CDRStore(pool: pool)
        self.cdrs = cdrs
        self.inserts = Coalescer(flushes: 2, maxBatch: 64) { batch in
            do throws(StoreError) {
                return try await cdrs.insertMany(batch).map { .success($0) }
            } catch {
                return batch.map { _ in .failure(error) }
            }
        }
        self.publishes = Coalescer(flushes: 2, maxBatch: 128) { batch in
            var seen = Set<String>()
            let acked = await bus.publishBatch(batch.filter { seen.insert($0.messageID).inserted }, timeout: .seconds(2))
            return batch.map { acked.contains($0.messageID) }
        }
        self.bus = bus
        self.logger = logger
        self.sessions = NodeSessions(
            nodes: regions.allNodes, password: eslPassword, events: ["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"], logger: logger)
    }

    /// Events by channel: in order per channel, channels in parallel.
    private let lanes = Lanes<(ESLEvent, Node)>(count: 16)

    public static let stream = CallJobs.events

    /// Runs until cancelled, or until graceful shutdown: then it stops reading events and
    /// writes what it already received (bounded by `drainTimeout`) before returning. Channels
    /// that end after that are found by the next writer's reconcile.
    public func run(drainTimeout: Duration = .seconds(10)) async throws {
        try await bus.ensureStream(Self.stream)
        let lanesDone = Task { await self.lanes.run { e, node in await self.event(e, node: node) } }
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.sessions.run(); return false
            }
            group.addTask {
                for await u in self.sessions.updates {
                    switch u.update {
                    case .connected: await self.reconcile(u.node)
                    case .disconnected: break
                    case .event(let e):
                        if let uuid = e.uniqueID { self.lanes.submit((e, u.node), key: uuid) }
                    }
                }
                return false
            }
            group.addTask {
                try? await gracefulShutdown()
                return true
            }
            while let done = await group.next() {
                if done { break }
            }
            group.cancelAll()
        }
        // No event comes in any more: write the ones received.
        lanes.finish()
        let drained = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await lanesDone.value; return true
            }
            group.addTask {
                try? await Task.sleep(for: drainTimeout); return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !drained {
            lanesDone.cancel()
            logger.warning("CDR drain timed out: the next writer's reconcile finds the rest")
        } else {
            logger.notice("CDR writer drained")
        }
    }

    private func event(_ e: ESLEvent, node: Node) async {
        guard let uuid = e.uniqueID else { return }
        switch e.name {
        case "CHANNEL_CREATE":
            // An API call's channel is tracked by its call row already (node and status; the
            // orchestrator's reconcile and step 2 below find its CDR gaps): no live row needed.
            if CallEvents.callID(e) != nil { return }
            do {
                try await cdrs.channelStarted(uuid, node: node.name, coreUUID: e.coreUUID)
            } catch {
                logger.warning("live channel not recorded", metadata: ["channel": "\(uuid)", "error": "\(error)"])
            }
        case "CHANNEL_HANGUP_COMPLETE":
            await write(Self.cdr(from: e, node: node))
            if let end = e.timestampMicros {
                let nowMicros = Int64(Date().timeIntervalSince1970 * 1_000_000)
                lag.recordNanoseconds(max(0, nowMicros - end) * 1000)
            }
        default:
            break
        }
    }

    /// Writes the row (retrying while PostgreSQL is unavailable) and publishes the event.
    func write(_ cdr: CDRStore.NewCDR) async {
        var attempt = 0
        while true {
            do {
                switch try await inserts.submit(cdr).get() {
                case .written:
                    written.increment()
                case .writtenBesideOthers(let others):
                    written.increment()
                    secondChannels.increment()
                    logger.error(
                        "a call id has CDRs on more than one channel: the call was placed twice",
                        metadata: ["call": "\(cdr.callID)", "node": "\(cdr.node)", "channel": "\(cdr.channelUUID)", "others": "\(others)"])
                case .unchanged:
                    duplicates.increment()
                }
                break
            } catch {
                attempt += 1
                logger.error("CDR insert failed, retrying", metadata: ["channel": "\(cdr.channelUUID)", "error": "\(error)", "attempt": "\(attempt)"])
                if Task.isCancelled || attempt >= 30 { return }
                try? await Task.sleep(for: .milliseconds(min(5000, 100 * attempt)))
            }
        }
        // Published even when another writer inserted the row: the message id dedupes, and the
        // row's writer may have died before publishing.
        do {
            let data = Array(try JSONEncoder().encode(cdr))
            let subject = "events.cdr.\(cdr.region ?? "unknown")", id = "\(cdr.node):\(cdr.channelUUID)"
            if bus.isConnected, await publishes.submit((subject, data, id)) { return }
            try await bus.publish(subject, data, messageID: id, retryFor: .seconds(20))
        } catch {
            logger.warning("CDR event not published", metadata: ["channel": "\(cdr.channelUUID)", "error": "\(error)"])
        }
    }

    /// After a (re)connect: find the channels that ended while nobody listened (see the type's doc).
    private func reconcile(_ node: Node) async {
        guard let session = sessions.session(node.name),
            let json = try? await session.api("show channels as json", timeout: .seconds(5)),
            let status = try? await session.api("status", timeout: .seconds(5))
        else {
            logger.warning("reconcile: could not read the node's channels", metadata: ["node": "\(node.name)"])
            return
        }
        let core = (try? await session.api("global_getvar core_uuid", timeout: .seconds(5)))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let now = Self.uuids(fromShowChannels: json)
        var recovered = 0
        do {
            for uuid in try await cdrs.liveChannels(node: node.name).subtracting(now) {
                await writeIncomplete(uuid: uuid, callID: uuid, from: nil, to: nil, node: node, core: core, why: "seen created, hangup missed")
                recovered += 1
            }
            for call in try await cdrs.finishedCallsWithoutCDR(node: node.name) where !now.contains(call.id) {
                await writeIncomplete(uuid: call.id, callID: call.id, from: call.from, to: call.to, node: node, core: core, why: "API call finished unseen")
                recovered += 1
            }
            if let core, !core.isEmpty, let started = Self.sessionsSinceStartup(status) {
                let accounted = try await cdrs.count(node: node.name, coreUUID: core) + now.count
                let gap = started - accounted
                if gap > 0 {
                    let increase = try await cdrs.reportGap(node: node.name, coreUUID: core, missing: gap)
                    if increase > 0 {
                        unidentified.increment(by: increase)
                        logger.error(
                            "CDR gap (unidentified): channels started and ended on the node while no CDR writer listened",
                            metadata: ["node": "\(node.name)", "count": "\(increase)", "core-uuid": "\(core)"])
                    }
                }
            }
        } catch {
            logger.error("reconcile failed", metadata: ["node": "\(node.name)", "error": "\(error)"])
        }
        logger.info("reconciled", metadata: ["node": "\(node.name)", "live": "\(now.count)", "recovered": "\(recovered)"])
    }

    private func writeIncomplete(uuid: String, callID: String, from: String?, to: String?, node: Node, core: String?, why: String) async {
        missed.increment()
        logger.error(
            "CDR gap: a channel ended while no writer listened; writing an incomplete CDR",
            metadata: ["node": "\(node.name)", "channel": "\(uuid)", "why": "\(why)"])
        await write(
            CDRStore.NewCDR(
                channelUUID: uuid, callID: callID, node: node.name, region: node.region, direction: from == nil ? "unknown" : "outbound", from: from, to: to,
                startMicros: 0, answerMicros: 0, endMicros: Int64(Date().timeIntervalSince1970 * 1_000_000), duration: 0, billsec: 0,
                hangupCause: "UNKNOWN_MISSED_EVENT", codec: nil, rtpInPackets: nil, rtpInSkipped: nil, jitterMaxMs: nil, lossPercent: nil, mos: nil,
                incomplete: true, coreUUID: core))
    }

    /// `N session(s) since startup` of `api status`.
    static func sessionsSinceStartup(_ status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasSuffix("since startup") {
            return Int(line.split(separator: " ").first ?? "")
        }
        return nil
    }

    static func uuids(fromShowChannels json: String) -> Set<String> {
        guard let o = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], let rows = o["rows"] as? [[String: Any]] else { return [] }
        return Set(rows.compactMap { $0["uuid"] as? String })
    }

    /// The CDR fields of a CHANNEL_HANGUP_COMPLETE.
    public static func cdr(from e: ESLEvent, node: Node) -> CDRStore.NewCDR {
        func int(_ h: String) -> Int64? { e[h].flatMap { Int64($0) } }
        func double(_ h: String) -> Double? { e[h].flatMap { Double($0) } }
        let uuid = e.uniqueID ?? ""
        let packets = int("variable_rtp_audio_in_packet_count")
        let skipped = int("variable_rtp_audio_in_skip_packet_count")
        let loss = packets.flatMap { p in p > 0 ? skipped.map { 100.0 * Double($0) / Double(p + $0) } : nil }
        return CDRStore.NewCDR(
            channelUUID: uuid,
            callID: CallEvents.callID(e) ?? e["variable_sip_call_id"] ?? uuid,
            node: node.name, region: node.region,
            direction: e["Call-Direction"] ?? e["variable_direction"] ?? "unknown",
            from: e["Caller-Caller-ID-Number"], to: e["Caller-Destination-Number"],
            startMicros: int("variable_start_uepoch") ?? int("Caller-Channel-Created-Time") ?? 0,
            answerMicros: int("variable_answer_uepoch") ?? int("Caller-Channel-Answered-Time") ?? 0,
            endMicros: int("variable_end_uepoch") ?? int("Caller-Channel-Hangup-Time") ?? 0,
            duration: Int(int("variable_duration") ?? 0), billsec: Int(int("variable_billsec") ?? 0),
            hangupCause: e["Hangup-Cause"] ?? e["variable_hangup_cause"], codec: e["variable_read_codec"],
            rtpInPackets: packets, rtpInSkipped: skipped,
            jitterMaxMs: double("variable_rtp_audio_in_jitter_max_variance"), lossPercent: loss, mos: double("variable_rtp_audio_in_mos"),
            coreUUID: e.coreUUID)
    }
}
