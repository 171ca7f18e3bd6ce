import FSEmulator
import Logging
import NIOPosix

/// An in-process emulated node on free loopback ports, for the ESL client tests.
func startNode(
    eslPort: Int = 0, heartbeat: Duration = .seconds(20), ring: Duration = .milliseconds(50), talk: Duration = .milliseconds(200),
    answer: Duration = .zero, hold: Duration? = nil, maxChannels: Int = 100
) async throws -> FSNodeServer {
    var logger = Logger(label: "test.fsnode")
    logger.logLevel = .warning
    let config = FSNodeConfiguration(
        name: "fs-test", sipHost: "127.0.0.1", sipPort: 0, eslHost: "127.0.0.1", eslPort: eslPort, maxChannels: maxChannels,
        heartbeatInterval: heartbeat, answerDelay: answer, holdTime: hold, ringTime: ring, talkTime: talk)
    return try await FSNodeServer.start(config, logger: logger, onDie: {})
}

/// Collects events from a connection's stream in the background.
actor EventLog {
    private(set) var events: [ESLEventRecord] = []
    func append(_ e: ESLEventRecord) { events.append(e) }
    func names(for uuid: String) -> [String] { events.filter { $0.uuid == uuid }.map(\.name) }
    func first(_ name: String, uuid: String) -> ESLEventRecord? { events.first { $0.name == name && $0.uuid == uuid } }
}

struct ESLEventRecord: Sendable {
    var name: String
    var uuid: String?
    var headers: [String: String]
}
