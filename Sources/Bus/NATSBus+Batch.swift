internal import CNATS
import Synchronization

extension NATSBus {
    /// Publishes many messages with one wait: each goes out at once (`js_PublishAsync`, its
    /// message id set), then one `js_PublishAsyncComplete` waits for every acknowledgement,
    /// bounded by `timeout`. Returns the message ids JetStream acknowledged (a duplicate
    /// counts: the message is on the stream). One thread hop and one wake-up per batch instead of
    /// one per message. Messages must carry distinct ids.
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
                for m in messages {
                    var opts = jsPubOptions()
                    jsPubOptions_Init(&opts)
                    let s: natsStatus = m.messageID.withCString { id in
                        opts.MsgId = id
                        return m.data.withUnsafeBytes { raw in js_PublishAsync(js, m.subject, raw.baseAddress, Int32(raw.count), &opts) }
                    }
                    if s == NATS_OK { sent.append(m.messageID) }
                }
                var wait = jsPubOptions()
                jsPubOptions_Init(&wait)
                wait.MaxWait = ms
                _ = js_PublishAsyncComplete(js, &wait)
                return batches.book.take(ids)
            }
        } catch {
            _ = batches.book.take(ids)
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

/// Which expected message ids were acknowledged (the callback runs on libnats's thread).
final class AckBook: Sendable {
    private let results = Mutex<[String: Bool]>([:])

    func expect(_ ids: [String]) {
        results.withLock { r in for id in ids { r[id] = false } }
    }

    func record(_ id: String, acknowledged: Bool) {
        results.withLock { r in
            if r[id] != nil, acknowledged { r[id] = true }
        }
    }

    /// The acknowledged ones among `ids`; forgets all of `ids`.
    func take(_ ids: [String]) -> Set<String> {
        results.withLock { r in
            var acked: Set<String> = []
            for id in ids where r.removeValue(forKey: id) == true { acked.insert(id) }
            return acked
        }
    }
}
