public import NIOCore

/// A parsed SIP message: the original bytes plus the fields a proxy needs, each read once.
///
/// The bytes are kept as they arrived (body cut to Content-Length) so a proxy forwards by
/// splicing them (`MessageEditor`) instead of re-serializing: the message stays transparent.
///
/// A class, immutable after parsing: a message is handed down the proxy's call chain and kept by
/// its transaction, and copying a struct of some twenty reference-counted fields (strings,
/// arrays, the buffer) retained and released each of them at every hand-over (~5 % of the
/// proxy core's time in `perf`); a class is one reference count.
public final class SIPMessage: Sendable {
    public enum StartLine: Sendable, Hashable {
        case request(method: SIPMethod, uri: SIPURI)
        case response(statusCode: Int, reason: String)
    }

    /// One Route header element with its byte range in `bytes`.
    public struct Route: Sendable, Hashable {
        public var uri: SIPURI
        /// The element, e.g. `<sip:p1.example.com;lr>` (without separating commas).
        public var range: Range<Int>
        /// Index of the Route header field this element belongs to (0 = first Route line).
        public var fieldIndex: Int
    }

    /// The message exactly as it is forwarded when nothing is edited.
    public let bytes: ByteBuffer
    public let startLine: StartLine
    /// The top Via, parsed (the only one a proxy needs for every message).
    public let topVia: Via
    /// Byte ranges of every Via value, top first.
    public let viaRanges: [Range<Int>]
    /// Byte range of the Call-ID value.
    public let callIDRange: Range<Int>
    /// The Call-ID, made into a String only when asked for (logging, local tags).
    public var callID: String { text(callIDRange) }
    public let cseq: CSeq
    public let fromTag: String?
    public let toTag: String?
    /// nil when the header is absent.
    public let maxForwards: Int?
    public let routes: [Route]
    /// Option tags of Proxy-Require (RFC 3261 §20.29).
    public let proxyRequire: [String]
    /// Whether a Content-Length header was present.
    public let hasContentLength: Bool
    public let layout: MessageLayout
    /// The first Via field holds more than one value (`Via: a, b`).
    public let topViaFieldHasMore: Bool
    /// Offset just after the text `rport` of the top Via when it has no value (RFC 3581 §4).
    public let topViaEmptyRPortEnd: Int?
    /// Byte range of the Request-URI in the request line (requests only).
    public let requestURIRange: Range<Int>?

    public var isRequest: Bool {
        if case .request = startLine { return true }
        return false
    }

    /// The request method, or for a response the CSeq method.
    public var method: SIPMethod {
        if case .request(let m, _) = startLine { return m }
        return cseq.method
    }

    public var statusCode: Int? {
        if case .response(let code, _) = startLine { return code }
        return nil
    }

    public var requestURI: SIPURI? {
        if case .request(_, let uri) = startLine { return uri }
        return nil
    }

    /// Every Via value, top first, parsed on demand (responses rarely need more than the top).
    /// A value libosip2 rejects is left out; requests with one are rejected at parse time.
    public var vias: [Via] {
        bytes.withUnsafeReadableBytes { raw in
            [topVia] + viaRanges.dropFirst().compactMap { SIPMessageParser.parseVia(raw, $0) }
        }
    }

    /// The Via value at `index` (0 = top), parsed on demand.
    public func via(at index: Int) -> Via? {
        guard index > 0 else { return topVia }
        guard index < viaRanges.count else { return nil }
        return bytes.withUnsafeReadableBytes { SIPMessageParser.parseVia($0, viaRanges[index]) }
    }

    /// The top Via value's byte range.
    public var topViaRange: Range<Int> { viaRanges[0] }

    public var bodyStart: Int { layout.bodyStart }
    public var bodyLength: Int { bytes.readableBytes - layout.bodyStart }

    /// The bytes in `range` as a String (header text is ASCII/UTF-8 by RFC 3261 §7).
    public func text(_ range: Range<Int>) -> String {
        bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    /// FNV-1a over the bytes in `range`, continuing from `seed` (no String is made).
    public func hash(_ range: Range<Int>, seed: UInt32 = 2_166_136_261) -> UInt32 {
        bytes.withUnsafeReadableBytes { fnv1a(UnsafeRawBufferPointer(rebasing: $0[range]), seed: seed) }
    }

    /// Byte range of the first User-Agent value, nil when there is none.
    public var userAgentRange: Range<Int>? {
        layout.first(.userAgent).map { $0.valueStart..<$0.valueEnd }
    }

    /// The Request-URI exactly as written.
    public var requestURIText: String { requestURIRange.map(text) ?? "" }

    @usableFromInline
    init(
        bytes: ByteBuffer, startLine: StartLine, topVia: Via, viaRanges: [Range<Int>], callIDRange: Range<Int>, cseq: CSeq, fromTag: String?,
        toTag: String?, maxForwards: Int?, routes: [Route], proxyRequire: [String], hasContentLength: Bool, layout: MessageLayout,
        topViaFieldHasMore: Bool, topViaEmptyRPortEnd: Int?, requestURIRange: Range<Int>?
    ) {
        self.bytes = bytes
        self.startLine = startLine
        self.topVia = topVia
        self.viaRanges = viaRanges
        self.callIDRange = callIDRange
        self.cseq = cseq
        self.fromTag = fromTag
        self.toTag = toTag
        self.maxForwards = maxForwards
        self.routes = routes
        self.proxyRequire = proxyRequire
        self.hasContentLength = hasContentLength
        self.layout = layout
        self.topViaFieldHasMore = topViaFieldHasMore
        self.topViaEmptyRPortEnd = topViaEmptyRPortEnd
        self.requestURIRange = requestURIRange
    }
}
