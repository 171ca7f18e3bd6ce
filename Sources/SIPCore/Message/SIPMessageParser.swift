internal import COSIP
internal import COSIPArena
public import NIOCore

/// libosip2's global parser tables, built once (a global `let` runs under `swift_once`); its
/// allocations go through the per-thread parse arena (`COSIPArena`) from the start, so nothing
/// it ever frees came from elsewhere.
private let osipReady: Bool = {
    cosip_arena_install()
    cosip_init_once()
    return true
}()

/// The outcome of parsing a datagram or a framed stream message.
public enum ParseOutcome: Sendable {
    case message(SIPMessage)
    /// The bytes are not an acceptable message. `response`, when present, is the error response
    /// (400/505/513, RFC 3261 §16.3 and §8.2) to send back to the source; nil means drop it.
    case rejected(SIPParseError, response: ByteBuffer?)
}

/// Parses SIP messages: limits and layout by `HeaderScanner`, syntax and fields by libosip2.
/// No libosip2 pointer outlives `parse`.
public enum SIPMessageParser {
    /// Parses one message. `datagram` is true for UDP, where the datagram bounds the message and
    /// Content-Length only trims it (RFC 3261 §18.3); for a framed TCP message it is false.
    /// `server` names the product in the rejection's `Server` header (nil: none).
    /// `cache` (one per event loop) keeps recently parsed header values, so a value seen moments
    /// ago is not parsed again (see `SIPValueCache`).
    public static func parse(
        _ buffer: ByteBuffer, limits: SIPLimits = .default, datagram: Bool = true, server: String? = "switchyard", cache: SIPValueCache? = nil
    ) -> ParseOutcome {
        do {
            return .message(try parseOrThrow(buffer, limits: limits, datagram: datagram, cache: cache))
        } catch {
            return .rejected(error, response: ResponseBuilder.rejection(for: buffer, error: error, limits: limits, server: server))
        }
    }

    /// Parses one message or throws the reason it is unacceptable.
    public static func parseOrThrow(
        _ buffer: ByteBuffer, limits: SIPLimits = .default, datagram: Bool = true, cache: SIPValueCache? = nil
    ) throws(SIPParseError) -> SIPMessage {
        _ = osipReady
        var buffer = buffer
        // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives on streams).
        while let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), b == 13 || b == 10 {
            buffer.moveReaderIndex(forwardBy: 1)
        }
        guard buffer.readableBytes > 0 else { throw SIPParseError(.empty, "Empty Message") }
        guard buffer.readableBytes <= limits.maxMessageSize else {
            throw SIPParseError(.tooLarge, "Message Too Large", statusCode: 513)
        }
        var failure: SIPParseError?
        var layout = MessageLayout()
        var length = 0
        var hasContentLength = false
        buffer.withUnsafeReadableBytes { raw in
            do throws(SIPParseError) {
                layout = try HeaderScanner.scan(raw, limits: limits)
                (length, hasContentLength) = try messageLength(raw, layout: layout, limits: limits, datagram: datagram)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        let bytes = buffer.getSlice(at: buffer.readerIndex, length: length)!
        return try bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
            try extract(bytes: bytes, raw: raw, layout: layout, hasContentLength: hasContentLength, cache: cache)
        }
    }

    /// The message length: header section plus Content-Length bytes of body.
    static func messageLength(_ raw: UnsafeRawBufferPointer, layout: MessageLayout, limits: SIPLimits, datagram: Bool) throws(SIPParseError) -> (Int, Bool) {
        let available = raw.count - layout.bodyStart
        if layout.count(.contentLength) > 1 {
            throw SIPParseError(.badHeaderValue, "Duplicate Content-Length", canRespond: true)
        }
        guard let field = layout.first(.contentLength) else {
            // UDP: the datagram ends the body. A stream frame without Content-Length has no body.
            return (datagram ? raw.count : layout.bodyStart, false)
        }
        guard let cl = parseDecimal(raw, field.valueStart, field.valueEnd, max: limits.maxBodySize) else {
            throw SIPParseError(.badHeaderValue, "Invalid Content-Length", canRespond: true)
        }
        if cl > available {
            throw SIPParseError(.bodyTruncated, "Content-Length Exceeds Body", canRespond: true)
        }
        return (layout.bodyStart + cl, true)
    }

    /// A non-negative decimal of at most 9 digits not above `max`, or nil.
    static func parseDecimal(_ raw: UnsafeRawBufferPointer, _ s: Int, _ e: Int, max: Int) -> Int? {
        guard e > s, e - s <= 9 else { return nil }
        var v = 0
        for i in s..<e {
            let d = Int(raw[i]) - 48
            guard d >= 0, d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v <= max ? v : nil
    }

    private static func extract(
        bytes: ByteBuffer, raw: UnsafeRawBufferPointer, layout: MessageLayout, hasContentLength: Bool, cache: SIPValueCache?
    ) throws(SIPParseError) -> SIPMessage {
        // RFC 3261 §25.1: the start line carries no NUL byte (the header scan checked the
        // headers' control bytes, quoted-pairs allowed).
        if let base = raw.baseAddress, memchr(base, 0, layout.startLineEnd) != nil {
            throw SIPParseError(.syntax, "NUL Byte In Start Line", canRespond: true)
        }
        let isRequest = !raw.starts(with: "SIP/".utf8)

        // Start line: our own split, libosip2 for the Request-URI.
        let startLine: SIPMessage.StartLine
        var requestURIRange: Range<Int>?
        if isRequest {
            let (method, uriRange) = try requestLine(raw, layout.startLineEnd)
            guard let uri = parseURI(raw, uriRange, cache) else {
                // RFC 4475 §3.3.3: a well-formed URI of a scheme we do not route is a 416, not a 400.
                if let colon = firstIndex(of: UInt8(ascii: ":"), raw, uriRange.lowerBound, uriRange.upperBound), isScheme(raw, uriRange.lowerBound..<colon),
                    colon + 1 < uriRange.upperBound
                {
                    throw SIPParseError(.badStartLine, "Unsupported URI Scheme", canRespond: true, statusCode: 416)
                }
                throw SIPParseError(.badStartLine, "Invalid Request-URI", canRespond: true)
            }
            // RFC 3261 §19.1.1: a Request-URI carries no headers component; one that does could
            // inject a Route or another header into the next hop (RFC 4475 §3.1.2.11).
            // '?' may appear in the userinfo (RFC 3261 §25.1 user-unreserved): look after the last '@'.
            let hostStart = (lastIndex(of: UInt8(ascii: "@"), raw, uriRange.lowerBound, uriRange.upperBound) ?? uriRange.lowerBound)
            if uri.isSIP, firstIndex(of: UInt8(ascii: "?"), raw, hostStart, uriRange.upperBound) != nil {
                throw SIPParseError(.badStartLine, "Request-URI With Headers", canRespond: true)
            }
            requestURIRange = uriRange
            startLine = .request(method: method, uri: uri)
        } else {
            startLine = try statusLine(raw, layout.startLineEnd)
        }

        // Via (RFC 3261 §8.1.1.7): required; the top one must be usable to answer at all.
        var viaRanges: [Range<Int>] = []
        var viaFieldCount = 0
        var topViaFieldHasMore = false
        for f in layout.fields where f.kind == .via {
            HeaderScanner.forEachValue(raw, f.valueStart, f.valueEnd) { viaRanges.append($0) }
            if viaFieldCount == 0 { topViaFieldHasMore = viaRanges.count > 1 }
            viaFieldCount += 1
        }
        guard viaFieldCount > 0 else { throw SIPParseError(.missingHeader, "Missing Via") }
        // A request with a broken top Via is still answered (400, to the address it came from:
        // RFC 4475 §3.1.2.1); a response with one cannot be routed and is dropped.
        // A response's top Via is normally one this proxy wrote (and remembered in the cache).
        let topVia =
            isRequest || cache == nil
            ? parseVia(raw, viaRanges[0]) : cache!.lookup(\.vias, UnsafeRawBufferPointer(rebasing: raw[viaRanges[0]])) { parseVia(raw, viaRanges[0]) }
        guard let topVia else { throw SIPParseError(.badHeaderValue, "Invalid Via", canRespond: isRequest) }
        if isRequest {
            // Every Via of a request is checked: they come back in our responses.
            for r in viaRanges.dropFirst() where parseVia(raw, r) == nil {
                throw SIPParseError(.badHeaderValue, "Invalid Via", canRespond: true)
            }
        }
        let emptyRPortEnd = emptyRPortEnd(raw, viaRanges[0])

        // Call-ID, CSeq, From, To (RFC 3261 §8.1.1).
        guard let cidField = layout.first(.callID), cidField.valueEnd > cidField.valueStart else {
            throw SIPParseError(.missingHeader, "Missing Call-ID", canRespond: true)
        }
        let callIDRange = cidField.valueStart..<cidField.valueEnd
        for i in callIDRange where raw[i] <= 32 {
            throw SIPParseError(.badHeaderValue, "Invalid Call-ID", canRespond: true)
        }
        guard let cseqField = layout.first(.cseq) else { throw SIPParseError(.missingHeader, "Missing CSeq", canRespond: true) }
        let cseq = try parseCSeq(raw, cseqField)
        if case .request(let method, _) = startLine, method != cseq.method {
            throw SIPParseError(.cseqMethodMismatch, "CSeq Method Does Not Match", canRespond: true)
        }
        guard let fromField = layout.first(.from) else { throw SIPParseError(.missingHeader, "Missing From", canRespond: true) }
        guard let toField = layout.first(.to) else { throw SIPParseError(.missingHeader, "Missing To", canRespond: true) }
        // A proxy routes responses by Via alone: their From/To are copied, never read, so only a
        // request's are parsed (§16.3: validate what is needed, pass the rest through).
        var fromTag: String?
        var toTag: String?
        if isRequest {
            guard let from = nameAddrTag(raw, fromField.valueStart..<fromField.valueEnd, cache) else {
                throw SIPParseError(.badHeaderValue, "Invalid From", canRespond: true)
            }
            guard let to = nameAddrTag(raw, toField.valueStart..<toField.valueEnd, cache) else {
                throw SIPParseError(.badHeaderValue, "Invalid To", canRespond: true)
            }
            fromTag = from.tag
            toTag = to.tag
        }

        // Max-Forwards (RFC 3261 §8.1.1.6): a decimal.
        var maxForwards: Int?
        if let f = layout.first(.maxForwards) {
            guard let v = parseDecimal(raw, f.valueStart, f.valueEnd, max: 65_535) else {
                throw SIPParseError(.badHeaderValue, "Invalid Max-Forwards", canRespond: isRequest)
            }
            maxForwards = v
        }

        // Route: each element parsed by libosip2, kept with its byte range.
        var routes: [SIPMessage.Route] = []
        var fi = 0
        for f in layout.fields where f.kind == .route {
            try HeaderScanner.forEachValue(raw, f.valueStart, f.valueEnd) { (r) throws(SIPParseError) in
                guard let uri = parseRouteURI(raw, r, cache), uri.isSIP else {
                    throw SIPParseError(.badHeaderValue, "Invalid Route", canRespond: isRequest)
                }
                routes.append(.init(uri: uri, range: r, fieldIndex: fi))
            }
            fi += 1
        }

        var proxyRequire: [String] = []
        for f in layout.fields where f.kind == .proxyRequire {
            HeaderScanner.forEachValue(raw, f.valueStart, f.valueEnd) { r in
                if !r.isEmpty { proxyRequire.append(text(raw, r)) }
            }
        }

        return SIPMessage(
            bytes: bytes, startLine: startLine, topVia: topVia, viaRanges: viaRanges, callIDRange: callIDRange, cseq: cseq,
            fromTag: fromTag, toTag: toTag, maxForwards: maxForwards, routes: routes, proxyRequire: proxyRequire,
            hasContentLength: hasContentLength, layout: layout, topViaFieldHasMore: topViaFieldHasMore,
            topViaEmptyRPortEnd: emptyRPortEnd, requestURIRange: requestURIRange
        )
    }

    // MARK: Start lines

    /// `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1).
    private static func requestLine(_ raw: UnsafeRawBufferPointer, _ lineEnd: Int) throws(SIPParseError) -> (SIPMethod, Range<Int>) {
        // Trailing whitespace is not allowed (RFC 4475 §3.1.2.10) but the request is still
        // recognisable, so it gets a 400 rather than silence.
        var end = lineEnd
        while end > 0, raw[end - 1] == 32 || raw[end - 1] == 9 { end -= 1 }
        guard let sp1 = firstIndex(of: 32, raw, 0, end), sp1 > 0 else {
            throw SIPParseError(.badStartLine, "Malformed Request Line")
        }
        guard let sp2 = lastIndex(of: 32, raw, sp1 + 1, end), sp2 > sp1 + 1 else {
            throw SIPParseError(.badStartLine, "Malformed Request Line")
        }
        for i in 0..<sp1 where !HeaderScanner.isTokenByte(raw[i]) { throw SIPParseError(.badStartLine, "Malformed Request Line") }
        if end != lineEnd { throw SIPParseError(.badStartLine, "Whitespace After SIP Version", canRespond: true) }
        // Request-Line = Method SP Request-URI SP SIP-Version (§25.1): one SP each, no LWS in the
        // URI (RFC 4475 §3.1.2.8, §3.1.2.9).
        var u = sp1 + 1
        while u < sp2 {
            if raw[u] == 32 || raw[u] == 9 { throw SIPParseError(.badStartLine, "Whitespace In Request Line", canRespond: true) }
            u += 1
        }
        let version = UnsafeRawBufferPointer(rebasing: raw[(sp2 + 1)..<end])
        guard version.elementsEqual("SIP/2.0".utf8) else {
            if version.starts(with: "SIP/".utf8) {
                throw SIPParseError(.unsupportedVersion, "Version Not Supported", canRespond: true, statusCode: 505)
            }
            throw SIPParseError(.badStartLine, "Malformed Request Line")
        }
        return (SIPMethod(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<sp1])), (sp1 + 1)..<sp2)
    }

    /// `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.2).
    private static func statusLine(_ raw: UnsafeRawBufferPointer, _ end: Int) throws(SIPParseError) -> SIPMessage.StartLine {
        guard end >= 11, UnsafeRawBufferPointer(rebasing: raw[0..<8]).elementsEqual("SIP/2.0 ".utf8), raw[11] == 32 || end == 11 else {
            throw SIPParseError(.badStartLine, "Malformed Status Line")
        }
        var code = 0
        for i in 8..<11 {
            let d = Int(raw[i]) - 48
            guard (0...9).contains(d) else { throw SIPParseError(.badStartLine, "Malformed Status Line") }
            code = code * 10 + d
        }
        guard (100...699).contains(code) else { throw SIPParseError(.badStartLine, "Invalid Status Code") }
        return .response(statusCode: code, reason: end > 12 ? text(raw, 12..<end) : "")
    }

    /// `CSeq: 1*DIGIT LWS Method` (RFC 3261 §20.16): the number fits 31 bits.
    private static func parseCSeq(_ raw: UnsafeRawBufferPointer, _ f: HeaderField) throws(SIPParseError) -> CSeq {
        var i = f.valueStart
        var n: UInt64 = 0
        while i < f.valueEnd, raw[i] >= 48, raw[i] <= 57, n < (1 << 32) {
            n = n * 10 + UInt64(raw[i] - 48)
            i += 1
        }
        let digits = i - f.valueStart
        // LWS between number and method may be folded (RFC 4475 §3.1.1.1: "CSeq: 0009\r\n  INVITE").
        while i < f.valueEnd, HeaderScanner.isWhitespace(raw[i]) { i += 1 }
        guard digits > 0, n < (1 << 31), i < f.valueEnd, i > f.valueStart + digits else {
            throw SIPParseError(.badHeaderValue, "Invalid CSeq", canRespond: true)
        }
        for j in i..<f.valueEnd where !HeaderScanner.isTokenByte(raw[j]) { throw SIPParseError(.badHeaderValue, "Invalid CSeq", canRespond: true) }
        return CSeq(number: UInt32(n), method: SIPMethod(bytes: UnsafeRawBufferPointer(rebasing: raw[i..<f.valueEnd])))
    }

    /// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
    private static func isScheme(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        guard let first = r.first, (raw[first] | 0x20) >= 0x61, (raw[first] | 0x20) <= 0x7A else { return false }
        for i in r {
            let b = raw[i]
            let ok = (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2B || b == 0x2D || b == 0x2E
            if !ok { return false }
        }
        return true
    }

    static func text(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[r]), as: UTF8.self)
    }

    // MARK: libosip2 header parsers (on a NUL-terminated copy of one value)

    private static func withCString<T>(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>, _ body: (UnsafePointer<CChar>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: r.count + 1) { buf in
            let dst = UnsafeMutableRawBufferPointer(buf)
            dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[r]))
            // Unfold (RFC 3261 §7.3.1): the CRLF of a continuation line is whitespace, which
            // libosip2 does not accept inside a value. Control bytes a quoted-pair escaped
            // (RFC 4475 §3.1.1.2: NUL, BEL, DEL in a display name) become spaces too: a NUL would
            // end the C string, and "\ " is still a quoted-pair.
            for i in 0..<r.count where buf[i] < 32 && buf[i] != 9 || buf[i] == 127 { buf[i] = 32 }
            buf[r.count] = 0
            return body(UnsafePointer(buf.baseAddress!))
        }
    }

    /// Parses one header value with libosip2: a fresh struct from `initialize`, `parse` on a
    /// NUL-terminated copy, `read` into Swift values, then `free`. nil when any step fails.
    private static func withParsed<T, R>(
        _ raw: UnsafeRawBufferPointer, _ r: Range<Int>,
        initialize: (UnsafeMutablePointer<UnsafeMutablePointer<T>?>) -> Int32,
        parse: (UnsafeMutablePointer<T>, UnsafePointer<CChar>) -> Int32,
        free: (UnsafeMutablePointer<T>) -> Void,
        read: (UnsafeMutablePointer<T>) -> R?
    ) -> R? {
        // Every libosip2 allocation of this parse comes from the thread's scratch arena, rewound
        // when the value is freed (see COSIPArena.h).
        cosip_arena_begin()
        defer { cosip_arena_end() }
        var p: UnsafeMutablePointer<T>?
        guard initialize(&p) == 0, let value = p else { return nil }
        defer { free(value) }
        guard withCString(raw, r, { parse(value, $0) }) == 0 else { return nil }
        return read(value)
    }

    /// One Via value given as text (`SIP/2.0/UDP host:port;branch=...`), as a message's Via
    /// would be parsed; nil when invalid.
    public static func parseVia(_ text: String) -> Via? {
        var text = text
        return text.withUTF8 { parseVia(UnsafeRawBufferPointer($0), 0..<$0.count) }
    }

    /// One Via value, or nil when libosip2 rejects it or the port is out of range.
    static func parseVia(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> Via? {
        withParsed(raw, r, initialize: { osip_via_init($0) }, parse: { osip_via_parse($0, $1) }, free: { osip_via_free($0) }, read: via)
    }

    private static func parseURI(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>, _ cache: SIPValueCache?) -> SIPURI? {
        guard let cache else { return parseURI(raw, r) }
        return cache.lookup(\.uris, UnsafeRawBufferPointer(rebasing: raw[r])) { parseURI(raw, r) }
    }

    private static func parseURI(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> SIPURI? {
        withParsed(raw, r, initialize: { osip_uri_init($0) }, parse: { osip_uri_parse($0, $1) }, free: { osip_uri_free($0) }, read: sipURI)
    }

    /// A name-addr header (From, To, Route element) parsed by libosip2.
    private static func parseNameAddr<R>(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>, _ read: (UnsafeMutablePointer<osip_from_t>) -> R?) -> R? {
        withParsed(raw, r, initialize: { osip_from_init($0) }, parse: { osip_from_parse($0, $1) }, free: { osip_from_free($0) }, read: read)
    }

    /// The URI of a Route element (`<sip:...;lr>`).
    private static func parseRouteURI(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>, _ cache: SIPValueCache?) -> SIPURI? {
        func parse() -> SIPURI? { parseNameAddr(raw, r) { f in f.pointee.url.flatMap(sipURI) } }
        guard let cache else { return parse() }
        return cache.lookup(\.routes, UnsafeRawBufferPointer(rebasing: raw[r]), parse: parse)
    }

    /// From/To (name-addr or addr-spec with parameters): nil when invalid, else the tag if any.
    private static func nameAddrTag(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>, _ cache: SIPValueCache?) -> NameAddr? {
        func parse() -> String?? { parseNameAddr(raw, r) { f -> String?? in f.pointee.url == nil ? nil : .some(param(&f.pointee.gen_params, "tag")) } }
        guard let cache else { return parse().map(NameAddr.init(tag:)) }
        return cache.lookup(\.nameAddrs, UnsafeRawBufferPointer(rebasing: raw[r]), parse: parse).map(NameAddr.init(tag:))
    }

    /// A valid From/To value: what the proxy reads of it.
    private struct NameAddr {
        let tag: String?
    }

    // MARK: libosip2 → Swift values

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String? {
        p.map { String(cString: $0) }
    }

    private static func param(_ list: UnsafeMutablePointer<osip_list_t>, _ name: StaticString) -> String? {
        var value: UnsafePointer<CChar>?
        let found = name.withUTF8Buffer { buf in
            buf.withMemoryRebound(to: CChar.self) { cosip_param(list, $0.baseAddress, &value) }
        }
        guard found == 1 else { return nil }
        return value.map { String(cString: $0) } ?? ""
    }

    /// Names for `params4`, NUL-terminated C strings made once.
    private static let viaParamNames = CParamNames("branch", "received", "rport", "maddr")
    private static let uriParamNames = CParamNames("transport", "lr", "maddr", nil)

    /// Up to four parameters in one walk of the list (`param` walks it once per name): each is
    /// nil when absent, "" for a flag, else its value.
    private static func params4(_ list: UnsafeMutablePointer<osip_list_t>, _ names: CParamNames) -> (String?, String?, String?, String?) {
        var found: (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        var values: (UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) = (nil, nil, nil, nil)
        withUnsafeMutableBytes(of: &found) { f in
            withUnsafeMutableBytes(of: &values) { v in
                cosip_params4(
                    list, names.pointers, f.baseAddress!.assumingMemoryBound(to: Int32.self),
                    v.baseAddress!.assumingMemoryBound(to: UnsafePointer<CChar>?.self))
            }
        }
        @inline(__always) func value(_ found: Int32, _ p: UnsafePointer<CChar>?) -> String? {
            found == 1 ? p.map { String(cString: $0) } ?? "" : nil
        }
        return (value(found.0, values.0), value(found.1, values.1), value(found.2, values.2), value(found.3, values.3))
    }

    private static func via(_ v: UnsafeMutablePointer<osip_via_t>) -> Via? {
        guard let proto = string(v.pointee.protocol), let host = string(v.pointee.host), !host.isEmpty else { return nil }
        var port: Int?
        if let p = string(v.pointee.port) {
            guard let n = Int(p), (1...65_535).contains(n) else { return nil }
            port = n
        }
        let (branch, received, rportText, maddr) = params4(&v.pointee.via_params, viaParamNames)
        var rport = Via.RPort.absent
        if let r = rportText {
            if r.isEmpty {
                rport = .requested
            } else if let n = Int(r), (1...65_535).contains(n) {
                rport = .value(n)
            } else {
                return nil
            }
        }
        return Via(
            transport: proto.utf8.allSatisfy({ $0 < 97 }) ? proto : proto.uppercased(), host: host, port: port, branch: branch,
            received: received, rport: rport, maddr: maddr
        )
    }

    private static func sipURI(_ u: UnsafeMutablePointer<osip_uri_t>) -> SIPURI? {
        guard let scheme = string(u.pointee.scheme) else { return nil }
        let host = string(u.pointee.host) ?? ""
        var port: Int?
        if let p = string(u.pointee.port) {
            guard let n = Int(p), (1...65_535).contains(n) else { return nil }
            port = n
        }
        let lowered = scheme.lowercased()
        if lowered == "sip" || lowered == "sips" {
            guard !host.isEmpty else { return nil }
        }
        let (transport, lr, maddr, _) = params4(&u.pointee.url_params, uriParamNames)
        return SIPURI(scheme: scheme, user: string(u.pointee.username), host: host, port: port, transport: transport?.lowercased(), lr: lr != nil, maddr: maddr)
    }

    // MARK: byte helpers

    private static func firstIndex(of b: UInt8, _ raw: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Int? {
        var i = s
        while i < e {
            if raw[i] == b { return i }
            i += 1
        }
        return nil
    }

    private static func lastIndex(of b: UInt8, _ raw: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Int? {
        var i = e - 1
        while i >= s {
            if raw[i] == b { return i }
            i -= 1
        }
        return nil
    }

    /// Finds `;rport` without `=value` in the top Via and returns the offset after "rport".
    private static func emptyRPortEnd(_ raw: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int? {
        var i = r.lowerBound
        while i + 6 <= r.upperBound {
            if raw[i] == UInt8(ascii: ";") {
                var j = i + 1
                while j < r.upperBound, raw[j] == 32 || raw[j] == 9 { j += 1 }
                if j + 5 <= r.upperBound,
                    raw[j] | 0x20 == UInt8(ascii: "r"), raw[j + 1] | 0x20 == UInt8(ascii: "p"), raw[j + 2] | 0x20 == UInt8(ascii: "o"),
                    raw[j + 3] | 0x20 == UInt8(ascii: "r"), raw[j + 4] | 0x20 == UInt8(ascii: "t")
                {
                    let end = j + 5
                    var k = end
                    while k < r.upperBound, raw[k] == 32 || raw[k] == 9 { k += 1 }
                    if k == r.upperBound || raw[k] == UInt8(ascii: ";") { return end }
                }
            }
            i += 1
        }
        return nil
    }
}

/// Up to four parameter names as C strings for `cosip_params4`, allocated once and never freed
/// (they live as long as the parser's static tables). `@unchecked Sendable`: immutable after
/// `init`, and the strings are static literals.
private final class CParamNames: @unchecked Sendable {
    let pointers: UnsafePointer<UnsafePointer<CChar>?>

    init(_ a: StaticString, _ b: StaticString, _ c: StaticString, _ d: StaticString?) {
        let names = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: 4)
        for (i, name) in [a, b, c, d].enumerated() {
            names[i] = name.map { UnsafeRawPointer($0.utf8Start).assumingMemoryBound(to: CChar.self) }
        }
        pointers = UnsafePointer(names)
    }
}
