public import Bus
import CallPlane
import Foundation
public import Logging
public import Store

/// Puts call jobs on the `calls` stream and records that they are there. A failed publish
/// leaves the call in the outbox (`call_outbox`) for the sweeper; the message id
/// (= the call id) makes a second publish of the same call harmless.
public struct CallPublisher: Sendable {
    let bus: NATSBus
    let calls: CallStore
    let logger: Logger
    /// Published call ids waiting to be marked, written in batches (one commit per batch
    /// instead of one per call). Unmarked calls are only republished by the sweeper, which the
    /// message id makes harmless.
    let marks = PublishedMarks()

    public static let stream = CallJobs.stream

    /// Concurrent publishes share one wait for their acknowledgements (`NATSBus.publishBatch`).
    let batches: Coalescer<(subject: String, data: [UInt8], messageID: String), Bool>

    public init(bus: NATSBus, calls: CallStore, logger: Logger) {
        self.bus = bus
        self.calls = calls
        self.logger = logger
        batches = Coalescer(flushes: 4, maxBatch: 256) { items in
            let acked = await bus.publishBatch(items, timeout: .seconds(2))
            return items.map { acked.contains($0.messageID) }
        }
    }

    /// Publishes the originate job; true when it is on the stream.
    @discardableResult
    func publish(_ call: CallStore.Call) async -> Bool {
        let job = CallJobs.Job(call)
        // NATS down: do not make the caller wait for a publish timeout; the sweeper has it.
        guard bus.isConnected else {
            logger.warning("NATS disconnected; call left in the outbox", metadata: ["call": "\(call.id)"])
            return false
        }
        guard await batches.submit((job.subject, job.jsonBytes, job.messageID)) else {
            logger.warning("call not published yet; the outbox sweeper will retry", metadata: ["call": "\(call.id)"])
            return false
        }
        if await marks.add(call.id) {
            // First in a new batch: flush it shortly, with whatever joined meanwhile.
            let calls = self.calls, marks = self.marks, logger = self.logger
            Task {
                try? await Task.sleep(for: .milliseconds(20))
                let ids = await marks.take()
                do {
                    try await calls.markPublished(ids: ids)
                } catch {
                    // The sweeper will publish them again: duplicates the stream drops by message id.
                    logger.warning("published calls not marked", metadata: ["count": "\(ids.count)", "error": "\(error)"])
                }
            }
        }
        return true
    }

    func publishCancel(_ call: CallStore.Call) async throws {
        let job = CallJobs.Job(call, type: CallJobs.cancel)
        try await bus.publish(job.subject, job.jsonBytes, messageID: job.messageID, timeout: .seconds(2))
    }
}

/// Republishes calls whose publish failed (the outbox), every `interval`.
public struct OutboxSweeper: Sendable {
    let publisher: CallPublisher
    let interval: Duration
    let minimumAge: Duration

    public init(publisher: CallPublisher, interval: Duration = .seconds(1), minimumAge: Duration = .seconds(2)) {
        self.publisher = publisher
        self.interval = interval
        self.minimumAge = minimumAge
    }

    /// One pass: returns how many calls were put on the stream.
    @discardableResult
    public func sweep() async -> Int {
        guard let pending = try? await publisher.calls.unpublished(olderThan: minimumAge) else { return 0 }
        var done = 0
        for call in pending where await publisher.publish(call) { done += 1 }
        if done > 0 { publisher.logger.notice("outbox: republished calls", metadata: ["count": "\(done)"]) }
        return done
    }

    public func run() async {
        while !Task.isCancelled {
            await sweep()
            try? await Task.sleep(for: interval)
        }
    }
}

/// Call ids published and not yet marked in PostgreSQL.
actor PublishedMarks {
    private var pending: [String] = []

    /// Adds an id; true when it starts a new batch (the caller schedules the flush).
    func add(_ id: String) -> Bool {
        pending.append(id)
        return pending.count == 1
    }

    func take() -> [String] {
        defer { pending = [] }
        return pending
    }
}

extension CallJobs.Job {
    /// The job as the workers decode it (`CallJobs.Job`'s `Codable` keys; an absent field is
    /// written as null, which decodes as absent), written by `JSONWriter`: `JSONEncoder` took
    /// 3 % of the API's CPU per create. `JobEncodingTests` decodes it back for every field.
    var jsonBytes: [UInt8] {
        var w = JSONWriter(capacity: 512)
        w.object { w in
            w.field("type", type)
            w.field("call_id", call_id)
            w.field("account_id", account_id)
            w.field("to", to)
            w.field("from", from)
            w.field("timeout", timeout)
            w.field("time_limit", time_limit)
            w.field("region", region)
            w.field("url", url)
            w.field("status_callback", status_callback)
            w.field("status_callback_events", status_callback_events)
            w.field("client_state", client_state)
            w.field("paced", paced)
        }
        return w.bytes
    }
}
