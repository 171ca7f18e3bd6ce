import Dispatcher
import NIOCore
import Testing

@testable import SIPProxy

/// The edge toward the internet (issue 16): flood control, the scanner filter, unknown
/// sources, per-trunk limits and the Server / User-Agent name, on fake time.
@Suite struct EdgeGateTests {
    /// The caller (127.0.0.1:5999) is a trunk; 127.0.0.9 is nobody; the nodes are 127.0.0.1:5071/2.
    static func yaml(edge: String = "", trunk: String = "") -> String {
        """
        proxy:
          listen: [ "udp://127.0.0.1:5060" ]
          trusted: []
        dispatch:
          failover: { invite_timeout: 2s, retry_on: [503], max_attempts: 2, hold_down: 5s }
        regions:
          test:
            nodes:
              - { name: n1, sip: "127.0.0.1:5071" }
              - { name: n2, sip: "127.0.0.1:5072" }
        trunks:
          - { name: carrier, sources: [ "127.0.0.1:5999" ]\(trunk) }
        edge:
          flood: { requests: 5, window: 1s, ban: 10s }
        \(edge)
        """
    }

    static let stranger = SIPEndpoint(transport: .udp, address: try! SocketAddress(ipAddress: "127.0.0.9", port: 5080))

    static func options(branch: String, userAgent: String? = nil, toTag: String? = nil) -> String {
        "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5080;branch=\(branch)\r\n"
            + "From: <sip:scan@127.0.0.9>;tag=s1\r\nTo: <sip:127.0.0.1:5060>\(toTag.map { ";tag=\($0)" } ?? "")\r\n"
            + "Call-ID: \(branch)\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            + (userAgent.map { "User-Agent: \($0)\r\n" } ?? "") + "Content-Length: 0\r\n\r\n"
    }

    static func bye(callID: String, branch: String) -> String {
        "BYE sip:node@127.0.0.1:5071 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)\r\n"
            + "Route: <sip:127.0.0.1:5060;lr>\r\n"
            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>;tag=node1\r\n"
            + "Call-ID: \(callID)\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    }

    @Test func aFloodingSourceIsBannedWhileTrunksAndNodesGoOn() throws {
        let h = try ProxyHarness(yaml: Self.yaml())
        for i in 1...5 {
            h.receive(Self.options(branch: "z9hG4bKf\(i)"), from: Self.stranger)
            #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 403 Forbidden"], "request \(i) within the limit is answered")
        }
        for i in 6...40 { h.receive(Self.options(branch: "z9hG4bKf\(i)"), from: Self.stranger) }
        #expect(h.transport.take().isEmpty, "over the limit: banned, nothing answered")
        let status = h.core.edgeStatus(now: h.now)
        #expect(status.banned.map(\.address) == ["127.0.0.9"])
        #expect(status.banned.first?.dropped == 35)
        #expect(h.core.isBanned(Self.stranger), "its new TCP connections are refused too")
        #expect(!h.core.isBanned(h.caller))
        // The trunk's call and the node's answers pass while the stranger is banned.
        h.receive(ProxyHarness.invite())
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["SIP/2.0 100 Trying", "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
        for _ in 1...20 { h.receive(ProxyHarness.response(to: sent[1].text, 180, "Ringing"), from: h.node1) }
        #expect(h.transport.take().count == 20, "a node is never banned")
        // A source that keeps flooding stays banned; one that stops is let in after the ban.
        h.advance(.seconds(8))
        for i in 41...50 { h.receive(Self.options(branch: "z9hG4bKf\(i)"), from: Self.stranger) }
        h.advance(.seconds(5))
        h.receive(Self.options(branch: "z9hG4bKf51"), from: Self.stranger)
        #expect(h.transport.take().isEmpty, "the ban ran on from the last flood")
        h.advance(.seconds(11))
        h.receive(Self.options(branch: "z9hG4bKf52"), from: Self.stranger)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 403 Forbidden"])
        #expect(h.core.edgeStatus(now: h.now).banned.isEmpty)
    }

    @Test func anOperatorCanLiftABan() throws {
        let h = try ProxyHarness(yaml: Self.yaml())
        for i in 1...10 { h.receive(Self.options(branch: "z9hG4bKu\(i)"), from: Self.stranger) }
        _ = h.transport.take()
        #expect(h.core.unban("127.0.0.9"))
        #expect(!h.core.unban("127.0.0.9"))
        h.receive(Self.options(branch: "z9hG4bKu11"), from: Self.stranger)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 403 Forbidden"])
    }

    @Test func unknownSourcesCanBeDroppedSilently() throws {
        let h = try ProxyHarness(yaml: Self.yaml(edge: "  unknown_source: drop"))
        h.receive(Self.options(branch: "z9hG4bKd1"), from: Self.stranger)
        h.receive(ProxyHarness.invite().replacingOccurrences(of: "127.0.0.1:5999", with: "127.0.0.9:5080"), from: Self.stranger)
        #expect(h.transport.take().isEmpty)
        // The trunk, and a node's own requests, are not unknown.
        h.receive(Self.options(branch: "z9hG4bKd2"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        h.receive(Self.options(branch: "z9hG4bKd3"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
    }

    @Test(arguments: ["friendly-scanner", "sipvicious 0.3.4", "SIPCLI/v1.8", "Custom-Probe x"])
    func scannersAreDroppedOutOfDialogOnly(userAgent: String) throws {
        let h = try ProxyHarness(yaml: Self.yaml(edge: "  scanners: { user_agents: [ friendly-scanner, sipvicious, sipcli, custom-probe ] }"))
        h.receive(Self.options(branch: "z9hG4bKs1", userAgent: userAgent))
        h.receive(Self.options(branch: "z9hG4bKs2", userAgent: userAgent), from: Self.stranger)
        h.receive(ProxyHarness.invite(extra: "User-Agent: \(userAgent)\r\n"))
        #expect(h.transport.take().isEmpty, "out of dialog: no answer at all, from a trunk or not")
        // In dialog the same agent is routed as before.
        h.receive(Self.bye(callID: "call-9", branch: "z9hG4bKs3").replacingOccurrences(of: "Max-Forwards", with: "User-Agent: \(userAgent)\r\nMax-Forwards"))
        #expect(h.transport.take().map(\.firstLine) == ["BYE sip:node@127.0.0.1:5071 SIP/2.0"])
        // An ordinary agent is not a scanner.
        h.receive(Self.options(branch: "z9hG4bKs4", userAgent: "Ribbon SBC 9.2"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
    }

    @Test func theScannerFilterCanBeTurnedOff() throws {
        let h = try ProxyHarness(yaml: Self.yaml(edge: "  scanners: { drop: false }"))
        h.receive(Self.options(branch: "z9hG4bKo1", userAgent: "friendly-scanner"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
    }

    @Test func aTrunkOverItsCallsPerSecondGets503RetryAfter() throws {
        let h = try ProxyHarness(yaml: Self.yaml(trunk: ", calls_per_second: 2"))
        var lines: [String] = []
        for i in 1...3 {
            h.receive(ProxyHarness.invite(callID: "r\(i)", branch: "z9hG4bKr\(i)"))
            lines += h.transport.take().map(\.firstLine)
        }
        #expect(lines.filter { $0.hasPrefix("INVITE") }.count == 2)
        #expect(lines.last == "SIP/2.0 503 Service Unavailable")
        h.receive(ProxyHarness.invite(callID: "r4", branch: "z9hG4bKr4"))
        #expect(h.transport.take().first?.text.header("Retry-After") == "1")
        h.advance(.milliseconds(600))
        h.receive(ProxyHarness.invite(callID: "r5", branch: "z9hG4bKr5"))
        #expect(h.transport.take().map(\.firstLine).last == "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0", "the bucket refills")
        let trunk = h.core.edgeStatus(now: h.now).trunks.first
        #expect(trunk?.accepted == 3)
        #expect(trunk?.refusedRate == 2)
    }

    @Test func aTrunkOverItsConcurrentCallsGets503UntilACallEnds() throws {
        let h = try ProxyHarness(yaml: Self.yaml(trunk: ", max_concurrent: 1"))
        h.receive(ProxyHarness.invite(callID: "c1", branch: "z9hG4bKc1"))
        let first = h.transport.take()[1].text
        h.receive(ProxyHarness.invite(callID: "c2", branch: "z9hG4bKc2"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 503 Service Unavailable"])
        // A refused call ends its count.
        h.receive(ProxyHarness.response(to: first, 486, "Busy Here"), from: h.node1)
        _ = h.transport.take()
        h.receive(ProxyHarness.invite(callID: "c2", branch: "z9hG4bKc2b"))
        let second = h.transport.take()
        #expect(second.map(\.firstLine).last == "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0")
        // An answered call counts until its BYE.
        h.receive(ProxyHarness.response(to: second[1].text, 200, "OK"), from: h.node1)
        _ = h.transport.take()
        h.receive(ProxyHarness.invite(callID: "c3", branch: "z9hG4bKc3"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 503 Service Unavailable"])
        #expect(h.core.edgeStatus(now: h.now).trunks.first?.activeCalls == 1)
        h.receive(Self.bye(callID: "c2", branch: "z9hG4bKb2"))
        _ = h.transport.take()
        h.receive(ProxyHarness.invite(callID: "c3", branch: "z9hG4bKc3b"))
        #expect(h.transport.take().map(\.firstLine).last == "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0")
        let trunk = h.core.edgeStatus(now: h.now).trunks.first
        #expect(trunk?.activeCalls == 1)
        #expect(trunk?.refusedConcurrency == 2)
    }

    @Test func theServerNameIsConfigurableAndCanBeLeftOut() throws {
        let standard = try ProxyHarness(yaml: Self.yaml())
        standard.receive(ProxyHarness.invite())
        #expect(standard.transport.take().first?.text.header("Server") == "switchyard")

        let named = try ProxyHarness(yaml: Self.yaml(edge: "  server_header: \"edge-1\""))
        named.receive(ProxyHarness.invite())
        #expect(named.transport.take().first?.text.header("Server") == "edge-1")

        let silent = try ProxyHarness(yaml: Self.yaml(edge: "  server_header: \"\""), probing: true)
        silent.receive(ProxyHarness.invite())
        silent.receive(Self.options(branch: "z9hG4bKn1"), from: Self.stranger)
        silent.receive(
            "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbad\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: bad\r\nCSeq: x INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        silent.advance(.seconds(2))
        let all = silent.transport.take()
        #expect(all.contains { $0.firstLine.hasPrefix("SIP/2.0 400") }, "the malformed INVITE is answered")
        #expect(all.contains { $0.firstLine.hasPrefix("OPTIONS") }, "the nodes are probed")
        #expect(all.allSatisfy { $0.text.header("Server") == nil && $0.text.header("User-Agent") == nil })
    }

    @Test func edgeAndTrunkConfigurationIsValidated() {
        let bad = Self.yaml(edge: "  unknown_source: ignore", trunk: ", calls_per_second: 0")
            .replacingOccurrences(of: "\"127.0.0.1:5999\"", with: "\"127.0.0.1:99999\", \"10.0.0.0/33\"")
        do {
            _ = try RegionsConfigLoader.load(yaml: bad)
            Issue.record("loaded")
        } catch {
            let paths = Set(error.issues.map(\.path))
            #expect(paths == ["edge.unknown_source", "trunks[0].sources[0]", "trunks[0].sources[1]", "trunks[0].calls_per_second"])
        }
        let unknownKey = Self.yaml(edge: "  flood: { requests: 5, bursts: 2 }")
        #expect(throws: ConfigError.self) { _ = try RegionsConfigLoader.load(yaml: unknownKey) }
    }
}
