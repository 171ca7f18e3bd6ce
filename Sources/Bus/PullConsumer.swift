internal import CNATS
import Foundation
import Logging
import Synchronization

/// A durable JetStream pull consumer as an AsyncSequence. A dedicated thread fetches batches
/// (`natsSubscription_Fetch` blocks up to a second) and yields them; the consumer's
/// `MaxAckPending` bounds how many can be out at once, so a slow reader slows the fetching
/// instead of growing a buffer. Each message must be acked, nak'ed or terminated: one that is
/// not is redelivered after `ackWait`.
public final class PullConsumer: AsyncSequence, @unchecked Sendable {
    // @unchecked: the subscription is used by the fetch thread only, until `stop()` ends it;
    // the stop flag is a Mutex.
    public typealias Element = BusMessage

    private let subscription: OpaquePointer
    public let config: ConsumerConfig
    private let stream: AsyncStream<BusMessage>
    private let continuation: AsyncStream<BusMessage>.Continuation
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)
    private let logger: Logger

    init(subscription: OpaquePointer, config: ConsumerConfig, logger: Logger) {
        self.subscription = subscription
        self.config = config
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: BusMessage.self)
        let thread = Thread { [self] in fetchLoop() }
        thread.name = "switchyard-bus-fetch-\(config.durable)"
        thread.start()
    }

    public func makeAsyncIterator() -> AsyncStream<BusMessage>.Iterator { stream.makeAsyncIterator() }

    private func fetchLoop() {
        while !stopped.withLock({ $0 }) {
            var list = natsMsgList()
            var err = jsErrCode(0)
            let s = natsSubscription_Fetch(&list, subscription, Int32(config.batch), 1000, &err)
            if s == NATS_OK {
                for i in 0..<Int(list.Count) {
                    if let msg = list.Msgs[i] {
                        continuation.yield(BusMessage(msg))
                        list.Msgs[i] = nil  // ownership moved to BusMessage
                    }
                }
                natsMsgList_Destroy(&list)
            } else if s == NATS_TIMEOUT {
                continue
            } else {
                // Disconnected (the connection reconnects by itself) or the consumer is gone.
                logger.debug("fetch failed", metadata: ["status": "\(lastError(s))", "consumer": "\(config.durable)"])
                if stopped.withLock({ $0 }) { break }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        continuation.finish()
        finished.signal()
    }

    /// Stops fetching and waits for the fetch thread; messages already yielded can still be
    /// acked. The subscription itself is destroyed by `NATSBus.close()` after the connection is
    /// closed: destroying it while libnats's read loop may still deliver to it is a
    /// use-after-free in libnats 3.4 (nats.c #637). It is never unsubscribed: for a consumer
    /// this subscription created, that would delete the durable consumer under every other
    /// instance sharing it.
    public func stop() async {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [self] in
                finished.wait()
                c.resume()
            }
        }
    }

    /// After the connection is closed (its read loop joined).
    func destroy() {
        natsSubscription_Destroy(subscription)
    }
}

/// One delivered JetStream message. Owns the libnats message until deinit.
public final class BusMessage: @unchecked Sendable {
    // @unchecked: natsMsg ack calls are thread-safe in libnats; the pointer is destroyed once.
    private let msg: OpaquePointer
    public let subject: String
    public let data: [UInt8]
    /// 1 on first delivery, more on redeliveries.
    public let deliveries: UInt64
    public let streamSequence: UInt64
    /// When this process received it: the consumer's ack wait runs from about then.
    public let received = ContinuousClock.now

    init(_ msg: OpaquePointer) {
        self.msg = msg
        subject = String(cString: natsMsg_GetSubject(msg))
        let length = Int(natsMsg_GetDataLength(msg))
        if let p = natsMsg_GetData(msg), length > 0 {
            data = Array(UnsafeRawBufferPointer(start: p, count: length))
        } else {
            data = []
        }
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        if natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta {
            deliveries = meta.pointee.NumDelivered
            streamSequence = meta.pointee.Sequence.Stream
            jsMsgMetaData_Destroy(meta)
        } else {
            deliveries = 1
            streamSequence = 0
        }
    }

    deinit { natsMsg_Destroy(msg) }

    /// Done: never redelivered.
    public func ack() throws(BusError) { try check(natsMsg_Ack(msg, nil), .consumerFailed, "ack") }

    /// Not now: redeliver after `delay` (at once when nil).
    public func nak(delay: Duration? = nil) throws(BusError) {
        if let delay {
            let ns = Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
            try check(natsMsg_NakWithDelay(msg, ns / 1_000_000, nil), .consumerFailed, "nak")
        } else {
            try check(natsMsg_Nak(msg, nil), .consumerFailed, "nak")
        }
    }

    /// Never deliver again (a poison message).
    public func term() throws(BusError) { try check(natsMsg_Term(msg, nil), .consumerFailed, "term") }

    /// Still working on it: restarts the ack timer.
    public func inProgress() throws(BusError) { try check(natsMsg_InProgress(msg, nil), .consumerFailed, "in progress") }
}
