internal import COSIP
public import NIOCore

/// libosip2's global parser tables, built once (a global `let` runs under `swift_once`).
private let osipReady: Bool = {
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
    public static func parse(_ buffer: ByteBuffer, limits: SIPLimits = .default, datagram: Bool = true) -> ParseOutcome {
        do {
            return .message(try parseOrThrow(buffer, limits: limits, datagram: datagram))
        } catch {
            return .rejected(error, response: ResponseBuilder.rejection(for: buffer, error: error, limits: limits))
        }
    }

    /// Parses one message or throws the reason it is unacceptable.
    public static func parseOrThrow(_ buffer: ByteBuffer, limits: SIPLimits = .default, datagram: Bool = true) throws(SIPParseError) -> SIPMessage {
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
        let scanned: Result<(MessageLayout, Int, Bool), SIPParseError> = buffer.withUnsafeReadableBytes { raw in
            do {
                let layout = try HeaderScanner.scan(raw, limits: limits)
                let (length, hasCL) = try messageLength(raw, layout: layout, limits: limits, datagram: datagram)
                return .success((layout, length, hasCL))
            } catch let e as SIPParseError {
                return .failure(e)
            } catch {
                return .failure(SIPParseError(.syntax, "Unreadable Message"))
            }
        }
        let (layout, length, hasContentLength) = try scanned.get()
        let bytes = buffer.getSlice(at: buffer.readerIndex, length: length)!
        return try bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
            try extract(bytes: bytes, raw: raw, layout: layout, hasContentLength: hasContentLength)
        }
    }

    /// The message length: header section plus Content-Length bytes of body.
    static func messageLength(_ raw: UnsafeRawBufferPointer, layout: MessageLayout, limits: SIPLimits, datagram: Bool) throws(SIPParseError) -> (Int, Bool) {
        let available = raw.count - layout.bodyStart
        if layout.all(.contentLength).count > 1 {
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

    private static func extract(bytes: ByteBuffer, raw: UnsafeRawBufferPointer, layout: MessageLayout, hasContentLength: Bool) throws(SIPParseError) -> SIPMessage {
        var msgPtr: UnsafeMutablePointer<osip_message_t>?
        guard osip_message_init(&msgPtr) == 0, let m = msgPtr else { throw SIPParseError(.syntax, "Parser Unavailable") }
        defer { osip_message_free(m) }
        let rc = raw.withMemoryRebound(to: CChar.self) { osip_message_parse(m, $0.baseAddress, $0.count) }
        let looksLikeRequest = !raw.starts(with: "SIP/".utf8)
        guard rc == 0 else {
            throw SIPParseError(.syntax, looksLikeRequest ? "Malformed Request" : "Malformed Response", canRespond: looksLikeRequest)
        }

        // Start line.
        let startLine: SIPMessage.StartLine
        var requestURIRange: Range<Int>?
        if let methodC = m.pointee.sip_method {
            let method = SIPMethod(String(cString: methodC))
            guard string(m.pointee.sip_version) == "SIP/2.0" else {
                throw SIPParseError(.unsupportedVersion, "Version Not Supported", canRespond: true, statusCode: 505)
            }
            guard let uriC = m.pointee.req_uri, let uri = sipURI(uriC) else {
                throw SIPParseError(.badStartLine, "Invalid Request-URI", canRespond: true)
            }
            // The URI sits between the first and the second space of the request line.
            if let sp1 = firstIndex(of: 32, raw, 0, layout.startLineEnd),
                let sp2 = lastIndex(of: 32, raw, sp1 + 1, layout.startLineEnd)
            {
                requestURIRange = (sp1 + 1)..<sp2
            }
            startLine = .request(method: method, uri: uri)
        } else {
            let code = Int(m.pointee.status_code)
            guard (100...699).contains(code) else { throw SIPParseError(.badStartLine, "Invalid Status Code") }
            startLine = .response(statusCode: code, reason: string(m.pointee.reason_phrase) ?? "")
        }
        let isRequest = m.pointee.sip_method != nil

        // Via (RFC 3261 §8.1.1.7): required, and the top one must be usable to answer at all.
        let viaCount = Int(cosip_via_count(m))
        guard viaCount > 0 else { throw SIPParseError(.missingHeader, "Missing Via") }
        var vias: [Via] = []
        vias.reserveCapacity(viaCount)
        for i in 0..<viaCount {
            guard let v = cosip_via_at(m, Int32(i)), let via = via(v) else {
                throw SIPParseError(.badHeaderValue, "Invalid Via", canRespond: i > 0)
            }
            vias.append(via)
        }
        guard let viaField = layout.first(.via) else { throw SIPParseError(.missingHeader, "Missing Via") }
        let viaElements = HeaderScanner.splitValues(raw, viaField.valueStart, viaField.valueEnd)
        let topViaRange = viaElements[0]
        let emptyRPortEnd = emptyRPortEnd(raw, topViaRange)

        // Call-ID, CSeq, From, To (RFC 3261 §8.1.1).
        guard let cid = m.pointee.call_id, let number = string(cid.pointee.number) else {
            throw SIPParseError(.missingHeader, "Missing Call-ID", canRespond: true)
        }
        let callID = cid.pointee.host.map { "\(number)@\(String(cString: $0))" } ?? number
        guard let cseqC = m.pointee.cseq, let numText = string(cseqC.pointee.number), let seq = UInt32(numText),
            let methodText = string(cseqC.pointee.method)
        else {
            throw SIPParseError(.missingHeader, "Missing or Invalid CSeq", canRespond: true)
        }
        let cseq = CSeq(number: seq, method: SIPMethod(methodText))
        if case .request(let method, _) = startLine, method != cseq.method {
            throw SIPParseError(.cseqMethodMismatch, "CSeq Method Does Not Match", canRespond: true)
        }
        guard let from = m.pointee.from else { throw SIPParseError(.missingHeader, "Missing From", canRespond: true) }
        guard let to = m.pointee.to else { throw SIPParseError(.missingHeader, "Missing To", canRespond: true) }
        let fromTag = param(&from.pointee.gen_params, "tag")
        let toTag = param(&to.pointee.gen_params, "tag")

        // Max-Forwards (RFC 3261 §8.1.1.6): a decimal; libosip2 keeps it as an unknown header.
        var maxForwards: Int?
        if let f = layout.first(.maxForwards) {
            guard let v = parseDecimal(raw, f.valueStart, f.valueEnd, max: 65_535) else {
                throw SIPParseError(.badHeaderValue, "Invalid Max-Forwards", canRespond: isRequest)
            }
            maxForwards = v
        }

        // Route: libosip2's parsed URIs, paired with our byte ranges in the same order.
        var routes: [SIPMessage.Route] = []
        let routeFields = layout.all(.route)
        if !routeFields.isEmpty {
            var ranges: [(Range<Int>, Int)] = []
            for (fi, f) in routeFields.enumerated() {
                for r in HeaderScanner.splitValues(raw, f.valueStart, f.valueEnd) { ranges.append((r, fi)) }
            }
            let count = Int(cosip_route_count(m))
            guard count == ranges.count else { throw SIPParseError(.badHeaderValue, "Invalid Route", canRespond: isRequest) }
            for i in 0..<count {
                guard let r = cosip_route_at(m, Int32(i)), let u = r.pointee.url, let uri = sipURI(u), uri.isSIP else {
                    throw SIPParseError(.badHeaderValue, "Invalid Route", canRespond: isRequest)
                }
                routes.append(.init(uri: uri, range: ranges[i].0, fieldIndex: ranges[i].1))
            }
        }

        var proxyRequire: [String] = []
        for f in layout.all(.proxyRequire) {
            for r in HeaderScanner.splitValues(raw, f.valueStart, f.valueEnd) where !r.isEmpty {
                proxyRequire.append(String(decoding: UnsafeRawBufferPointer(rebasing: raw[r]), as: UTF8.self))
            }
        }

        return SIPMessage(
            bytes: bytes, startLine: startLine, vias: vias, callID: callID, cseq: cseq, fromTag: fromTag, toTag: toTag,
            maxForwards: maxForwards, routes: routes, proxyRequire: proxyRequire, hasContentLength: hasContentLength,
            layout: layout, topViaRange: topViaRange, topViaFieldHasMore: viaElements.count > 1,
            topViaEmptyRPortEnd: emptyRPortEnd, requestURIRange: requestURIRange
        )
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

    private static func via(_ v: UnsafeMutablePointer<osip_via_t>) -> Via? {
        guard let proto = string(v.pointee.protocol), let host = string(v.pointee.host), !host.isEmpty else { return nil }
        var port: Int?
        if let p = string(v.pointee.port) {
            guard let n = Int(p), (1...65_535).contains(n) else { return nil }
            port = n
        }
        var rport = Via.RPort.absent
        if let r = param(&v.pointee.via_params, "rport") {
            if r.isEmpty {
                rport = .requested
            } else if let n = Int(r), (1...65_535).contains(n) {
                rport = .value(n)
            } else {
                return nil
            }
        }
        return Via(
            transport: proto.uppercased(), host: host, port: port, branch: param(&v.pointee.via_params, "branch"),
            received: param(&v.pointee.via_params, "received"), rport: rport, maddr: param(&v.pointee.via_params, "maddr")
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
        return SIPURI(
            scheme: scheme, user: string(u.pointee.username), host: host, port: port,
            transport: param(&u.pointee.url_params, "transport")?.lowercased(), lr: param(&u.pointee.url_params, "lr") != nil,
            maddr: param(&u.pointee.url_params, "maddr")
        )
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
