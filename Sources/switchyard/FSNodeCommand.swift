import ArgumentParser
import FSEmulator
import Foundation
import Logging
import NIOPosix
import UnixSignals

/// `switchyard fsnode`: one emulated FreeSWITCH node (ESL server + SIP UAS) for tests, the local
/// stack and failover drills.
struct FSNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsnode",
        abstract: "Run one emulated FreeSWITCH node: real ESL (mod_event_socket) and a SIP UAS.",
        discussion: """
            Originated calls follow the outcome model by the last four digits of the number:
            0486 busy, 0408 no answer, 0503 failed, 0603 rejected, 0404 unallocated, anything else answers.
            Faults at run time: `api fsnode fault stall|slow <ms>|refuse|drop-esl|die|clear` over ESL.
            """
    )

    @Option(help: "Node name (FreeSWITCH-Hostname in events).")
    var name: String = "fsnode"

    @Option(help: "SIP UDP address, host:port.")
    var sip: String = "127.0.0.1:5080"

    @Option(help: "ESL address, host:port.")
    var esl: String = "127.0.0.1:8021"

    @Option(help: "ESL password (default ClueCon, or $FSNODE_ESL_PASSWORD).")
    var password: String?

    @Option(help: "Maximum channels: more INVITEs get 503, more originates -ERR.")
    var maxChannels: Int = 1000

    @Option(help: "HEARTBEAT period in seconds.")
    var heartbeat: Double = 20

    @Option(help: "Inbound calls: milliseconds from INVITE to 200 OK (header X-Answer-Ms overrides).")
    var answerMs: Int = 0

    @Option(help: "Inbound calls: milliseconds to hold an answered call before sending BYE; 0 waits for the caller's BYE (header X-Hold-Ms overrides).")
    var holdMs: Int = 0

    @Option(help: "Originated calls: ring time in milliseconds (variable fsnode_ring_ms overrides).")
    var ringMs: Int = 200

    @Option(help: "Originated calls that answer: talk time in milliseconds (variable fsnode_talk_ms overrides).")
    var talkMs: Int = 3000

    @Option(help: "Start with a fault: stall, refuse, slow:<ms>. Repeatable.")
    var fault: [String] = []

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        guard let (sipHost, sipPort) = splitHostPort(sip) else { throw ValidationError("--sip \(sip): not host:port") }
        guard let (eslHost, eslPort) = splitHostPort(esl) else { throw ValidationError("--esl \(esl): not host:port") }
        var faults = FSFaults()
        for f in fault {
            switch f.lowercased() {
            case "stall": faults.stall = true
            case "refuse": faults.refuse = true
            case let s where s.hasPrefix("slow:"):
                guard let ms = Int(s.dropFirst(5)), ms > 0 else { throw ValidationError("--fault \(f): slow:<milliseconds>") }
                faults.slow = .milliseconds(ms)
            default: throw ValidationError("--fault \(f): one of stall, refuse, slow:<ms>")
            }
        }
        guard maxChannels > 0 else { throw ValidationError("--max-channels must be positive") }
        guard heartbeat > 0 else { throw ValidationError("--heartbeat must be positive") }
        let level = logLevel
        bootstrapLogging(level)
        let config = FSNodeConfiguration(
            name: name, sipHost: sipHost, sipPort: sipPort, eslHost: eslHost, eslPort: eslPort,
            eslPassword: password ?? ProcessInfo.processInfo.environment["FSNODE_ESL_PASSWORD"] ?? "ClueCon",
            maxChannels: maxChannels, heartbeatInterval: .milliseconds(Int64(heartbeat * 1000)),
            answerDelay: .milliseconds(answerMs), holdTime: holdMs > 0 ? .milliseconds(holdMs) : nil,
            ringTime: .milliseconds(ringMs), talkTime: .milliseconds(talkMs), faults: faults)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await FSNodeServer.start(config, group: group, logger: Logger(label: "switchyard.fsnode")) {
            Foundation.exit(137)
        }
        // Until SIGTERM/SIGINT.
        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { break }
        await server.stop()
        try await group.shutdownGracefully()
    }
}

func splitHostPort(_ text: String) -> (String, Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
    let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    return host.isEmpty ? nil : (host, port)
}
