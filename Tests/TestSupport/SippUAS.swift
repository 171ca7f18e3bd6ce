import Foundation

/// A running sipp UAS (a stand-in media node). Start one with `Sipp.startUAS`.
public final class SippUAS: Sendable {
    public let name: String
    public let port: Int
    public let process: ManagedProcess

    init(name: String, port: Int, process: ManagedProcess) {
        self.name = name
        self.port = port
        self.process = process
    }

    deinit {
        process.terminate()
    }

    /// Polls with OPTIONS until the UAS answers 200; false if it exits or stays silent.
    func waitUntilAnswering(timeout: Duration) async throws -> Bool {
        let client = try SIPUDPClient()
        return await Poll.until(timeout: timeout, interval: .milliseconds(20)) {
            guard process.isRunning else { return false }
            let options = SIPTestMessages.options(toPort: port, fromPort: client.localPort, tag: "uas-ready")
            guard let reply = try? client.request(Array(options.utf8), to: port, timeout: .milliseconds(200)) else { return false }
            return SIPTestMessages.statusCode(reply) == 200
        }
    }

    /// Stops smoothly (SIGUSR1: sipp finishes its calls and writes its final statistics), then
    /// SIGTERM/SIGKILL if it takes longer than `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        if process.isRunning {
            process.signal(SIGUSR1)
            await process.waitForExit(timeout: grace)
        }
        process.terminate()
    }

    /// Per-message counters (`1_INVITE_Recv`, `5_ACK_Timeout`, …) as last dumped (every second
    /// while running, and once at exit: call `stop()` first for final values).
    public var messageCounts: [String: Int] {
        SippCSV.file(in: process.directory, endingWith: "_counts.csv").flatMap(SippCSV.lastCounters) ?? [:]
    }

    /// How many `message`s (a method such as `ACK`, or a status code) the scenario received,
    /// over all its steps, retransmissions not counted.
    public func received(_ message: String) -> Int {
        messageCounts.filter { $0.key.hasSuffix("_\(message)_Recv") }.values.reduce(0, +)
    }

    /// INVITEs received, retransmissions not counted.
    public var invitesReceived: Int { received("INVITE") }

    /// The UAS's own call statistics (`SuccessfulCall(C)`, `FailedCall(C)`, …), as last dumped.
    public var statistics: [String: Int] {
        SippCSV.lastCounters(process.directory.appendingPathComponent("stat.csv")) ?? [:]
    }

    /// Screen, error log and output tails, for failure messages.
    public var diagnostics: String {
        Sipp.diagnostics(of: process, in: process.directory)
    }
}
