internal import CNATS
import Foundation
public import Logging
import Synchronization

/// A JetStream key-value bucket (replicated like a stream on a cluster): put, delete, get, and
/// `watch()`, an AsyncSequence of every change, starting with the current value of each key.
/// Shared operator state (a drained node) lives in one so every process sees it within a
/// second of the write, whichever process or region wrote it.
public final class KeyValueBucket: @unchecked Sendable {
    // @unchecked: kvStore calls are thread-safe in libnats; the pointer is set once and
    // destroyed once by `NATSBus.close()`, after the connection.
    let kv: OpaquePointer
    public let name: String
    private let bus: NATSBus

    init(kv: OpaquePointer, name: String, bus: NATSBus) {
        self.kv = kv
        self.name = name
        self.bus = bus
    }

    /// One change: `value` is nil when the key was deleted.
    public struct Change: Sendable, Hashable {
        public var key: String
        public var value: String?
        public var revision: UInt64
    }

    public func put(_ key: String, _ value: String) async throws(BusError) {
        let kv = UncheckedPointer(self.kv)
        let name = self.name
        try await bus.run { () throws(BusError) in
            var rev: UInt64 = 0
            try check(kvStore_PutString(&rev, kv.pointer, key, value), .publishFailed, "put \(name)/\(key)")
        }
    }

    public func delete(_ key: String) async throws(BusError) {
        let kv = UncheckedPointer(self.kv)
        let name = self.name
        try await bus.run { () throws(BusError) in
            try check(kvStore_Delete(kv.pointer, key), .publishFailed, "delete \(name)/\(key)")
        }
    }

    /// The current value, nil when the key does not exist or was deleted.
    public func get(_ key: String) async throws(BusError) -> String? {
        let kv = UncheckedPointer(self.kv)
        let name = self.name
        return try await bus.run { () throws(BusError) -> String? in
            var entry: OpaquePointer?
            let s = kvStore_Get(&entry, kv.pointer, key)
            if s == NATS_NOT_FOUND { return nil }
            try check(s, .consumerFailed, "get \(name)/\(key)")
            defer { kvEntry_Destroy(entry) }
            guard kvEntry_Operation(entry) == kvOp_Put, let text = kvEntry_ValueString(entry) else { return nil }
            return String(cString: text)
        }
    }

    /// Every key's current value, then each change as it happens. A dedicated thread waits on
    /// libnats's watcher; when the watcher fails (the bucket's stream moved to another server)
    /// it is made again, which replays the current values: a reader applies changes as
    /// idempotent state ("node X is drained"), so a replay is harmless.
    public func watch() -> KeyValueWatch {
        let watch = KeyValueWatch(kv: kv, bucket: name, logger: bus.logger)
        bus.adopt(watch)
        return watch
    }
}

/// The changes of a bucket, as an AsyncSequence (see `KeyValueBucket.watch()`).
public final class KeyValueWatch: AsyncSequence, @unchecked Sendable {
    // @unchecked: the watcher pointer is used by the watch thread only (made, read, stopped
    // there); the stop flag is a Mutex; destruction happens after the thread ended.
    public typealias Element = KeyValueBucket.Change

    private let kv: OpaquePointer
    private let bucket: String
    private let logger: Logger
    private let stream: AsyncStream<KeyValueBucket.Change>
    private let continuation: AsyncStream<KeyValueBucket.Change>.Continuation
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)
    /// Watchers made by the thread, destroyed by `destroy()` after the connection closed.
    private let made = Mutex<[UncheckedPointer]>([])

    init(kv: OpaquePointer, bucket: String, logger: Logger) {
        self.kv = kv
        self.bucket = bucket
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: KeyValueBucket.Change.self)
        let thread = Thread { [self] in loop() }
        thread.name = "switchyard-kv-\(bucket)"
        thread.start()
    }

    public func makeAsyncIterator() -> AsyncStream<KeyValueBucket.Change>.Iterator { stream.makeAsyncIterator() }

    private func loop() {
        var watcher: OpaquePointer?
        while !stopped.withLock({ $0 }) {
            if watcher == nil {
                var opts = kvWatchOptions()
                kvWatchOptions_Init(&opts)
                let s = kvStore_WatchAll(&watcher, kv, &opts)
                if s != NATS_OK {
                    watcher = nil
                    logger.debug("key-value watch failed; retrying", metadata: ["bucket": "\(bucket)", "status": "\(lastError(s))"])
                    Thread.sleep(forTimeInterval: 0.25)
                    continue
                }
                if let w = watcher {
                    let p = UncheckedPointer(w)
                    made.withLock { $0.append(p) }
                }
            }
            var entry: OpaquePointer?
            let s = kvWatcher_Next(&entry, watcher, 500)
            if s == NATS_OK {
                // A nil entry marks the end of the initial values.
                guard let entry else { continue }
                let key = String(cString: kvEntry_Key(entry))
                let op = kvEntry_Operation(entry)
                let value = op == kvOp_Put ? kvEntry_ValueString(entry).map { String(cString: $0) } ?? "" : nil
                continuation.yield(.init(key: key, value: value, revision: kvEntry_Revision(entry)))
                kvEntry_Destroy(entry)
            } else if s == NATS_TIMEOUT {
                continue
            } else {
                logger.debug("key-value watcher failed; watching again", metadata: ["bucket": "\(bucket)", "status": "\(lastError(s))"])
                _ = kvWatcher_Stop(watcher)
                watcher = nil
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
        if let watcher { _ = kvWatcher_Stop(watcher) }
        continuation.finish()
        finished.signal()
    }

    /// Stops watching and waits for the thread.
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

    /// After the connection is closed (see `PullConsumer.destroy`).
    func destroy() {
        for w in made.withLock({ $0 }) { kvWatcher_Destroy(w.pointer) }
    }
}
