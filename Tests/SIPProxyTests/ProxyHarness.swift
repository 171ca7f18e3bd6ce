import Dispatcher
import Logging
import NIOCore
import SIPCore

@testable import SIPProxy

/// Records what the core sends, so tests assert every message without sockets.
final class RecordingTransport: SIPTransportSender {
    struct Sent {
        let text: String
        let to: SIPEndpoint
        var firstLine: String { text.components(separatedBy: "\r\n")[0] }
    }

    var sent: [Sent] = []

    func send(_ bytes: ByteBuffer, to destination: SIPEndpoint, failureToken: ClientTransactionKey?) {
        sent.append(Sent(text: String(buffer: bytes), to: destination))
    }

    func flush() {}

    /// Returns and forgets what was sent so far.
    func take() -> [Sent] {
        defer { sent = [] }
        return sent
    }
}

/// A proxy core on fake time with two nodes (5071, 5072) and a caller at 127.0.0.1:5999.
final class ProxyHarness {
    let transport = RecordingTransport()
    let core: ProxyCore
    var now: ContinuousClock.Instant
    let caller = SIPEndpoint(transport: .udp, address: try! SocketAddress(ipAddress: "127.0.0.1", port: 5999))
    let node1 = SIPEndpoint(transport: .udp, address: try! SocketAddress(ipAddress: "127.0.0.1", port: 5071))
    let node2 = SIPEndpoint(transport: .udp, address: try! SocketAddress(ipAddress: "127.0.0.1", port: 5072))

    static let yaml = """
        proxy:
          listen: [ "udp://127.0.0.1:5060", "tcp://127.0.0.1:5060" ]
          trusted: [ "127.0.0.0/8" ]
        dispatch:
          failover: { invite_timeout: 2s, retry_on: [408, 500, 502, 503, 504], max_attempts: 3, hold_down: 5s }
        regions:
          test:
            nodes:
              - { name: n1, sip: "127.0.0.1:5071" }
              - { name: n2, sip: "127.0.0.1:5072" }
        """

    /// `probing` turns the OPTIONS prober on (off by default, so tests see only call traffic).
    init(yaml: String = ProxyHarness.yaml, probing: Bool = false, timerC: Duration = .seconds(181)) throws {
        let regions = try RegionsConfigLoader.load(yaml: yaml)
        now = ContinuousClock.now
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = ProxyConfiguration(regions: regions, timerC: timerC)
        configuration.probeEnabled = probing
        core = ProxyCore(
            configuration: configuration, dispatcher: NodeDispatcher(config: regions, localRegion: "test"),
            transport: transport, logger: logger, now: now
        )
    }

    func receive(_ text: String, from source: SIPEndpoint? = nil) {
        core.handle(.message(ByteBuffer(string: text), from: source ?? caller), now: now)
    }

    func advance(_ d: Duration) {
        // Step through the wheel so timers fire in order, as the 10 ms tick does.
        let end = now + d
        while now < end {
            now = min(end, now + .milliseconds(10))
            core.handle(.tick, now: now)
        }
    }

    static func invite(callID: String = "call-1", branch: String = "z9hG4bKc1", maxForwards: Int? = 70, extra: String = "") -> String {
        "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)\r\n"
            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\n"
            + "To: <sip:+12125551212@127.0.0.1:5060>\r\n"
            + "Call-ID: \(callID)\r\nCSeq: 1 INVITE\r\n"
            + (maxForwards.map { "Max-Forwards: \($0)\r\n" } ?? "")
            + "Contact: <sip:caller@127.0.0.1:5999>\r\n" + extra
            + "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    }

    /// The caller's BYE for call-1, answered by node 1, along our Record-Route.
    static let bye =
        "BYE sip:node@127.0.0.1:5071 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKb1\r\n"
        + "Route: <sip:127.0.0.1:5060;lr>\r\n"
        + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>;tag=node1\r\n"
        + "Call-ID: call-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"

    /// A response as a UAS writes it for `request`: its Via, Record-Route, From, To (+tag),
    /// Call-ID and CSeq lines copied.
    static func response(to request: String, _ status: Int, _ reason: String, toTag: String? = "node1") -> String {
        var lines = ["SIP/2.0 \(status) \(reason)"]
        for line in request.components(separatedBy: "\r\n") {
            let lower = line.lowercased()
            if lower.hasPrefix("via:") || lower.hasPrefix("record-route:") || lower.hasPrefix("from:") || lower.hasPrefix("call-id:")
                || lower.hasPrefix("cseq:")
            {
                lines.append(line)
            } else if lower.hasPrefix("to:") {
                lines.append(toTag.map { line.contains("tag=") ? line : line + ";tag=\($0)" } ?? line)
            }
        }
        lines.append("Contact: <sip:node@127.0.0.1:5071>")
        lines.append("Content-Length: 0")
        return lines.joined(separator: "\r\n") + "\r\n\r\n"
    }
}

extension String {
    /// The value of the first header `name` (case-insensitive), if any.
    func header(_ name: String) -> String? {
        for line in components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].trimmingCharacters(in: .whitespaces).lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    func headers(_ name: String) -> [String] {
        components(separatedBy: "\r\n").compactMap { line in
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { return nil }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
}
