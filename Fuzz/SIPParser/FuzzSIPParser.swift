import FuzzSupport
import NIOCore
import SIPCore

/// libFuzzer target: one input is one SIP datagram (and the same bytes as a stream message).
/// A parsed message has every accessor the proxy reads exercised, a response built and a
/// forwarded copy spliced, as the proxy does; a rejected one has its error response built.
@_cdecl("FuzzSIPParser_main")
public func fuzzSIPParserMain(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzSIPParser(data, size) }
}

func fuzzSIPParser(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    var buffer = ByteBufferAllocator().buffer(capacity: size)
    buffer.writeBytes(UnsafeBufferPointer(start: data, count: size))
    for datagram in [true, false] {
        let fresh = SIPMessageParser.parse(buffer, limits: .default, datagram: datagram)
        switch fresh {
        case .message(let msg):
            exercise(msg)
        case .rejected(_, let response):
            _ = response?.readableBytes
        }
        // Through the value cache (twice, so the second is answered from it): the same outcome.
        for _ in 0..<2 {
            let cached = SIPMessageParser.parse(buffer, limits: .default, datagram: datagram, cache: valueCache)
            if summary(cached) != summary(fresh) { fatalError("cached parse differs: \(summary(cached)) vs \(summary(fresh))") }
        }
    }
    return 0
}

/// One cache for the whole run (libFuzzer runs inputs one at a time on one thread), small so
/// that inputs evict each other.
nonisolated(unsafe) private let valueCache = SIPValueCache(slots: 16)

private func summary(_ outcome: ParseOutcome) -> String {
    switch outcome {
    case .message(let m):
        "\(m.startLine) \(m.topVia) \(m.viaRanges) \(m.routes) \(m.fromTag ?? "-") \(m.toTag ?? "-") \(m.maxForwards ?? -1) \(m.proxyRequire)"
    case .rejected(let error, let response):
        "\(error) \(response.map { String(buffer: $0) } ?? "-")"
    }
}

private func exercise(_ msg: SIPMessage) {
    _ = (msg.isRequest, msg.method, msg.statusCode, msg.callID, msg.cseq, msg.fromTag, msg.toTag, msg.maxForwards)
    _ = (msg.topVia.branch, msg.topVia.host, msg.topVia.port, msg.topVia.received, msg.topViaRange, msg.topViaEmptyRPortEnd)
    for i in 0..<min(msg.viaRanges.count, 16) { _ = msg.via(at: i) }
    _ = msg.vias.count
    _ = (msg.routes.count, msg.proxyRequire, msg.hasContentLength, msg.bodyStart, msg.bodyLength, msg.userAgentRange)
    if msg.isRequest {
        _ = (msg.requestURI, msg.requestURIText)
    }
    _ = msg.text(msg.callIDRange)
    _ = msg.hash(msg.callIDRange)
    // What the proxy does with a request: answer it, and splice a forwarded copy.
    if msg.isRequest {
        _ = ResponseBuilder.response(to: msg, status: 100, reason: "Trying").readableBytes
        _ = ResponseBuilder.response(to: msg, status: 403, reason: "Forbidden", toTag: "fz", extraHeaders: ["Retry-After: 1"]).readableBytes
    }
    var editor = MessageEditor()
    for r in msg.routeRemovalRanges(count: min(msg.routes.count, 2)) { editor.delete(r) }
    if let mf = msg.maxForwards, let range = msg.maxForwardsValueRange { editor.replace(range, with: String(mf - 1)) }
    if let first = msg.firstRecordRouteLineStart { editor.insert("Record-Route: <sip:127.0.0.1;lr>\r\n", at: first) }
    editor.insert("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz\r\n", at: msg.firstViaLineStart)
    _ = editor.apply(to: msg).readableBytes
}
