import Dispatcher
import ESL
public import Logging
public import NIOCore
public import ServiceLifecycle

/// Reads each node's channel count over its Event Socket and feeds it to the dispatcher: one
/// `ESLSession` per node with an `esl` address (reconnect with backoff, HEARTBEAT watchdog),
/// `api show channels count` every `pollInterval`, and every HEARTBEAT's `Session-Count` in
/// between. Nodes added, removed or moved by a reload are picked up on the next poll.
public struct NodeLoadMonitor: Service {
    public let handle: ProxyHandle
    public let password: String
    public let pollInterval: Duration
    public let group: any EventLoopGroup
    public let logger: Logger

    public init(handle: ProxyHandle, password: String, pollInterval: Duration = .seconds(1), group: any EventLoopGroup, logger: Logger) {
        self.handle = handle
        self.password = password
        self.pollInterval = pollInterval
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                var running: [String: (target: HostPort, stop: AsyncStream<Void>.Continuation)] = [:]
                while !Task.isCancelled {
                    let targets = (try? await handle.eslTargets()?.get()) ?? [:]
                    for (name, entry) in running where targets[name] != entry.target {
                        entry.stop.finish()
                        running[name] = nil
                    }
                    for (name, target) in targets where running[name] == nil {
                        let (stopSignal, stop) = AsyncStream.makeStream(of: Void.self)
                        running[name] = (target, stop)
                        group.addTask { await monitor(node: name, target: target, until: stopSignal) }
                    }
                    try? await Task.sleep(for: pollInterval)
                }
                for entry in running.values { entry.stop.finish() }
            }
        }
    }

    /// Watches one node until `stopSignal` finishes or the task is cancelled.
    private func monitor(node: String, target: HostPort, until stopSignal: AsyncStream<Void>) async {
        var logger = logger
        logger[metadataKey: "node"] = "\(node)"
        let session = ESLSession(
            .init(host: target.host, port: target.port, password: password, events: ["HEARTBEAT"], initialBackoff: .milliseconds(200)),
            group: group, logger: logger)
        let handle = self.handle
        let pollInterval = self.pollInterval
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await session.run() }
            tasks.addTask {
                for await update in session.updates {
                    switch update {
                    case .connected:
                        handle.eslConnection(node: node, up: true)
                    case .disconnected:
                        handle.eslConnection(node: node, up: false)
                    case .event(let event):
                        if event.name == "HEARTBEAT", let count = event["Session-Count"].flatMap({ Int($0) }) {
                            handle.channelCountRead(node: node, count: count)
                        }
                    }
                }
            }
            tasks.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    guard let output = try? await session.api("show channels count", timeout: .seconds(2)) else { continue }
                    if let count = Self.parseCount(output) { handle.channelCountRead(node: node, count: count) }
                }
            }
            for await _ in stopSignal {}
            tasks.cancelAll()
        }
        handle.eslConnection(node: node, up: false)
    }

    /// `show channels count` output: a blank line, then `<N> total.`.
    static func parseCount(_ output: String) -> Int? {
        for line in output.split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ")
            if words.count >= 2, words[1].hasPrefix("total"), let n = Int(words[0]) { return n }
        }
        return nil
    }
}
