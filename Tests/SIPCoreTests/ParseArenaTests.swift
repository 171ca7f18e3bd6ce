import COSIPArena
import NIOCore
import Testing

@testable import SIPCore

/// libosip2's allocations come from a per-thread scratch arena while a header value is parsed
/// (COSIPArena): every parse must leave it rewound, a value too big for it must fall back to
/// malloc, and threads must not share it.
@Suite struct ParseArenaTests {
    static let corpus = FixtureCorpus.files("valid") + FixtureCorpus.files("odd") + FixtureCorpus.files("malformed") + FixtureCorpus.files("rfc4475")

    /// What a parse yields, as text, to compare parses made on different threads.
    static func summary(_ path: String) -> String {
        switch SIPMessageParser.parse(FixtureCorpus.bytes(path)) {
        case .message(let m):
            "\(m.startLine) \(m.topVia) \(m.routes.map(\.uri)) \(m.fromTag ?? "-") \(m.toTag ?? "-") \(m.vias.count)"
        case .rejected(let error, let response):
            "\(error) \(response?.readableBytes ?? -1)"
        }
    }

    @Test func everyParseLeavesTheArenaRewound() {
        for path in Self.corpus {
            _ = Self.summary(path)
            #expect(cosip_arena_used() == 0, "\(path)")
        }
    }

    @Test func aValueTooBigForTheArenaFallsBackToMalloc() throws {
        // ~1,500 parameters: libosip2 allocates a node and two strings for each, past 64 KiB.
        let params = (0..<1_500).map { ";p\($0)=v\($0)" }.joined()
        let text =
            "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\(params)\r\n"
            + "From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: big\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        let before = cosip_arena_fallbacks()
        let limits = SIPLimits(maxMessageSize: 65_536, maxHeaderSectionSize: 65_536, maxHeaderCount: 128, maxBodySize: 32_768)
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: text), limits: limits)
        #expect(msg.topVia.branch == "z9hG4bK1")
        #expect(cosip_arena_fallbacks() > before)
        #expect(cosip_arena_used() == 0)
    }

    @Test func threadsParsingAtOnceGetWhatOneThreadGets() async {
        let expected = Self.corpus.map(Self.summary)
        // Eight tasks on the concurrency pool's threads, each parsing the whole corpus 20 times.
        let results = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<20).flatMap { _ in Self.corpus.map(Self.summary) } }
            }
            return await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        #expect(results.count == 8)
        for r in results { #expect(r == Array((0..<20).map { _ in expected }.joined())) }
    }
}
