public import NIOCore

/// Why a SIP byte stream had to be closed.
public struct SIPStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let raw: String
        public var description: String { raw }
        /// No empty line within `SIPLimits.maxHeaderSectionSize` bytes.
        public static let headerSectionTooLarge = Code(raw: "headerSectionTooLarge")
        /// Content-Length is not a number, or above `SIPLimits.maxBodySize`.
        public static let badContentLength = Code(raw: "badContentLength")
        /// The header section could not be scanned (too many headers, no colon...).
        public static let malformedHeaders = Code(raw: "malformedHeaders")
    }

    public let code: Code
    /// The first bytes of the offending data (at most 64), for the log line.
    public let sample: String
    /// The start of the offending message (at most `maxHeaderSectionSize` bytes), so the
    /// connection can answer it (400/513) before closing.
    public var head: ByteBuffer?

    /// The status an answer to the offending request carries.
    public var statusCode: Int { code == .headerSectionTooLarge ? 513 : 400 }

    /// The answer to send before closing, when the offending bytes are a request whose Via,
    /// From, To, Call-ID and CSeq lines can be found (RFC 3261 §16.3); nil otherwise.
    public func rejection(limits: SIPLimits = .default, server: String? = "switchyard") -> ByteBuffer? {
        guard let head else { return nil }
        let reason = code == .headerSectionTooLarge ? "Header Section Too Large" : code == .badContentLength ? "Invalid Content-Length" : "Malformed Headers"
        return ResponseBuilder.rejection(
            for: head, error: SIPParseError(.syntax, reason, canRespond: true, statusCode: statusCode), limits: limits, server: server)
    }

    public var description: String { "SIPStreamError(\(code), sample: \(sample.debugDescription))" }
}

/// Frames SIP messages on a stream transport by Content-Length (RFC 3261 §18.3).
///
/// Returns nil on partial input without consuming it; throws `SIPStreamError` (and the handler
/// closes the connection) when a limit is exceeded, so a peer cannot make it buffer without bound.
public struct SIPStreamDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let limits: SIPLimits

    public init(limits: SIPLimits = .default) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        // Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped.
        while let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), b == 13 || b == 10 {
            buffer.moveReaderIndex(forwardBy: 1)
        }
        guard buffer.readableBytes > 0 else { return nil }
        let limits = self.limits
        let frameLength: Int?
        do {
            frameLength = try frame(buffer, limits: limits)
        } catch let error as SIPStreamError {
            throw attachHead(error, buffer)
        }
        guard let frameLength else { return nil }
        return buffer.readSlice(length: frameLength)
    }

    private func frame(_ buffer: ByteBuffer, limits: SIPLimits) throws -> Int? {
        try buffer.withUnsafeReadableBytes { raw -> Int? in
            let window = min(raw.count, limits.maxHeaderSectionSize)
            guard let headerEnd = Self.headerEnd(raw, window) else {
                if raw.count >= limits.maxHeaderSectionSize { throw Self.error(.headerSectionTooLarge, raw) }
                return nil
            }
            let head = UnsafeRawBufferPointer(rebasing: raw[0..<headerEnd])
            let layout: MessageLayout
            // Framing needs only the header end and Content-Length: a header the parser will
            // refuse (a duplicate To, a control byte) gets its 400 on an open connection.
            do {
                layout = try HeaderScanner.scan(head, limits: limits, lenient: true)
            } catch {
                throw Self.error(.malformedHeaders, raw)
            }
            if layout.count(.contentLength) > 1 { throw Self.error(.badContentLength, raw) }
            var contentLength = 0
            if let f = layout.first(.contentLength) {
                guard let cl = SIPMessageParser.parseDecimal(head, f.valueStart, f.valueEnd, max: limits.maxBodySize) else {
                    throw Self.error(.badContentLength, raw)
                }
                contentLength = cl
            }
            let total = layout.bodyStart + contentLength
            return raw.count >= total ? total : nil
        }
    }

    private func attachHead(_ error: SIPStreamError, _ buffer: ByteBuffer) -> SIPStreamError {
        var e = error
        e.head = buffer.getSlice(at: buffer.readerIndex, length: min(buffer.readableBytes, limits.maxHeaderSectionSize + 4_096))
        return e
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }

    /// Offset just past the first empty line (CRLFCRLF or LFLF) within `window`, if any.
    static func headerEnd(_ raw: UnsafeRawBufferPointer, _ window: Int) -> Int? {
        var i = 0
        while i < window {
            guard let lf = HeaderScanner.indexOf(10, in: raw, from: i, to: window) else { return nil }
            var j = lf + 1
            if j < window, raw[j] == 13 { j += 1 }
            if j < window, raw[j] == 10 { return j + 1 }
            if j == window, j < raw.count, raw[j - 1] == 13, raw[j] == 10 { return j + 1 }
            i = lf + 1
        }
        return nil
    }

    static func error(_ code: SIPStreamError.Code, _ raw: UnsafeRawBufferPointer) -> SIPStreamError {
        let sample = String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<min(64, raw.count)]), as: UTF8.self)
        return SIPStreamError(code: code, sample: sample, head: nil)
    }
}
