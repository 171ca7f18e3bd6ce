import NIOCore
import Testing

@testable import SIPCore

@Suite struct SIPMessageParserTests {
    @Test(arguments: FixtureCorpus.files("valid") + FixtureCorpus.files("odd"))
    func validAndOddMessagesParseWithTheirFields(_ path: String) throws {
        let expected = try #require(FixtureCorpus.expectations[path], "no expectation for \(path)")
        let msg = try SIPMessageParser.parseOrThrow(FixtureCorpus.bytes(path))
        #expect(msg.isRequest == (expected.kind == "request"))
        #expect(msg.method.description == expected.method)
        if let status = expected.status { #expect(msg.statusCode == status) }
        #expect(msg.callID == expected.call_id)
        #expect(msg.vias.count == expected.via_count)
        #expect(msg.routes.count == expected.route_count)
        #expect(msg.maxForwards == expected.max_forwards)
    }

    @Test(arguments: FixtureCorpus.files("malformed"))
    func malformedMessagesAreAnsweredOrDroppedAsExpected(_ path: String) throws {
        let expect = try #require(FixtureCorpus.expectations[path]?.expect)
        switch SIPMessageParser.parse(FixtureCorpus.bytes(path)) {
        case .message(let msg):
            // Syntactically fine, rejected by the proxy's §16.3 checks (416 Unsupported URI Scheme).
            #expect(expect == "416", "\(path) parsed, expected \(expect)")
            #expect(msg.requestURI?.isSIP == false)
        case .rejected(let error, let response):
            if expect == "drop" {
                #expect(response == nil, "\(path): expected drop, got a response for \(error)")
            } else {
                let r = try #require(response, "\(path): expected \(expect), dropped (\(error))")
                let text = String(buffer: r)
                #expect(text.hasPrefix("SIP/2.0 \(expect) "), "\(path): \(text.prefix(40))")
                // The answer copies the request's lines (even bad ones, byte for byte) and adds a To tag.
                let lines = text.components(separatedBy: "\r\n")
                #expect(lines.contains { $0.lowercased().hasPrefix("call-id:") || $0.hasPrefix("i:") })
                #expect(lines.contains { ($0.lowercased().hasPrefix("to:") || $0.hasPrefix("t:")) && $0.contains("tag=") })
                #expect(text.hasSuffix("Content-Length: 0\r\n\r\n"))
            }
        }
    }

    @Test func parseExtractsViaParametersAndRPort() throws {
        let raw =
            "INVITE sip:+12125551212@127.0.0.1 SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK77;rport, SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK78;received=192.0.2.1;rport=6000\r\n"
            + "From: <sip:a@x>;tag=f1\r\nTo: <sip:b@y>\r\nCall-ID: c1@x\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: raw))
        #expect(msg.vias.count == 2)
        #expect(msg.topVia == Via(transport: "UDP", host: "10.0.0.1", port: 5070, branch: "z9hG4bK77", rport: .requested))
        #expect(msg.vias[1].responseTarget == ("192.0.2.1", 6000))
        #expect(msg.topViaFieldHasMore)
        #expect(msg.text(msg.topViaRange) == "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK77;rport")
        #expect(msg.topViaEmptyRPortEnd == msg.topViaRange.upperBound)
        #expect(msg.cseq == CSeq(number: 7, method: .invite))
        #expect(msg.fromTag == "f1")
        #expect(msg.toTag == nil)
        #expect(msg.requestURIText == "sip:+12125551212@127.0.0.1")
        #expect(msg.requestURI?.user == "+12125551212")
    }

    @Test func datagramBodyIsCutToContentLength() throws {
        let raw =
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n"
            + "To: <sip:b@y>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbodyEXTRA"
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: raw))
        #expect(msg.bodyLength == 4)
        #expect(String(buffer: msg.bytes).hasSuffix("\r\n\r\nbody"))
    }

    @Test func limitsAreCheckedBeforeLibosip() {
        let vias = String(repeating: "Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n", count: 200)
        let raw = "OPTIONS sip:127.0.0.1 SIP/2.0\r\n" + vias + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
        guard case .rejected(let error, let response) = SIPMessageParser.parse(ByteBuffer(string: raw)) else {
            Issue.record("200 Via headers were accepted")
            return
        }
        #expect(error.code == .tooManyHeaders)
        #expect(response.map { String(buffer: $0).hasPrefix("SIP/2.0 513 ") } == true)
    }

    @Test func aResponseIsNeverAnsweredAndAnAckNeither() {
        for raw in [
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nCSeq: abc INVITE\r\n\r\n",
            "ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: x\r\nCSeq: x ACK\r\n\r\n",
        ] {
            guard case .rejected(_, let response) = SIPMessageParser.parse(ByteBuffer(string: raw)) else {
                Issue.record("accepted: \(raw.prefix(20))")
                continue
            }
            #expect(response == nil)
        }
    }

    @Test func randomBytesNeverCrashTheParser() {
        var rng = SplitMix64(seed: 42)
        let base = Array(String(buffer: FixtureCorpus.bytes("valid/invite-sdp.sip")).utf8)
        for i in 0..<2_000 {
            var bytes = base
            // Mutate a few bytes, or truncate, or fully random.
            switch i % 3 {
            case 0:
                for _ in 0..<8 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 1:
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            default:
                bytes = (0..<Int(rng.next() % 600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            _ = SIPMessageParser.parse(ByteBuffer(bytes: bytes))
        }
    }
}

/// A deterministic generator for fuzz-style tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
