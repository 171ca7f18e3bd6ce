import Bus
import Logging
import ServiceLifecycle

/// Operator drain state shared by every proxy and orchestrator of a deployment: a JetStream
/// key-value bucket (`switchyard_drain`, replicated like the streams) with one key per drained
/// node. Each process watches it and applies every change locally, so a drain given to either
/// region's admin reaches all of them within a second; a process that starts later reads the
/// current state first.
final class NodeDrainSync: Service, Sendable {
    static let bucketName = "switchyard_drain"

    let url: String
    let logger: Logger
    /// Applies one node's state locally (true: drained).
    let apply: @Sendable (String, Bool) async -> Void
    private let state = BucketBox()

    init(url: String, logger: Logger, apply: @escaping @Sendable (String, Bool) async -> Void) {
        self.url = url
        self.logger = logger
        self.apply = apply
    }

    func run() async throws {
        let bus = try await NATSBus.connect(url: url, name: "switchyard-drain", threads: 2, logger: logger)
        var bucket: KeyValueBucket?
        // The bucket's stream may still be electing a leader right after a cluster starts.
        while bucket == nil, !Task.isCancelled {
            do {
                bucket = try await bus.keyValue(Self.bucketName)
            } catch {
                logger.notice("drain bucket not ready; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        guard let bucket else {
            await bus.close()
            return
        }
        await state.set(bucket)
        let watch = bucket.watch()
        logger.notice("drain state shared", metadata: ["bucket": "\(Self.bucketName)", "nats": "\(url)"])
        await withGracefulShutdownHandler {
            for await change in watch {
                await apply(change.key, change.value != nil)
            }
        } onGracefulShutdown: {
            Task { await watch.stop() }
        }
        await watch.stop()
        await state.set(nil)
        await bus.close()
    }

    /// Writes a node's state for every process (the watch applies it here too). False when the
    /// bucket is not reachable yet.
    func setDrained(_ node: String, _ drained: Bool) async throws -> Bool {
        guard let bucket = await state.get() else { return false }
        if drained {
            try await bucket.put(node, "drained")
        } else {
            try await bucket.delete(node)
        }
        return true
    }

    private actor BucketBox {
        var bucket: KeyValueBucket?
        func set(_ b: KeyValueBucket?) { bucket = b }
        func get() -> KeyValueBucket? { bucket }
    }
}
