public import NIOCore

/// Frames Event Socket bytes (mod_event_socket `read_packet`): a header block ended by a blank
/// line (`\n\n`, `\r` tolerated), then exactly `Content-Length` body bytes when that header is
/// present. Leading stray CR/LF are skipped. Partial input returns nil and leaves the reader
/// index where it was; limits are checked while scanning, so a peer can never make it buffer
/// more than `maxHeaderBytes` of headers or `maxBodyBytes` of body.
public struct ESLFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ESLFrame

    public enum Direction: Sendable {
        /// Frames from a server: every header line is `Name: value`.
        case fromServer
        /// Commands from a client: the first line is the command.
        case fromClient
    }

    public let direction: Direction
    public let maxHeaderBytes: Int
    public let maxBodyBytes: Int

    /// FreeSWITCH's own cap on a packet is 10 MiB; the defaults are that for bodies and 64 KiB
    /// for a header block.
    public init(direction: Direction, maxHeaderBytes: Int = 64 * 1024, maxBodyBytes: Int = 10 * 1024 * 1024) {
        self.direction = direction
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws(ESLError) -> ESLFrame? {
        let found: (skip: Int, headerEnd: Int, next: Int)? = buffer.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count, raw[start] == 10 || raw[start] == 13 { start += 1 }
            // Look for LF (CR)? LF after `start`.
            var i = start
            let limit = min(raw.count, start + maxHeaderBytes)
            while i < limit {
                if raw[i] == 10 {
                    var j = i + 1
                    if j < raw.count, raw[j] == 13 { j += 1 }
                    if j < raw.count, raw[j] == 10 { return (start, i, j + 1) }
                }
                i += 1
            }
            return nil
        }
        guard let found else {
            if buffer.readableBytes > maxHeaderBytes + 16 {
                throw ESLError(.frameTooLarge, "header block longer than \(maxHeaderBytes) bytes")
            }
            return nil
        }
        guard let text = buffer.getString(at: buffer.readerIndex + found.skip, length: found.headerEnd - found.skip) else {
            throw ESLError(.malformedFrame, "unreadable header block")
        }
        // Split on LF by scalar: "\r\n" is one Character in Swift, so a Character split would not see it.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars -> Substring in
            let line = Substring(scalars)
            return line.hasSuffix("\r") ? line.dropLast() : line
        }
        var frame = ESLFrame()
        if direction == .fromClient {
            frame.command = String(lines.removeFirst())
        }
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw ESLError(.malformedFrame, "header line without a colon: \(line.prefix(80).debugDescription)")
            }
            let name = line[..<colon].trimmingSpaces()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            frame.headers.add(String(name), String(value))
        }
        var consumed = found.next
        if let lengthText = frame.headers["Content-Length"] {
            guard let length = Int(lengthText), length >= 0 else {
                throw ESLError(.malformedFrame, "Content-Length \(lengthText.prefix(40).debugDescription)")
            }
            guard length <= maxBodyBytes else {
                throw ESLError(.frameTooLarge, "body of \(length) bytes (limit \(maxBodyBytes))")
            }
            guard buffer.readableBytes >= consumed + length else { return nil }
            frame.body = buffer.getString(at: buffer.readerIndex + consumed, length: length)
            consumed += length
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return frame
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws(ESLError) -> ESLFrame? {
        try decode(buffer: &buffer)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
