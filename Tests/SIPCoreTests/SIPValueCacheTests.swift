import NIOCore
import Testing

@testable import SIPCore

@Suite struct SIPValueCacheTests {
    static let corpus = FixtureCorpus.files("valid") + FixtureCorpus.files("odd") + FixtureCorpus.files("malformed") + FixtureCorpus.files("rfc4475")

    static func summary(_ path: String, _ cache: SIPValueCache?) -> String {
        summary(SIPMessageParser.parse(FixtureCorpus.bytes(path), cache: cache))
    }

    static func summary(_ outcome: ParseOutcome) -> String {
        switch outcome {
        case .message(let m):
            "\(m.startLine) \(m.topVia) \(m.routes.map(\.uri)) \(m.fromTag ?? "-") \(m.toTag ?? "-")"
        case .rejected(let error, let response):
            "\(error) \(response.map { String(buffer: $0) } ?? "-")"
        }
    }

    @Test func aCachedValueParsesExactlyAsAFreshOne() {
        let cache = SIPValueCache(slots: 64)
        let fresh = Self.corpus.map { Self.summary($0, nil) }
        // Twice through the cache: the second round is answered from it where it can be.
        let first = Self.corpus.map { Self.summary($0, cache) }
        let second = Self.corpus.map { Self.summary($0, cache) }
        #expect(first == fresh)
        #expect(second == fresh)
        #expect(cache.hits > 0)
    }

    @Test func aDialogsFromAndTheRouteToUsAreParsedOnce() throws {
        let cache = SIPValueCache()
        func request(_ method: String, _ cseq: Int, toTag: String?) -> ByteBuffer {
            ByteBuffer(
                string: "\(method) sip:127.0.0.1:5071 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK\(cseq)\r\n"
                    + "Route: <sip:127.0.0.1:5060;lr>\r\nFrom: <sip:a@127.0.0.1>;tag=f1\r\nTo: <sip:b@127.0.0.1>\(toTag.map { ";tag=\($0)" } ?? "")\r\n"
                    + "Call-ID: c1\r\nCSeq: \(cseq) \(method)\r\nContent-Length: 0\r\n\r\n")
        }
        _ = try SIPMessageParser.parseOrThrow(request("INVITE", 1, toTag: nil), cache: cache)
        #expect(cache.hits == 0)
        let ack = try SIPMessageParser.parseOrThrow(request("ACK", 1, toTag: "t1"), cache: cache)
        // Request-URI, Route and From again; the To has a tag now.
        #expect(cache.hits == 3)
        #expect(ack.fromTag == "f1" && ack.toTag == "t1" && ack.routes.first?.uri.lr == true)
        _ = try SIPMessageParser.parseOrThrow(request("BYE", 2, toTag: "t1"), cache: cache)
        #expect(cache.hits == 7)
    }

    @Test func anInvalidValueStaysInvalidWhenItComesAgain() {
        let cache = SIPValueCache()
        let text =
            "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\nFrom: <sip:@>;tag=1\r\n"
            + "To: <sip:a@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        for _ in 0..<3 {
            guard case .rejected(let error, _) = SIPMessageParser.parse(ByteBuffer(string: text), cache: cache) else {
                Issue.record("an invalid From was accepted")
                return
            }
            #expect(error.reason == "Invalid From")
        }
    }

    @Test func manyDistinctValuesKeepTheTablesTheirSize() throws {
        let cache = SIPValueCache(slots: 16)
        for i in 0..<2_000 {
            let text =
                "OPTIONS sip:user\(i)@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK\(i)\r\n"
                + "From: <sip:a\(i)@127.0.0.1>;tag=\(i)\r\nTo: <sip:b\(i)@127.0.0.1>\r\nCall-ID: x\(i)\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: text), cache: cache)
            #expect(msg.requestURI?.user == "user\(i)" && msg.fromTag == "\(i)")
        }
        #expect(cache.uris.count == 16 && cache.nameAddrs.count == 16)
        #expect(cache.misses >= 6_000 - 16 * 2)
    }

    @Test func emptyValuesComeAndGoWithoutTrouble() {
        let cache = SIPValueCache(slots: 1)
        for to in ["", "<sip:a@127.0.0.1>", "", " "] {
            let text =
                "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\n"
                + "To: \(to)\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            let fresh = SIPMessageParser.parse(ByteBuffer(string: text))
            let cached = SIPMessageParser.parse(ByteBuffer(string: text), cache: cache)
            #expect(Self.summary(fresh) == Self.summary(cached))
        }
    }
}
