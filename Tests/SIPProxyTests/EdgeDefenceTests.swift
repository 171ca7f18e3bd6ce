import Dispatcher
import Foundation
import Logging
import NIOPosix
import NIOCore
import Testing
import TestSupport

@testable import SIPProxy

/// What the proxy core does with hostile or unusual input, on fake time with a recording
/// transport: stray and forged responses, duplicated headers, control bytes, out-of-dialog
/// methods other than INVITE, and the RFC 4475 torture messages.
@Suite struct EdgeDefenceTests {
    // MARK: Responses that match no transaction (issue 11 §2)

    static func forged200(topVia: String, secondVia: String = "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1") -> String {
        "SIP/2.0 200 OK\r\nVia: \(topVia)\r\nVia: \(secondVia)\r\n"
            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>;tag=forged\r\n"
            + "Call-ID: call-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    }

    @Test(arguments: [
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsy0000000000000.000000000001",  // our Via, a branch we never sent
        "SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKother",  // not our Via
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsyp1",  // a probe branch with no probe pending
    ])
    func responseMatchingNoTransactionIsDroppedNotRelayed(topVia: String) throws {
        let h = try ProxyHarness()
        h.receive(Self.forged200(topVia: topVia), from: h.node1)
        h.receive(Self.forged200(topVia: topVia, secondVia: "SIP/2.0/UDP 255.255.255.255:5060;branch=z9hG4bKx"), from: h.node1)
        #expect(h.transport.take().isEmpty)
    }

    @Test func forgedResponseWithTheRealBranchFromAnotherAddressDoesNotBreakTheCall() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 180, "Ringing"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 180 Ringing"])
        // The attacker learnt the branch; it answers from elsewhere, first a 486, then a 200.
        let attacker = SIPEndpoint(transport: .udp, address: try SocketAddress(ipAddress: "127.0.0.9", port: 5071))
        h.receive(ProxyHarness.response(to: fwd, 486, "Busy Here"), from: attacker)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK", toTag: "forged"), from: attacker)
        #expect(h.transport.take().isEmpty, "nothing from the attacker reaches the caller or the node")
        // The real node still completes the call, and its 2xx retransmission still goes up.
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        let up = h.transport.take()
        #expect(up.map(\.firstLine) == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"])
        #expect(up.allSatisfy { $0.to == h.caller && $0.text.header("To")?.hasSuffix("tag=node1") == true })
    }

    @Test func twoXXRetransmissionIsRelayedWhileTheClientTransactionIsAcceptedAndDroppedAfterTimerM() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        h.advance(.seconds(20))
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"], "within 64·T1 the 2xx retransmission goes up")
        h.advance(.seconds(13))
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().isEmpty, "after Timer M nothing matches: dropped, not relayed statelessly")
    }

    // MARK: Duplicated single-value headers and control bytes (issue 11 §3)

    @Test(arguments: [
        ("To: <sip:+12125551212@127.0.0.1:5060>\r\n", "To"),
        ("t: <sip:other@127.0.0.1>\r\n", "To"),
        ("From: <sip:x@127.0.0.1>;tag=2\r\n", "From"),
        ("Call-ID: second\r\n", "Call-ID"),
        ("i: second\r\n", "Call-ID"),
        ("CSeq: 2 INVITE\r\n", "CSeq"),
        ("Max-Forwards: 10\r\n", "Max-Forwards"),
        ("Content-Type: text/plain\r\n", "Content-Type"),
        ("c: text/plain\r\n", "Content-Type"),
        ("Content-Length: 4\r\n", "Content-Length"),
    ])
    func duplicatedSingleValueHeaderIsAnswered400NamingIt(extra: String, name: String) throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite(extra: extra))
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["SIP/2.0 400 Duplicate \(name) Header"])
        #expect(sent.first?.to == h.caller)
    }

    /// An INVITE whose `extra` header line has `byte` where `marker` stands, as the core's answers.
    static func answers(toInviteWith extra: String, byte: UInt8, marker: Character = "\u{FFFF}") throws -> [String] {
        let h = try ProxyHarness()
        var bytes = Array(ProxyHarness.invite(extra: extra).utf8)
        let encoded = Array(String(marker).utf8)
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: encoded) })
        bytes.replaceSubrange(at..<(at + encoded.count), with: [byte])
        h.core.handle(.message(ByteBuffer(bytes: bytes), from: h.caller), now: h.now)
        return h.transport.take().map(\.firstLine)
    }

    @Test(arguments: [UInt8(0x00), 0x01, 0x07, 0x0B, 0x1B, 0x1F, 0x7F])
    func controlByteInHeaderNameIsAnswered400(byte: UInt8) throws {
        #expect(try Self.answers(toInviteWith: "X-Bad\u{FFFF}Name: 1\r\n", byte: byte) == ["SIP/2.0 400 Invalid Header Name 'X-Bad?Name'"])
    }

    @Test(arguments: [UInt8(0x01), 0x08, 0x0B, 0x0C, 0x1B, 0x7F, 0x00])
    func controlByteInHeaderValueOutsideAQuotedPairIsAnswered400(byte: UInt8) throws {
        let lines = try Self.answers(toInviteWith: "Subject: a\u{FFFF}b\r\n", byte: byte)
        #expect(lines.count == 1 && lines[0].hasPrefix("SIP/2.0 400 ") && lines[0].hasSuffix(" In Subject Header"), "\(lines)")
    }

    @Test(arguments: [UInt8(0x00), 0x07, 0x7F])
    func controlByteEscapedInAQuotedStringIsAccepted(byte: UInt8) throws {
        // RFC 3261 §25.1 quoted-pair; RFC 4475 §3.1.1.2 escapes NUL, BEL and DEL like this.
        let lines = try Self.answers(toInviteWith: "X-Name: \"a\\\u{FFFF}b\"\r\n", byte: byte)
        #expect(lines == ["SIP/2.0 100 Trying", "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
    }

    // MARK: Out-of-dialog methods other than INVITE (issue 11 §5)

    static func message(method: String = "MESSAGE", branch: String = "z9hG4bKm1") -> String {
        "\(method) sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)\r\n"
            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>\r\n"
            + "Call-ID: msg-1\r\nCSeq: 1 \(method)\r\nMax-Forwards: 70\r\n"
            + "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    }

    @Test(arguments: ["MESSAGE", "REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "INFO"])
    func outOfDialogMethodIsDispatchedToANodeAndItsAnswerRelayed(method: String) throws {
        let h = try ProxyHarness()
        h.receive(Self.message(method: method))
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["\(method) sip:+12125551212@127.0.0.1:5060 SIP/2.0"], "no 100 Trying for a non-INVITE (RFC 4320)")
        #expect(sent.first?.to == h.node1)
        #expect(sent.first?.text.header("Max-Forwards") == "69")
        #expect((sent.first?.text.header("Record-Route") != nil) == ["SUBSCRIBE", "NOTIFY", "REFER"].contains(method))
        h.receive(ProxyHarness.response(to: sent[0].text, 202, "Accepted"), from: h.node1)
        let up = h.transport.take()
        #expect(up.map(\.firstLine) == ["SIP/2.0 202 Accepted"])
        #expect(up.first?.to == h.caller)
        #expect(h.core.dispatcher.channels("n1") == 0, "a non-INVITE is not a call on the node")
    }

    @Test func outOfDialogMessageFailsOverWhenTheNodeIsSilentOrRefuses() throws {
        let h = try ProxyHarness()
        h.receive(Self.message())
        #expect(h.transport.take().map(\.to) == [h.node1])
        h.advance(.milliseconds(2_050))
        let next = h.transport.take().filter { $0.firstLine.hasPrefix("MESSAGE") && $0.to == h.node2 }
        try #require(next.count == 1, "no answer within invite_timeout: the next node gets it")
        h.receive(ProxyHarness.response(to: next[0].text, 503, "Unavailable"), from: h.node2)
        let up = h.transport.take().filter { $0.to == h.caller }
        #expect(up.map(\.firstLine) == ["SIP/2.0 503 Service Unavailable"], "no node left: our 503")
    }

    @Test func methodNotDispatchedGets405WithAllowNamingWhatIsTaken() throws {
        let yaml = ProxyHarness.yaml.replacingOccurrences(
            of: "  trusted: [ \"127.0.0.0/8\" ]\n", with: "  trusted: [ \"127.0.0.0/8\" ]\n  methods: [ MESSAGE ]\n")
        let h = try ProxyHarness(yaml: yaml)
        h.receive(Self.message(method: "REGISTER"))
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["SIP/2.0 405 Method Not Allowed"])
        #expect(sent.first?.text.header("Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE")
        h.receive(Self.message(method: "MESSAGE", branch: "z9hG4bKm2"))
        #expect(h.transport.take().map(\.to) == [h.node1])
    }

    // MARK: RFC 4475 torture messages (issue 11 §5)

    struct TortureExpectation: Decodable {
        var section: String?
        var expect: String
        var switchyard: String?
    }

    static let tortureFiles: [String] = (try? Fixtures.files(in: "sip/rfc4475", withExtension: "sip")) ?? []

    /// What the core did with one message: "forward" (sent on to a node or next hop), a status
    /// it answered (100 Trying aside), or "drop".
    static func outcome(of sent: [RecordingTransport.Sent], _ h: ProxyHarness) -> String {
        if sent.contains(where: { !$0.firstLine.hasPrefix("SIP/2.0") }) { return "forward" }
        let answers = sent.map(\.firstLine).filter { $0.hasPrefix("SIP/2.0 ") && !$0.hasPrefix("SIP/2.0 100 ") }
        if let first = answers.first { return String(first.dropFirst(8).prefix(3)) }
        return "drop"
    }

    @Test(arguments: tortureFiles)
    func rfc4475MessageGetsItsHandling(file: String) throws {
        #expect(Self.tortureFiles.count == 50, "the RFC 4475 archive has 50 messages")
        let expectations: [String: TortureExpectation] = try Fixtures.json("sip/rfc4475/expectations.json")
        let name = String(file.split(separator: "/").last!)
        let expectation = try #require(expectations[name], "\(name) is in expectations.json")
        let wanted = expectation.switchyard ?? expectation.expect
        for transport in [SIPEndpoint.Transport.udp, .tcp] {
            let h = try ProxyHarness()
            let source = SIPEndpoint(transport: transport, address: h.caller.address, connectionID: transport == .tcp ? 1 : nil)
            h.core.handle(.message(ByteBuffer(bytes: try Fixtures.bytes(file)), from: source), now: h.now)
            let got = Self.outcome(of: h.transport.take(), h)
            #expect(got == wanted, "\(name) (RFC 4475 §\(expectation.section ?? "-")) over \(transport): expected \(wanted), got \(got)")
        }
    }
}

@Suite struct DestinationCheckTests {
    @Test(arguments: [
        ("255.255.255.255", 5060, "broadcast"), ("0.0.0.0", 5060, "unspecified"), ("0.1.2.3", 5060, "unspecified"),
        ("224.0.0.1", 5060, "multicast"), ("239.255.255.250", 1900, "multicast"), ("240.0.0.1", 5060, "reserved"),
        ("127.0.0.1", 0, "port-zero"), ("::", 5060, "unspecified"), ("ff02::1", 5060, "multicast"),
        ("::ffff:255.255.255.255", 5060, "broadcast"),
    ])
    func forbiddenDestinationsAreRefused(host: String, port: Int, reason: String) throws {
        let address = try SocketAddress(ipAddress: host, port: port)
        #expect(DestinationCheck.refusal(for: address)?.rawValue == reason)
    }

    @Test(arguments: ["127.0.0.1", "192.0.2.10", "203.0.113.5", "::1", "2001:db8::1"])
    func ordinaryDestinationsPass(host: String) throws {
        #expect(DestinationCheck.refusal(for: try SocketAddress(ipAddress: host, port: 5060)) == nil)
    }
}

/// The transport layer on a real event loop: a listener that closes is bound again.
@Suite struct ListenerRebindTests {
    @Test func aClosedUDPListenerIsBoundAgainAndSendsResume() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let port = try FreePort.next()
        let regions = try RegionsConfigLoader.load(
            yaml: ProxyHarness.yaml.replacingOccurrences(of: "[ \"udp://127.0.0.1:5060\", \"tcp://127.0.0.1:5060\" ]", with: "[ \"udp://127.0.0.1:\(port)\" ]"))
        let listen = regions.proxy.listen
        let bound = try await loop.submit {
            NIOLoopBound(SIPTransportLayer(loop: loop, limits: .default, logger: Logger(label: "test")), eventLoop: loop)
        }.get()
        try await loop.flatSubmit { bound.value.bindAll(listen) }.get()
        #expect(try await loop.submit { bound.value.listenersDown.isEmpty }.get())
        // Something closes the socket under us.
        try await loop.flatSubmit { bound.value.listeners[listen[0]]!.close() }.get()
        let back = await Poll.until(timeout: .seconds(2), interval: .milliseconds(10)) {
            (try? await loop.submit { bound.value.listenersDown.isEmpty }.get()) ?? false
        }
        #expect(back, "the listener is bound again")
        // And datagrams leave from the new socket.
        let peer = try SIPUDPClient()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: peer.localPort)
        try await loop.submit {
            bound.value.send(ByteBuffer(string: "ping"), to: SIPEndpoint(transport: .udp, address: target), failureToken: nil)
            bound.value.flush()
        }.get()
        #expect(peer.receive(timeout: .seconds(1)).map { String(decoding: $0, as: UTF8.self) } == "ping")
        try await loop.flatSubmit { bound.value.closeAll() }.get()
    }
}
