public import Foundation

/// A `switchyard proxy` process for a test: its own regions.yaml (one region whose nodes are
/// the given loopback ports, listening on a free UDP+TCP port, metrics off), started and
/// awaited until it answers OPTIONS over UDP, stopped at the end.
public final class SwitchyardProxy: Sendable {
    /// Failover settings written to `dispatch.failover`.
    public struct Failover: Sendable {
        public var inviteTimeout: String
        public var retryOn: [Int]
        public var maxAttempts: Int
        public var holdDown: String

        public init(inviteTimeout: String = "2s", retryOn: [Int] = [408, 500, 502, 503, 504], maxAttempts: Int = 2, holdDown: String = "5s") {
            self.inviteTimeout = inviteTimeout
            self.retryOn = retryOn
            self.maxAttempts = maxAttempts
            self.holdDown = holdDown
        }
    }

    /// One node of the test's regions.yaml.
    public struct TestNode: Sendable {
        public var name: String
        public var region: String
        public var sip: Int
        public var esl: Int?
        public var maxChannels: Int
        /// `transport:` of the node (udp when nil).
        public var transport: String?

        public init(name: String, region: String = "test", sip: Int, esl: Int? = nil, maxChannels: Int = 500, transport: String? = nil) {
            self.transport = transport
            self.name = name
            self.region = region
            self.sip = sip
            self.esl = esl
            self.maxChannels = maxChannels
        }
    }

    /// The UDP and TCP port it listens on (127.0.0.1).
    public let port: Int
    public let configURL: URL
    public let process: ManagedProcess

    private init(port: Int, configURL: URL, process: ManagedProcess) {
        self.port = port
        self.configURL = configURL
        self.process = process
    }

    deinit {
        process.terminate(grace: .seconds(8))
    }

    /// Writes the config and starts the proxy; returns once it answers OPTIONS with 200 over UDP.
    /// The process is bounded by `maxLifetime` even if the test process dies.
    public static func start(
        nodePorts: [Int],
        failover: Failover = Failover(),
        in directory: TemporaryDirectory,
        logLevel: String = "info",
        metricsPort: Int? = nil,
        maxLifetime: Duration = .seconds(120)
    ) async throws -> SwitchyardProxy {
        try await start(
            nodes: nodePorts.enumerated().map { TestNode(name: "node\($0 + 1)", sip: $1) }, failover: failover, in: directory, logLevel: logLevel,
            metricsPort: metricsPort, maxLifetime: maxLifetime)
    }

    /// Starts a proxy over `nodes` (regions in order of first appearance; the proxy serves
    /// `region`, default the first). `probe` is the `dispatch.probe` flow mapping, if any.
    public static func start(
        nodes: [TestNode],
        policy: String = "round-robin",
        probe: String? = nil,
        region: String? = nil,
        failover: Failover = Failover(),
        in directory: TemporaryDirectory,
        logLevel: String = "info",
        metricsPort: Int? = nil,
        eslPoll: String = "0.2",
        proxyYAML: String = "",
        extraListen: [String] = [],
        trusted: [String] = ["127.0.0.0/8"],
        readyStatuses: Set<Int> = [200],
        extraArguments: [String] = [],
        maxLifetime: Duration = .seconds(120)
    ) async throws -> SwitchyardProxy {
        let binary = try SwitchyardBinary.path()
        var lastFailure = ""
        for attempt in 0..<3 {
            let port = try FreePort.next()
            let configURL = directory.file(attempt == 0 ? "regions.yaml" : "regions-retry\(attempt).yaml")
            try configYAML(
                port: port, nodes: nodes, policy: policy, probe: probe, failover: failover, proxyYAML: proxyYAML, extraListen: extraListen,
                trusted: trusted
            )
            .write(to: configURL, atomically: true, encoding: .utf8)
            let process = try ManagedProcess(
                name: attempt == 0 ? "switchyard" : "switchyard-retry\(attempt)",
                executable: binary,
                arguments: [
                    "proxy", "--config", configURL.path, "--metrics", metricsPort.map { "127.0.0.1:\($0)" } ?? "off", "--log-level", logLevel,
                    "--esl-poll", eslPoll,
                ] + (region.map { ["--region", $0] } ?? []) + extraArguments,
                directory: directory.url,
                maxLifetime: maxLifetime
            )
            let proxy = SwitchyardProxy(port: port, configURL: configURL, process: process)
            let client = try SIPUDPClient()
            // A process that exited ends the wait at once (a bad config is not retried for 10 s).
            let answered = await Poll.until(timeout: .seconds(10), interval: .milliseconds(50)) {
                guard process.isRunning else { return true }
                guard let reply = try? proxy.options(over: client, timeout: .milliseconds(200)) else { return false }
                return SIPTestMessages.statusCode(reply).map(readyStatuses.contains) == true
            }
            let ready = answered && process.isRunning
            if ready { return proxy }
            let exitedAtStart = !process.isRunning
            process.terminate()
            lastFailure = "switchyard proxy on 127.0.0.1:\(port) never answered OPTIONS with 200 (config \(configURL.path))\n\(process.outputTail())"
            // Retry on another port only when it died at start (a port taken in the meantime).
            guard exitedAtStart else { break }
        }
        throw TestSupportError(lastFailure)
    }

    /// The regions.yaml the proxy runs with.
    /// `proxyYAML`: more lines for the `proxy:` section, each indented by two spaces (`  tcp: {...}`).
    public static func configYAML(
        port: Int, nodes: [TestNode], policy: String = "round-robin", probe: String? = nil, failover: Failover, proxyYAML: String = "",
        extraListen: [String] = [], trusted: [String] = ["127.0.0.0/8"]
    ) -> String {
        var regions: [String] = []
        for n in nodes where !regions.contains(n.region) { regions.append(n.region) }
        let regionText = regions.map { region in
            let lines = nodes.filter { $0.region == region }.map { n in
                "      - { name: \(n.name), sip: \"127.0.0.1:\(n.sip)\"\(n.esl.map { ", esl: \"127.0.0.1:\($0)\"" } ?? ""), max_channels: \(n.maxChannels)\(n.transport.map { ", transport: \($0)" } ?? "") }"
            }
            return "  \(region):\n    nodes:\n" + lines.joined(separator: "\n")
        }
        return """
            # Written by TestSupport.SwitchyardProxy for one integration test.
            proxy:
              listen: [ "udp://127.0.0.1:\(port)", "tcp://127.0.0.1:\(port)"\(extraListen.map { ", \"\($0)\"" }.joined()) ]
              trusted: [ \(trusted.map { "\"\($0)\"" }.joined(separator: ", ")) ]
            \(proxyYAML.isEmpty ? "" : proxyYAML + "\n")\
            dispatch:
              policy: \(policy)
            \(probe.map { "  probe: \($0)\n" } ?? "")\
              failover: { invite_timeout: \(failover.inviteTimeout), retry_on: [\(failover.retryOn.map(String.init).joined(separator: ", "))], \
            max_attempts: \(failover.maxAttempts), hold_down: \(failover.holdDown) }
            regions:
            \(regionText.joined(separator: "\n"))

            """
    }

    /// POST `path` (empty body) to the proxy's admin server: the status line and body.
    public static func httpPost(port: Int, path: String, timeout: Duration = .seconds(2)) throws -> (status: String, body: String) {
        let reply = try HTTPTestClient.request(port: port, "POST", path, timeout: timeout)
        return (reply.statusLine, reply.body)
    }

    public var isRunning: Bool { process.isRunning }

    /// GET `path` from the proxy's metrics server on 127.0.0.1:`port`: the status line and body.
    public static func httpGet(port: Int, path: String, timeout: Duration = .seconds(2)) throws -> (status: String, body: String) {
        let reply = try HTTPTestClient.request(port: port, "GET", path, timeout: timeout)
        return (reply.statusLine, reply.body)
    }

    /// Sends an OPTIONS to the proxy over UDP from `client` and returns the reply, if any.
    public func options(over client: SIPUDPClient, timeout: Duration = .seconds(1)) throws -> [UInt8]? {
        let request = SIPTestMessages.options(toPort: port, fromPort: client.localPort)
        return try client.request(Array(request.utf8), to: port, timeout: timeout)
    }

    /// Sends an OPTIONS to the proxy on a new TCP connection and returns what came back.
    public func optionsOverTCP(timeout: Duration = .seconds(1)) throws -> [UInt8] {
        let connection = try SIPTCPClient(connectingTo: port)
        connection.write(SIPTestMessages.options(toPort: port, fromPort: connection.localPort, transport: "TCP"))
        return connection.readSIPMessage(timeout: timeout)
    }

    /// Stops the proxy (SIGTERM; it drains for up to 5 s) and returns how it ended.
    @discardableResult
    public func stop() -> ManagedProcess.Termination? {
        process.terminate(grace: .seconds(8))
    }

    /// Its log (stderr), for failure messages.
    public func logTail(lines: Int = 40) -> String {
        process.outputTail(lines: lines)
    }
}
