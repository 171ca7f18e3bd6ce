public import Dispatcher
public import ESL
public import Logging
import NIOCore
import NIOPosix

/// One `ESLSession` per node of `regions.yaml` that has an `esl` address, with every update
/// tagged by its node, in one stream. Used by the orchestrator and the CDR writer.
public final class NodeSessions: Sendable {
    public struct Update: Sendable {
        public var node: Node
        public var update: ESLSession.Update
    }

    public let nodes: [Node]
    private let sessions: [String: ESLSession]
    public let updates: AsyncStream<Update>
    private let continuation: AsyncStream<Update>.Continuation

    public init(nodes: [Node], password: String, events: [String], heartbeatTimeout: Duration = .seconds(45), logger: Logger) {
        self.nodes = nodes.filter { $0.esl != nil }
        var sessions: [String: ESLSession] = [:]
        for node in self.nodes {
            var l = logger
            l[metadataKey: "node"] = "\(node.name)"
            sessions[node.name] = ESLSession(
                .init(
                    host: node.esl!.host, port: node.esl!.port, password: password, events: events, heartbeatTimeout: heartbeatTimeout,
                    initialBackoff: .milliseconds(200), maxBackoff: .seconds(2)),
                logger: l)
        }
        self.sessions = sessions
        (updates, continuation) = AsyncStream.makeStream(of: Update.self)
    }

    public func session(_ node: String) -> ESLSession? { sessions[node] }

    /// Runs every session and forwards their updates until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for node in nodes {
                guard let session = sessions[node.name] else { continue }
                group.addTask { await session.run() }
                group.addTask {
                    for await u in session.updates { self.continuation.yield(Update(node: node, update: u)) }
                }
            }
        }
        continuation.finish()
    }
}
