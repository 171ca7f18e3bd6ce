/// The headers SIPCore locates by byte range so a proxy can splice them without re-serializing.
public enum HeaderKind: UInt8, Sendable {
    case via, route, recordRoute, maxForwards, contentLength, callID, cseq, from, to, proxyRequire, retryAfter, contentType, userAgent, other

    /// Headers RFC 3261 §7.3 allows once only (their grammar is not a comma list): a second one
    /// is a 400. Parsers behind us crashed on exactly these (Kamailio CVE-2018-14767: two To).
    public var isSingleValued: Bool {
        switch self {
        case .to, .from, .callID, .cseq, .maxForwards, .contentLength, .contentType: true
        default: false
        }
    }

    /// The canonical header name, for reason phrases.
    public var name: String {
        switch self {
        case .via: "Via"
        case .route: "Route"
        case .recordRoute: "Record-Route"
        case .maxForwards: "Max-Forwards"
        case .contentLength: "Content-Length"
        case .callID: "Call-ID"
        case .cseq: "CSeq"
        case .from: "From"
        case .to: "To"
        case .proxyRequire: "Proxy-Require"
        case .retryAfter: "Retry-After"
        case .contentType: "Content-Type"
        case .userAgent: "User-Agent"
        case .other: "header"
        }
    }
}

/// One header field: its whole extent (name to line end, continuation lines included) and its value.
@usableFromInline
struct HeaderField: Sendable, Hashable {
    @usableFromInline var kind: HeaderKind
    /// First byte of the header name.
    @usableFromInline var lineStart: Int
    /// One past the line terminator (CRLF or LF) of the last physical line.
    @usableFromInline var lineEnd: Int
    /// The value with leading and trailing whitespace trimmed.
    @usableFromInline var valueStart: Int
    @usableFromInline var valueEnd: Int
}

/// Byte layout of a message's header section, found by one linear scan.
public struct MessageLayout: Sendable, Hashable {
    /// One past the start line's terminator: where the first header begins.
    public var headersStart: Int = 0
    /// One past the empty line: where the body begins.
    public var bodyStart: Int = 0
    /// The start line without its terminator.
    public var startLineEnd: Int = 0
    /// Header fields of the kinds SIPCore cares about, in message order.
    @usableFromInline var fields: [HeaderField] = []
    /// Number of header fields of any kind.
    public var headerCount: Int = 0
    /// Whether the header section uses bare LF line ends somewhere (tolerated on input).
    public var usesBareLF = false

    @inlinable
    func first(_ kind: HeaderKind) -> HeaderField? {
        for f in fields where f.kind == kind { return f }
        return nil
    }
    @inlinable
    func all(_ kind: HeaderKind) -> [HeaderField] { fields.filter { $0.kind == kind } }
    /// How many fields of `kind` there are (without making an array of them).
    @inlinable
    func count(_ kind: HeaderKind) -> Int {
        var n = 0
        for f in fields where f.kind == kind { n += 1 }
        return n
    }
}

/// Finds start line, header fields and the header/body boundary, enforcing `SIPLimits` while it
/// scans: no unbounded search ever runs past `maxHeaderSectionSize`.
enum HeaderScanner {
    static let lf: UInt8 = 10
    static let cr: UInt8 = 13
    static let sp: UInt8 = 32
    static let ht: UInt8 = 9
    static let colon: UInt8 = 58

    /// Scans `bytes` (a whole message or a stream prefix) and returns the layout.
    /// - Throws: `SIPParseError` when a limit is exceeded or the header section never ends.
    /// `lenient` is for building an error response to a message already rejected: lines that
    /// are not headers are skipped, limits stop the scan instead of failing it.
    static func scan(_ bytes: UnsafeRawBufferPointer, limits: SIPLimits, lenient: Bool = false) throws(SIPParseError) -> MessageLayout {
        var layout = MessageLayout()
        layout.fields.reserveCapacity(16)
        let n = bytes.count
        let limit = min(n, limits.maxHeaderSectionSize)
        guard let firstLF = indexOf(lf, in: bytes, from: 0, to: limit) else {
            if lenient { throw SIPParseError(.noHeaderTerminator, "Incomplete Start Line") }
            throw n > limits.maxHeaderSectionSize
                ? SIPParseError(.headerSectionTooLarge, "Header Section Too Large", canRespond: true, statusCode: 513)
                : SIPParseError(.noHeaderTerminator, "Incomplete Start Line")
        }
        layout.startLineEnd = firstLF > 0 && bytes[firstLF - 1] == cr ? firstLF - 1 : firstLF
        var pos = firstLF + 1
        layout.headersStart = pos
        while true {
            guard pos < limit else {
                if lenient, n > limits.maxHeaderSectionSize { return layout }
                throw n > limits.maxHeaderSectionSize
                    ? SIPParseError(.headerSectionTooLarge, "Header Section Too Large", canRespond: true, statusCode: 513)
                    : SIPParseError(.noHeaderTerminator, "Missing Empty Line After Headers")
            }
            let b = bytes[pos]
            if b == lf {
                layout.usesBareLF = true
                layout.bodyStart = pos + 1
                return layout
            }
            if b == cr, pos + 1 < n, bytes[pos + 1] == lf {
                layout.bodyStart = pos + 2
                return layout
            }
            if b == sp || b == ht, !lenient {
                // A continuation line with no header before it.
                throw SIPParseError(.syntax, "Continuation Line Without Header", canRespond: true)
            }
            let lineStart = pos
            // The header (with its continuation lines) ends at an LF not followed by SP/HT.
            var e = pos
            while true {
                guard let next = indexOf(lf, in: bytes, from: e, to: limit) else {
                    if lenient, n > limits.maxHeaderSectionSize { return layout }
                    throw n > limits.maxHeaderSectionSize
                        ? SIPParseError(.headerSectionTooLarge, "Header Section Too Large", canRespond: true, statusCode: 513)
                        : SIPParseError(.noHeaderTerminator, "Missing Empty Line After Headers")
                }
                if next > 0, bytes[next - 1] != cr { layout.usesBareLF = true }
                e = next + 1
                if e < n, bytes[e] == sp || bytes[e] == ht { continue }
                break
            }
            let lineEnd = e
            layout.headerCount += 1
            if layout.headerCount > limits.maxHeaderCount, !lenient {
                throw SIPParseError(.tooManyHeaders, "Too Many Headers", canRespond: true, statusCode: 513)
            }
            // Header name: token up to ':' (optional whitespace before the colon). The common
            // case, a token right before the colon, is read in one pass; anything else takes the
            // careful path below, which names what is wrong.
            var c = lineStart
            while c < lineEnd, isTokenByte(bytes[c]) { c += 1 }
            var nameEnd = c
            let plainName = c > lineStart && c < lineEnd && bytes[c] == colon
            if !plainName {
                c = lineStart
                while c < lineEnd, bytes[c] != colon, bytes[c] != lf, bytes[c] != cr { c += 1 }
                nameEnd = c
                while nameEnd > lineStart, bytes[nameEnd - 1] == sp || bytes[nameEnd - 1] == ht { nameEnd -= 1 }
                guard c < lineEnd, bytes[c] == colon, nameEnd > lineStart else {
                    if lenient {
                        pos = lineEnd
                        continue
                    }
                    throw SIPParseError(.syntax, c < lineEnd ? "Empty Header Name" : "Header Without Colon", canRespond: true)
                }
            }
            if !lenient {
                // RFC 3261 §7.3.1 / §25.1: a header name is a token; a control byte in it (or
                // any other non-token byte) is rejected before any parser, ours or a node's, sees it.
                if !plainName {
                    for i in lineStart..<nameEnd where !isTokenByte(bytes[i]) {
                        throw SIPParseError(.syntax, "Invalid Header Name '\(printable(bytes, lineStart, nameEnd))'", canRespond: true)
                    }
                }
                // TEXT-UTF8 and LWS (§25.1) allow no control byte but HTAB and the CRLF of a fold.
                if !isPlainLine(bytes, c + 1, lineEnd), let bad = controlByte(bytes, c + 1, lineEnd) {
                    let name = printable(bytes, lineStart, nameEnd)
                    throw SIPParseError(.syntax, bad == 0 ? "NUL Byte In \(name) Header" : "Control Character In \(name) Header", canRespond: true)
                }
            }
            var vs = c + 1
            var ve = lineEnd
            while ve > vs, isWhitespace(bytes[ve - 1]) { ve -= 1 }
            while vs < ve, isWhitespace(bytes[vs]) { vs += 1 }
            let kind = classify(bytes, lineStart, nameEnd)
            if kind.isSingleValued, !lenient, layout.fields.contains(where: { $0.kind == kind }) {
                throw SIPParseError(.badHeaderValue, "Duplicate \(kind.name) Header", canRespond: true)
            }
            if kind != .other {
                layout.fields.append(HeaderField(kind: kind, lineStart: lineStart, lineEnd: lineEnd, valueStart: vs, valueEnd: ve))
            }
            pos = lineEnd
        }
    }

    @inline(__always)
    static func isWhitespace(_ b: UInt8) -> Bool { b == sp || b == ht || b == cr || b == lf }

    /// RFC 3261 §25.1 token characters.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "!"), UInt8(ascii: "%"), UInt8(ascii: "*"), UInt8(ascii: "_"),
            UInt8(ascii: "+"), UInt8(ascii: "`"), UInt8(ascii: "'"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// The first control byte in `start..<end` other than HTAB and the CR LF of line ends and
    /// folds (a CR must be followed by LF), or nil. Inside a quoted string a quoted-pair may
    /// escape any byte but CR and LF (RFC 3261 §25.1; RFC 4475 §3.1.1.2 escapes NUL, BEL, DEL).
    @inline(__always)
    static func controlByte(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt8? {
        var i = start
        var quoted = false
        let base = bytes.baseAddress
        while i < end {
            // Eight bytes at a time while none of them needs a look (no control byte, DEL, quote
            // or backslash): the value bytes of a header section are nearly all such bytes.
            if i + 8 <= end, let base, !needsLook(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
                continue
            }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if b == UInt8(ascii: "\\"), quoted, i + 1 < end, bytes[i + 1] != cr, bytes[i + 1] != lf {
                i += 2
                continue
            } else if b < 32 || b == 127 {
                if b == ht || b == lf {
                } else if b == cr, i + 1 < end, bytes[i + 1] == lf {
                } else {
                    return b
                }
            }
            i += 1
        }
        return nil
    }

    /// Whether `start..<end` is one line ending in CRLF whose bytes before the CRLF need no look
    /// (no control byte, DEL, '"' or '\\'): then `controlByte` finds nothing there, and the
    /// caller skips it.
    @inline(__always)
    static func isPlainLine(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        let textEnd = end - 2
        guard textEnd >= start, bytes[textEnd] == cr, bytes[textEnd + 1] == lf, let base = bytes.baseAddress else { return false }
        return !anyNeedsLook(base + start, textEnd - start)
    }

    /// Whether any of `count` bytes at `p` is a control byte, DEL, '"' or '\\'. A reduction with
    /// no early exit, so the compiler vectorizes it (16 or 32 bytes an iteration, about one
    /// instruction a byte; header values are a few dozen bytes).
    static func anyNeedsLook(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
        var found: UInt8 = 0
        for i in 0..<count {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            found |= (b < 32 ? 1 : 0) | (b == 127 ? 1 : 0) | (b == UInt8(ascii: "\"") ? 1 : 0) | (b == UInt8(ascii: "\\") ? 1 : 0)
        }
        return found != 0
    }

    /// Whether any of the eight bytes of `w` is a control byte, DEL, '"' or '\\' (SWAR: each
    /// test is exact as a whole, whichever byte made it true).
    @inline(__always)
    static func needsLook(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZero(_ v: UInt64) -> Bool { (v &- ones) & ~v & highs != 0 }
        let below32 = (w &- ones &* 0x20) & ~w & highs != 0
        return below32 || hasZero(w ^ (ones &* 0x7F)) || hasZero(w ^ (ones &* 0x22)) || hasZero(w ^ (ones &* 0x5C))
    }

    /// A header name fit for a reason phrase: non-printable bytes as '?', at most 32 bytes.
    static func printable(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
        var out: [UInt8] = []
        for i in start..<min(end, start + 32) {
            let b = bytes[i]
            out.append(b > 32 && b < 127 && b != UInt8(ascii: "'") ? b : UInt8(ascii: "?"))
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func indexOf(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to, let base = bytes.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(byte), to - from) else { return nil }
        return UnsafeRawPointer(p) - base
    }

    /// Case-insensitive header-name match, compact forms included (RFC 3261 §7.3.3).
    static func classify(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HeaderKind {
        let len = end - start
        if len == 1 {
            switch bytes[start] | 0x20 {
            case UInt8(ascii: "v"): return .via
            case UInt8(ascii: "l"): return .contentLength
            case UInt8(ascii: "i"): return .callID
            case UInt8(ascii: "f"): return .from
            case UInt8(ascii: "t"): return .to
            case UInt8(ascii: "c"): return .contentType
            default: return .other
            }
        }
        @inline(__always) func eq(_ name: StaticString) -> Bool {
            guard name.utf8CodeUnitCount == len else { return false }
            let p = name.utf8Start
            for i in 0..<len where (bytes[start + i] | 0x20) != p[i] { return false }
            return true
        }
        switch len {
        case 2: return eq("to") ? .to : .other
        case 3: return eq("via") ? .via : .other
        case 4: return eq("cseq") ? .cseq : eq("from") ? .from : .other
        case 5: return eq("route") ? .route : .other
        case 7: return eq("call-id") ? .callID : .other
        case 10: return eq("user-agent") ? .userAgent : .other
        case 11: return eq("retry-after") ? .retryAfter : .other
        case 12: return eq("record-route") ? .recordRoute : eq("max-forwards") ? .maxForwards : eq("content-type") ? .contentType : .other
        case 13: return eq("proxy-require") ? .proxyRequire : .other
        case 14: return eq("content-length") ? .contentLength : .other
        default: return .other
        }
    }

    /// Splits a header value into its comma-separated elements, honouring quotes and <...>
    /// (RFC 3261 §7.3.1), returning trimmed byte ranges.
    /// Calls `body` with each element's trimmed range, in order (no array is made).
    @inline(__always)
    static func forEachValue<E: Error>(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Range<Int>) throws(E) -> Void) throws(E) {
        // Most fields hold one value: no comma at all means no split (and the value is trimmed).
        if indexOf(UInt8(ascii: ","), in: bytes, from: start, to: end) == nil {
            try body(trim(bytes, start, end))
            return
        }
        var inQuotes = false
        var inAngle = false
        var elementStart = start
        var i = start
        while i < end {
            let b = bytes[i]
            if inQuotes {
                if b == UInt8(ascii: "\\") { i += 2; continue }
                if b == UInt8(ascii: "\"") { inQuotes = false }
            } else if b == UInt8(ascii: "\"") {
                inQuotes = true
            } else if b == UInt8(ascii: "<") {
                inAngle = true
            } else if b == UInt8(ascii: ">") {
                inAngle = false
            } else if b == UInt8(ascii: ","), !inAngle {
                try body(trim(bytes, elementStart, i))
                elementStart = i + 1
            }
            i += 1
        }
        try body(trim(bytes, elementStart, min(end, bytes.count)))
    }

    static func trim(_ bytes: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Range<Int> {
        var s = s
        var e = e
        while s < e, isWhitespace(bytes[s]) { s += 1 }
        while e > s, isWhitespace(bytes[e - 1]) { e -= 1 }
        return s..<e
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
