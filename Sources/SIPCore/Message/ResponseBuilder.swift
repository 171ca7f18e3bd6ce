public import NIOCore

/// Builds responses a proxy sends itself (RFC 3261 §8.2.6, §16.3): 100 Trying, 200 to CANCEL or
/// OPTIONS, 4xx/5xx for requests it rejects. Via, From, To, Call-ID and CSeq are copied as raw
/// lines from the request, so they are byte-identical to what the client sent.
public enum ResponseBuilder {
    /// A response to `request`. `toTag` is added to To when the request has none and the status
    /// is above 100 (§8.2.6.2). `extraHeaders` are complete lines without line ends.
    /// `body`, when given, is sent with its `contentType`; `server` names the product in `Server`
    /// (nil leaves the header out).
    public static func response(
        to request: SIPMessage, status: Int, reason: String, toTag: String? = nil, extraHeaders: [String] = [],
        body: (contentType: String, text: String)? = nil, server: String? = "switchyard",
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: 512 + (body?.text.utf8.count ?? 0))
        request.bytes.withUnsafeReadableBytes { raw in
            write(
                into: &out, raw: raw, layout: request.layout, status: status, reason: reason,
                toTag: request.toTag == nil && status > 100 ? toTag : nil, extraHeaders: extraHeaders, body: body, server: server)
        }
        return out
    }

    /// The error response for bytes that failed to parse, when the error allows an answer and
    /// the request's Via, From, To, Call-ID and CSeq lines can be found. Never for ACK (§17.2.1)
    /// nor for responses.
    public static func rejection(for buffer: ByteBuffer, error: SIPParseError, limits: SIPLimits, server: String? = "switchyard") -> ByteBuffer? {
        guard error.canRespond else { return nil }
        return buffer.withUnsafeReadableBytes { raw -> ByteBuffer? in
            var start = 0
            while start < raw.count, raw[start] == 13 || raw[start] == 10 { start += 1 }
            let body = UnsafeRawBufferPointer(rebasing: raw[start...])
            guard !body.starts(with: "SIP/".utf8), !body.starts(with: "ACK ".utf8), looksLikeRequestLine(body),
                let layout = try? HeaderScanner.scan(body, limits: limits, lenient: true)
            else { return nil }
            for kind in [HeaderKind.via, .from, .to, .callID, .cseq] where layout.first(kind) == nil { return nil }
            var out = ByteBufferAllocator().buffer(capacity: 512)
            // A stable tag per Call-ID line, so retransmissions get the same To tag.
            let cid = layout.first(.callID)!
            let tag = "sy" + hex(fnv1a(UnsafeRawBufferPointer(rebasing: body[cid.valueStart..<cid.valueEnd])))
            // A 513 answers a message with too many or too long headers: echo only its top Via,
            // so the answer stays small (it only has to reach the sender).
            write(
                into: &out, raw: body, layout: layout, status: error.statusCode, reason: error.reason,
                toTag: hasTag(body, layout.first(.to)!) ? nil : tag, extraHeaders: [], onlyTopVia: error.statusCode == 513, server: server)
            return out
        }
    }

    /// `METHOD SP Request-URI SP SIP/x.y`: only such a line identifies a request worth answering.
    static func looksLikeRequestLine(_ raw: UnsafeRawBufferPointer) -> Bool {
        var end = 0
        while end < raw.count, end < 8192, raw[end] != 10, raw[end] != 13 { end += 1 }
        guard end < raw.count else { return false }
        // Extra or trailing spaces (RFC 4475 §3.1.2.8-10) still make a recognisable request.
        while end > 0, raw[end - 1] == 32 || raw[end - 1] == 9 { end -= 1 }
        var spaces: [Int] = []
        for i in 0..<end where raw[i] == 32 { spaces.append(i) }
        guard spaces.count >= 2, spaces[0] > 0, spaces[spaces.count - 1] > spaces[0] + 1 else { return false }
        let version = UnsafeRawBufferPointer(rebasing: raw[(spaces[spaces.count - 1] + 1)..<end])
        return version.starts(with: "SIP/".utf8) && version.count > 4
    }

    private static func write(
        into out: inout ByteBuffer, raw: UnsafeRawBufferPointer, layout: MessageLayout, status: Int, reason: String,
        toTag: String?, extraHeaders: [String], onlyTopVia: Bool = false, body: (contentType: String, text: String)? = nil,
        server: String? = "switchyard"
    ) {
        out.writeString("SIP/2.0 \(status) \(sanitize(reason))\r\n")
        var wroteVia = false
        for f in layout.fields {
            switch f.kind {
            case .via:
                if onlyTopVia && wroteVia { continue }
                wroteVia = true
                writeLine(&out, raw, f)
            case .from, .callID, .cseq:
                writeLine(&out, raw, f)
            case .to:
                if let toTag {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[f.lineStart..<f.valueEnd]))
                    out.writeString(";tag=\(toTag)\r\n")
                } else {
                    writeLine(&out, raw, f)
                }
            default:
                continue
            }
        }
        for h in extraHeaders {
            out.writeString(h)
            out.writeString("\r\n")
        }
        if let server {
            if server == "switchyard" {
                out.writeStaticString("Server: switchyard\r\n")
            } else {
                out.writeString("Server: \(server)\r\n")
            }
        }
        if let body {
            out.writeString("Content-Type: \(body.contentType)\r\nContent-Length: \(body.text.utf8.count)\r\n\r\n")
            out.writeString(body.text)
        } else {
            out.writeStaticString("Content-Length: 0\r\n\r\n")
        }
    }

    /// Copies a header field, normalising its final line end to CRLF.
    private static func writeLine(_ out: inout ByteBuffer, _ raw: UnsafeRawBufferPointer, _ f: HeaderField) {
        var end = f.lineEnd
        while end > f.lineStart, raw[end - 1] == 10 || raw[end - 1] == 13 { end -= 1 }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[f.lineStart..<end]))
        out.writeString("\r\n")
    }

    private static func hasTag(_ raw: UnsafeRawBufferPointer, _ f: HeaderField) -> Bool {
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: raw[f.valueStart..<f.valueEnd]), as: UTF8.self).lowercased()
        return value.contains(";tag=") || value.contains("; tag=")
    }

    /// The RFC 3261 §21 reason phrase for `code`, or a generic one for its class.
    public static func defaultReason(_ code: Int) -> String {
        switch code {
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 480: "Temporarily Unavailable"
        case 486: "Busy Here"
        case 487: "Request Terminated"
        case 500: "Server Internal Error"
        case 503: "Service Unavailable"
        case 603: "Decline"
        default: code < 400 ? "Redirection" : code < 500 ? "Client Error" : code < 600 ? "Server Error" : "Global Failure"
        }
    }

    /// Reason phrases are ASCII text without control characters (RFC 3261 §25.1).
    static func sanitize(_ reason: String) -> String {
        if reason.utf8.count <= 80, reason.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) { return reason }
        return String(String.UnicodeScalarView(reason.unicodeScalars.filter { $0.value >= 32 && $0.value < 127 }).prefix(80))
    }
}

/// FNV-1a, 32 bit: cheap, stable hashing for branch and tag values (not for security).
@inlinable
public func fnv1a(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 2_166_136_261) -> UInt32 {
    var h = seed
    for b in bytes {
        h ^= UInt32(b)
        h &*= 16_777_619
    }
    return h
}

/// FNV-1a over a string's UTF-8 bytes, continuing from `seed`.
@inlinable
public func fnv1a(_ text: String, seed: UInt32 = 2_166_136_261) -> UInt32 {
    // A native string's bytes are contiguous: hash them as bytes (the UTF8View iterator costs
    // several times more per byte).
    if let h = text.utf8.withContiguousStorageIfAvailable({ fnv1a(UnsafeRawBufferPointer($0), seed: seed) }) { return h }
    var h = seed
    for b in text.utf8 {
        h ^= UInt32(b)
        h &*= 16_777_619
    }
    return h
}

/// FNV-1a over the decimal digits of `n`, as `fnv1a(String(n), seed:)` without the String.
@inlinable
public func fnv1a(decimal n: UInt32, seed: UInt32 = 2_166_136_261) -> UInt32 {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { digits in
        var v = n
        var i = 10
        repeat {
            i -= 1
            digits[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
        } while v > 0
        return fnv1a(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: digits[i...])), seed: seed)
    }
}

/// Eight lower-case hex digits (a small string: no allocation).
@inlinable
public func hex(_ v: UInt32) -> String {
    String(unsafeUninitializedCapacity: 8) { buf in
        writeHex(v, into: buf.baseAddress!)
        return 8
    }
}

/// Writes the eight lower-case hex digits of `v` at `p`.
@inlinable
public func writeHex(_ v: UInt32, into p: UnsafeMutablePointer<UInt8>) {
    for k in 0..<8 {
        let nibble = UInt8((v >> UInt32(28 - 4 * k)) & 0xF)
        p[k] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
