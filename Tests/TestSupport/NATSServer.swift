public import Foundation
import Synchronization

/// A throwaway `nats-server -js` on a free loopback port with its JetStream store in a
/// temporary folder. `restart()` brings it back on the same port and store (for outage tests).
public final class NATSServer: Sendable {
    public let port: Int
    public let storeDirectory: URL
    private let directory: TemporaryDirectory
    private let current = Mutex<ManagedProcess?>(nil)

    public var url: String { "nats://127.0.0.1:\(port)" }

    private init(port: Int, storeDirectory: URL, directory: TemporaryDirectory) {
        self.port = port
        self.storeDirectory = storeDirectory
        self.directory = directory
    }

    deinit {
        current.withLock { $0?.terminate() }
    }

    public static func start(in directory: TemporaryDirectory) async throws -> NATSServer {
        var lastFailure = ""
        for _ in 0..<3 {
            let server = NATSServer(port: try FreePort.next(), storeDirectory: try directory.subdirectory("nats-store"), directory: directory)
            do {
                try await server.launch()
                return server
            } catch {
                lastFailure = "\(error)"
            }
        }
        throw TestSupportError(lastFailure)
    }

    private func launch() async throws {
        let process = try ManagedProcess(
            name: "nats-server", executable: "nats-server",
            arguments: ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDirectory.path, "--http_port", "0"],
            directory: directory.url, maxLifetime: .seconds(1800))
        current.withLock { $0 = process }
        let port = self.port
        let ready = await Poll.until(timeout: .seconds(10), interval: .milliseconds(50)) {
            guard process.isRunning else { return false }
            guard let c = try? SIPTCPClient(connectingTo: port) else { return false }
            return String(decoding: c.read(timeout: .milliseconds(500)) { $0.contains(10) }, as: UTF8.self).hasPrefix("INFO")
        }
        guard ready else {
            process.terminate()
            throw TestSupportError("nats-server on 127.0.0.1:\(port) never answered: \(process.outputTail())")
        }
    }

    /// Stops the server (SIGTERM), keeping its store.
    public func stop() {
        let p = current.withLock { p -> ManagedProcess? in
            defer { p = nil }
            return p
        }
        p?.terminate(grace: .seconds(5))
    }

    /// Starts it again on the same port and store.
    public func restart() async throws {
        stop()
        try await launch()
    }
}
