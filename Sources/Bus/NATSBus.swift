internal import CNATS
import Foundation
public import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A NATS connection with JetStream: streams, publish with acknowledgement and message-id
/// dedupe, durable pull consumers. libnats handles are thread-safe; its blocking calls
/// (`js_Publish` waits for the PubAck, `Fetch` waits for messages) run on the bus's own threads,
/// never on Swift's cooperative pool or an event loop. The connection reconnects by itself.
public final class NATSBus: @unchecked Sendable {
    // @unchecked: natsConnection and jsCtx are thread-safe (libnats locks internally); the
    // pointers are set once in init and destroyed once in close().
    let connection: OpaquePointer
    private let js: OpaquePointer
    private let threads: NIOThreadPool
    let logger: Logger
    public let url: String
    /// How many servers `url` names: streams get min(3, this) replicas unless their config says.
    public var serverCount: Int { url.split(separator: ",").count }
    /// Pull consumers to destroy at close, after the connection.
    private let consumers = Mutex<[PullConsumer]>([])
    /// Key-value buckets and watches, likewise.
    private let buckets = Mutex<[KeyValueBucket]>([])
    private let watches = Mutex<[KeyValueWatch]>([])
    /// The second JetStream context, for `publishBatch` (its own async acks).
    let batches = AsyncPublishing()

    private init(connection: OpaquePointer, js: OpaquePointer, threads: NIOThreadPool, url: String, logger: Logger) {
        self.connection = connection
        self.js = js
        self.threads = threads
        self.url = url
        self.logger = logger
    }

    /// Connects to `url` (`nats://127.0.0.1:4222`; a comma-separated list for a cluster).
    /// `retry`: keep trying in the background when the first connect fails (a server not up yet).
    public static func connect(
        url: String, name: String = "switchyard", threads: Int = 4, logger: Logger = Logger(label: "switchyard.bus")
    ) async throws(BusError) -> NATSBus {
        let pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        do {
            let (nc, js) = try await pool.runIfActive { () throws -> (UncheckedPointer, UncheckedPointer) in
                var opts: OpaquePointer?
                try check(natsOptions_Create(&opts), .connectionFailed, "options")
                defer { natsOptions_Destroy(opts) }
                // A cluster: every server, so the connection survives the loss of any one.
                let servers = url.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if servers.count > 1 {
                    let copies = servers.map { strdup($0) }
                    defer { copies.forEach { free($0) } }
                    var pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
                    let s = pointers.withUnsafeMutableBufferPointer { natsOptions_SetServers(opts, $0.baseAddress, Int32($0.count)) }
                    try check(s, .connectionFailed, "servers \(url)")
                } else {
                    try check(natsOptions_SetURL(opts, url), .connectionFailed, "url \(url)")
                }
                _ = natsOptions_SetName(opts, name)
                _ = natsOptions_SetTimeout(opts, 2000)
                _ = natsOptions_SetMaxReconnect(opts, -1)  // forever
                _ = natsOptions_SetReconnectWait(opts, 250)
                _ = natsOptions_SetAllowReconnect(opts, true)
                var nc: OpaquePointer?
                try check(natsConnection_Connect(&nc, opts), .connectionFailed, "connect \(url)")
                var jsOpts = jsOptions()
                jsOptions_Init(&jsOpts)
                jsOpts.Wait = 5000
                var js: OpaquePointer?
                let s = natsConnection_JetStream(&js, nc, &jsOpts)
                guard s == NATS_OK else {
                    natsConnection_Destroy(nc)
                    throw BusError(.connectionFailed, "JetStream context", status: text(s))
                }
                return (UncheckedPointer(nc!), UncheckedPointer(js!))
            }
            return NATSBus(connection: nc.pointer, js: js.pointer, threads: pool, url: url, logger: logger)
        } catch {
            try? await pool.shutdownGracefully()
            throw (error as? BusError) ?? BusError(.connectionFailed, "\(error)")
        }
    }

    /// Whether the connection is up right now (it reconnects by itself when not).
    public var isConnected: Bool { natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED }

    /// Creates the stream, or updates its configuration when it exists (idempotent at start-up).
    /// On a cluster that is still electing leaders the JetStream API times out or has no
    /// responders: retried for up to `retryFor`.
    public func ensureStream(_ requested: StreamConfig, retryFor: Duration = .seconds(30)) async throws(BusError) {
        try await retryingTransient("stream \(requested.name)", for: retryFor) { () throws(BusError) in try await self.ensureStreamOnce(requested) }
    }

    /// Runs `body` again while it fails with a timeout or no responders, for up to `window`.
    func retryingTransient<T: Sendable>(_ what: String, for window: Duration, _ body: @Sendable () async throws(BusError) -> T) async throws(BusError) -> T {
        let deadline = ContinuousClock.now + window
        var logged = false
        while true {
            do {
                return try await body()
            } catch {
                let transient = error.isTransient || error.status?.contains("Timeout") == true || error.status?.contains("No responders") == true
                guard transient, ContinuousClock.now < deadline else { throw error }
                if !logged {
                    logger.notice("JetStream not ready; retrying", metadata: ["what": "\(what)", "error": "\(error)"])
                    logged = true
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    private func ensureStreamOnce(_ requested: StreamConfig) async throws(BusError) {
        let js = UncheckedPointer(self.js)
        var resolved = requested
        // Every process that names the same servers computes the same replica count, so none of
        // them rewrites the stream to another (R3 on a three-server cluster).
        if resolved.replicas == nil { resolved.replicas = min(3, max(1, serverCount)) }
        let config = resolved
        try await run { () throws(BusError) in
            try withStreamConfig(config) { (cfg: inout jsStreamConfig) throws(BusError) in
                var err = jsErrCode(0)
                var info: UnsafeMutablePointer<jsStreamInfo>?
                var s = js_GetStreamInfo(&info, js.pointer, config.name, nil, &err)
                if s == NATS_OK {
                    jsStreamInfo_Destroy(info)
                    info = nil
                    s = js_UpdateStream(&info, js.pointer, &cfg, nil, &err)
                } else {
                    err = jsErrCode(0)
                    s = js_AddStream(&info, js.pointer, &cfg, nil, &err)
                }
                if info != nil { jsStreamInfo_Destroy(info) }
                guard s == NATS_OK else {
                    throw BusError(.streamFailed, "stream \(config.name)", status: lastError(s), jsErrorCode: Int(err.rawValue))
                }
            }
        }
    }

    /// Publishes `data` on `subject` and waits for JetStream's acknowledgement. `messageID`
    /// makes a re-publish within the stream's duplicate window harmless (`duplicate` is true).
    ///
    /// `retryFor`: while a clustered stream elects a new leader (5-7 s on nats-server 2.9, its
    /// Raft timers are fixed) publishes fail with no-responders or time out; with a message id
    /// they are retried, the same id each time, until this much time has passed (0: no retry).
    @discardableResult
    public func publish(
        _ subject: String, _ data: [UInt8], messageID: String? = nil, timeout: Duration = .seconds(5), retryFor: Duration = .zero
    ) async throws(BusError) -> PublishAck {
        let deadline = ContinuousClock.now + retryFor
        var attempt = 0
        while true {
            do {
                return try await publishOnce(subject, data, messageID: messageID, timeout: timeout)
            } catch {
                attempt += 1
                guard messageID != nil, error.isTransient, ContinuousClock.now < deadline else { throw error }
                if attempt == 1 || attempt.isMultiple(of: 20) {
                    logger.notice(
                        "publish failed; retrying with the same message id", metadata: ["subject": "\(subject)", "error": "\(error)", "attempt": "\(attempt)"])
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func publishOnce(_ subject: String, _ data: [UInt8], messageID: String?, timeout: Duration) async throws(BusError) -> PublishAck {
        let js = UncheckedPointer(self.js)
        let ms = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        return try await run { () throws(BusError) -> PublishAck in
            var opts = jsPubOptions()
            jsPubOptions_Init(&opts)
            opts.MaxWait = ms
            var ack: UnsafeMutablePointer<jsPubAck>?
            var err = jsErrCode(0)
            let s: natsStatus = messageID.withOptionalCString { id in
                opts.MsgId = id
                return data.withUnsafeBytes { raw in
                    js_Publish(&ack, js.pointer, subject, raw.baseAddress, Int32(raw.count), &opts, &err)
                }
            }
            guard s == NATS_OK, let ack else {
                let transient =
                    s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT || s == NATS_CONNECTION_DISCONNECTED
                    || err.rawValue == 10008 /* JSClusterNotAvailErr */
                var e = BusError(.publishFailed, "publish \(subject)", status: lastError(s), jsErrorCode: Int(err.rawValue))
                e.isTransient = transient
                throw e
            }
            defer { jsPubAck_Destroy(ack) }
            return PublishAck(stream: String(cString: ack.pointee.Stream), sequence: ack.pointee.Sequence, duplicate: ack.pointee.Duplicate)
        }
    }

    /// A durable pull consumer on `stream` (created if needed) delivering `subject`'s messages.
    /// Retried like `ensureStream` while a cluster elects leaders.
    public func pullConsumer(_ config: ConsumerConfig, retryFor: Duration = .seconds(30)) async throws(BusError) -> PullConsumer {
        try await retryingTransient("consumer \(config.durable)", for: retryFor) { () throws(BusError) in try await self.pullConsumerOnce(config) }
    }

    private func pullConsumerOnce(_ config: ConsumerConfig) async throws(BusError) -> PullConsumer {
        let js = UncheckedPointer(self.js)
        let sub = try await run { () throws(BusError) -> UncheckedPointer in
            var subOpts = jsSubOptions()
            jsSubOptions_Init(&subOpts)
            subOpts.ManualAck = true
            var err = jsErrCode(0)
            var sub: OpaquePointer?
            let s: natsStatus = config.stream.withCString { stream in
                subOpts.Stream = stream
                subOpts.Config.AckPolicy = js_AckExplicit
                subOpts.Config.AckWait = Int64(config.ackWait.components.seconds) * 1_000_000_000 + config.ackWait.components.attoseconds / 1_000_000_000
                subOpts.Config.MaxDeliver = Int64(config.maxDeliver)
                subOpts.Config.MaxAckPending = Int64(config.maxAckPending)
                return js_PullSubscribe(&sub, js.pointer, config.subject, config.durable, nil, &subOpts, &err)
            }
            guard s == NATS_OK, let sub else {
                throw BusError(.consumerFailed, "pull consumer \(config.durable) on \(config.stream)", status: lastError(s), jsErrorCode: Int(err.rawValue))
            }
            return UncheckedPointer(sub)
        }
        let consumer = PullConsumer(subscription: sub.pointer, config: config, logger: logger)
        consumers.withLock { $0.append(consumer) }
        return consumer
    }

    /// The key-value bucket `name`, created when it does not exist (history 1; replicated like
    /// streams: min(3, the number of servers) unless `replicas` says).
    public func keyValue(_ name: String, replicas: Int? = nil) async throws(BusError) -> KeyValueBucket {
        let js = UncheckedPointer(self.js)
        let replicas = replicas ?? min(3, max(1, serverCount))
        let kv = try await run { () throws(BusError) -> UncheckedPointer in
            var kv: OpaquePointer?
            if js_KeyValue(&kv, js.pointer, name) == NATS_OK, let kv { return UncheckedPointer(kv) }
            var cfg = kvConfig()
            kvConfig_Init(&cfg)
            let s: natsStatus = name.withCString { bucket in
                cfg.Bucket = bucket
                cfg.History = 1
                cfg.Replicas = Int32(replicas)
                cfg.StorageType = js_FileStorage
                return js_CreateKeyValue(&kv, js.pointer, &cfg)
            }
            // Another process may have created it in the meantime.
            if s != NATS_OK, js_KeyValue(&kv, js.pointer, name) == NATS_OK, let kv { return UncheckedPointer(kv) }
            guard s == NATS_OK, let kv else { throw BusError(.streamFailed, "key-value bucket \(name)", status: lastError(s)) }
            return UncheckedPointer(kv)
        }
        let bucket = KeyValueBucket(kv: kv.pointer, name: name, bus: self)
        buckets.withLock { $0.append(bucket) }
        return bucket
    }

    func adopt(_ watch: KeyValueWatch) {
        watches.withLock { $0.append(watch) }
    }

    /// Stops the consumers, closes the connection (pending publishes fail; its read loop is
    /// joined), then frees the subscriptions and the connection, in that order.
    public func close() async {
        let all = consumers.withLock { c -> [PullConsumer] in
            defer { c = [] }
            return c
        }
        for c in all { await c.stop() }
        let allWatches = watches.withLock { w -> [KeyValueWatch] in
            defer { w = [] }
            return w
        }
        for w in allWatches { await w.stop() }
        let allBuckets = buckets.withLock { b -> [UncheckedPointer] in
            defer { b = [] }
            return b.map { UncheckedPointer($0.kv) }
        }
        let connection = UncheckedPointer(self.connection), js = UncheckedPointer(self.js)
        let batches = self.batches
        _ = try? await threads.runIfActive {
            natsConnection_Close(connection.pointer)
            batches.destroy()
            for c in all { c.destroy() }
            for w in allWatches { w.destroy() }
            for b in allBuckets { kvStore_Destroy(b.pointer) }
            jsCtx_Destroy(js.pointer)
            natsConnection_Destroy(connection.pointer)
        }
        try? await threads.shutdownGracefully()
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws(BusError) -> T) async throws(BusError) -> T {
        do {
            return try await threads.runIfActive { try body() }
        } catch {
            throw (error as? BusError) ?? BusError(.closed, "\(error)")
        }
    }
}

/// The acknowledgement of a JetStream publish.
public struct PublishAck: Sendable, Hashable {
    public var stream: String
    public var sequence: UInt64
    /// The message id was seen within the duplicate window: the stream kept the first copy.
    public var duplicate: Bool
}

public struct StreamConfig: Sendable, Hashable {
    public var name: String
    public var subjects: [String]
    /// Messages older than this are dropped (0: kept until other limits).
    public var maxAge: Duration
    /// Total size limit in bytes (-1: none).
    public var maxBytes: Int64
    /// The window in which a repeated message id is recognised as a duplicate.
    public var duplicateWindow: Duration
    /// Copies kept by a cluster (R3 survives the loss of any one server). nil: min(3, the
    /// number of servers the bus was given), the same in every process of a deployment.
    public var replicas: Int?

    public init(
        name: String, subjects: [String], maxAge: Duration = .seconds(7 * 86400), maxBytes: Int64 = 1 << 30, duplicateWindow: Duration = .seconds(86400),
        replicas: Int? = nil
    ) {
        self.replicas = replicas
        self.name = name
        self.subjects = subjects
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.duplicateWindow = duplicateWindow
    }
}

public struct ConsumerConfig: Sendable, Hashable {
    public var stream: String
    public var durable: String
    public var subject: String
    /// Unacknowledged longer than this: redelivered.
    public var ackWait: Duration
    public var maxDeliver: Int
    /// At most this many messages delivered and not yet acknowledged (the backpressure).
    public var maxAckPending: Int
    public var batch: Int

    public init(
        stream: String, durable: String, subject: String, ackWait: Duration = .seconds(30), maxDeliver: Int = 20, maxAckPending: Int = 256, batch: Int = 64
    ) {
        self.stream = stream
        self.durable = durable
        self.subject = subject
        self.ackWait = ackWait
        self.maxDeliver = maxDeliver
        self.maxAckPending = maxAckPending
        self.batch = batch
    }
}

/// A pointer that crosses to a pool thread; the handles it points at are thread-safe.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

func check(_ s: natsStatus, _ code: BusError.Code, _ what: String) throws(BusError) {
    guard s == NATS_OK else { throw BusError(code, what, status: lastError(s)) }
}

func text(_ s: natsStatus) -> String { String(cString: natsStatus_GetText(s)) }

/// The status text plus libnats's thread-local detail, if any.
func lastError(_ s: natsStatus) -> String {
    var st = NATS_OK
    if let detail = nats_GetLastError(&st), detail.pointee != 0 { return "\(text(s)): \(String(cString: detail))" }
    return text(s)
}

/// Fills a `jsStreamConfig` whose C strings live for the duration of `body`.
func withStreamConfig<T>(_ config: StreamConfig, _ body: (inout jsStreamConfig) throws(BusError) -> T) throws(BusError) -> T {
    var cfg = jsStreamConfig()
    jsStreamConfig_Init(&cfg)
    let name = strdup(config.name)
    let subjects: [UnsafeMutablePointer<CChar>?] = config.subjects.map { strdup($0) }
    defer {
        free(name)
        for s in subjects { free(s) }
    }
    var subjectPointers: [UnsafePointer<CChar>?] = subjects.map { $0.map { UnsafePointer($0) } }
    cfg.Name = UnsafePointer(name)
    cfg.Storage = js_FileStorage
    cfg.Retention = js_LimitsPolicy
    cfg.Discard = js_DiscardOld
    cfg.MaxAge = Int64(config.maxAge.components.seconds) * 1_000_000_000
    cfg.MaxBytes = config.maxBytes
    cfg.Duplicates = Int64(config.duplicateWindow.components.seconds) * 1_000_000_000
    cfg.Replicas = Int64(config.replicas ?? 1)
    return try subjectPointers.withUnsafeMutableBufferPointer { buffer throws(BusError) -> T in
        cfg.Subjects = buffer.baseAddress
        cfg.SubjectsLen = Int32(buffer.count)
        return try body(&cfg)
    }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case .some(let s): s.withCString { body($0) }
        case .none: body(nil)
        }
    }
}
