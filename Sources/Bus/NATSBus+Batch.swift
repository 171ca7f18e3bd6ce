internal import CNATS
import Foundation
import Synchronization

extension NATSBus {
    /// Publishes many messages with one wait: each goes out at once (`js_PublishAsync`, its
    /// message id set), then the batch waits for its own acknowledgements (or failures),
    /// bounded by `timeout`. Returns the message ids JetStream acknowledged (a duplicate
    /// counts: the message is on the stream). One thread hop and one wake-up per batch instead of
    /// one per message. Messages must carry distinct ids.
    ///
    /// Not `js_PublishAsyncComplete`: it waits until nothing at all is pending on the context,
    /// so under steady load each batch also waited for the batches published after it, and the
    /// concurrent batches finished together whenever the pipeline happened to drain.
    public func publishBatch(_ messages: [(subject: String, data: [UInt8], messageID: String)], timeout: Duration = .seconds(2)) async -> Set<String> {
        guard !messages.isEmpty else { return [] }
        let batches = self.batches, connection = UncheckedPointer(self.connection)
        let ms = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ids = messages.map(\.messageID)
        do {
            return try await run { () throws(BusError) -> Set<String> in
                guard let js = batches.context(connection.pointer) else { throw BusError(.publishFailed, "async JetStream context") }
                batches.book.expect(ids)
                var sent: [String] = []
                var unsent: [String] = []
                for m in messages {
                    var opts = jsPubOptions()
                    jsPubOptions_Init(&opts)
                    let s: natsStatus = m.messageID.withCString { id in
                        opts.MsgId = id
                        return m.data.withUnsafeBytes { raw in js_PublishAsync(js, m.subject, raw.baseAddress, Int32(raw.count), &opts) }
                    }
                    if s == NATS_OK { sent.append(m.messageID) } else { unsent.append(m.messageID) }
                }
                batches.book.forget(unsent)
                return batches.book.wait(for: sent, until: Date(timeIntervalSinceNow: Double(ms) / 1000))
            }
        } catch {
            batches.book.forget(ids)
            return []
        }
    }
}

/// The async-publish JetStream context and the acknowledgements its callback records.
final class AsyncPublishing: @unchecked Sendable {
    // @unchecked: the context pointer is created once under the lock and destroyed at close.
    private let ctx = Mutex<UncheckedPointer?>(nil)
    let book = AckBook()

    /// The context, created on first use with the acknowledgement callback.
    func context(_ connection: OpaquePointer) -> OpaquePointer? {
        ctx.withLock { c -> UncheckedPointer? in
            if let c { return c }
            var opts = jsOptions()
            jsOptions_Init(&opts)
            opts.Wait = 5000
            opts.PublishAsync.MaxPending = 8192
            opts.PublishAsync.AckHandler = { _, msg, ack, _, closure in
                guard let closure else {
                    natsMsg_Destroy(msg)
                    return
                }
                let book = Unmanaged<AckBook>.fromOpaque(closure).takeUnretainedValue()
                var value: UnsafePointer<CChar>?
                if natsMsgHeader_Get(msg, "Nats-Msg-Id", &value) == NATS_OK, let value {
                    book.record(String(cString: value), acknowledged: ack != nil)
                }
                natsMsg_Destroy(msg)
            }
            opts.PublishAsync.AckHandlerClosure = Unmanaged.passUnretained(book).toOpaque()
            var js: OpaquePointer?
            guard natsConnection_JetStream(&js, connection, &opts) == NATS_OK, let js else { return nil }
            c = UncheckedPointer(js)
            return c
        }?.pointer
    }

    func destroy() {
        ctx.withLock { c in
            if let p = c { jsCtx_Destroy(p.pointer) }
            c = nil
        }
    }
}

/// Which expected message ids were acknowledged or refused (the callback runs on libnats's
/// thread); a batch's publisher blocks on it (on a bus thread) until its own are settled.
final class AckBook: @unchecked Sendable {
    // @unchecked: `outcomes` is only touched under `condition`.
    private enum Outcome {
        case waiting, acknowledged, failed
    }

    private let condition = NSCondition()
    private var outcomes: [String: Outcome] = [:]

    func expect(_ ids: [String]) {
        condition.lock()
        for id in ids { outcomes[id] = .waiting }
        condition.unlock()
    }

    func record(_ id: String, acknowledged: Bool) {
        condition.lock()
        if outcomes[id] == .waiting {
            outcomes[id] = acknowledged ? .acknowledged : .failed
            condition.broadcast()
        }
        condition.unlock()
    }

    /// Drops `ids` (never sent, or given up): a late outcome for them is ignored.
    func forget(_ ids: [String]) {
        condition.lock()
        for id in ids { outcomes[id] = nil }
        condition.unlock()
    }

    /// Waits until each of `ids` is acknowledged or refused, or `deadline` passes; returns the
    /// acknowledged ones and forgets all of `ids` (a late acknowledgement is then ignored).
    func wait(for ids: [String], until deadline: Date) -> Set<String> {
        condition.lock()
        defer { condition.unlock() }
        // Acknowledgements come roughly in publish order: one pass with a cursor.
        var i = 0
        while i < ids.count {
            if outcomes[ids[i]] == .waiting {
                if !condition.wait(until: deadline) { break }
            } else {
                i += 1
            }
        }
        var acked: Set<String> = []
        for id in ids where outcomes.removeValue(forKey: id) == .acknowledged { acked.insert(id) }
        return acked
    }
}
