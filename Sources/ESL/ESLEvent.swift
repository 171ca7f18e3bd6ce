import Foundation

/// A FreeSWITCH event: headers (`Event-Name`, `Unique-ID`, `variable_*` ...) and an optional body
/// (a BACKGROUND_JOB's API output, for instance).
public struct ESLEvent: Sendable, Hashable {
    public var headers: ESLHeaders
    public var body: String?

    public init(headers: ESLHeaders = ESLHeaders(), body: String? = nil) {
        self.headers = headers
        self.body = body
    }

    public subscript(_ name: String) -> String? { headers[name] }

    /// `Event-Name` (CHANNEL_CREATE, HEARTBEAT, BACKGROUND_JOB, CUSTOM ...).
    public var name: String { headers["Event-Name"] ?? "" }

    /// The channel's `Unique-ID`, for CHANNEL_* events.
    public var uniqueID: String? { headers["Unique-ID"] }

    /// `Core-UUID`: changes every time FreeSWITCH restarts.
    public var coreUUID: String? { headers["Core-UUID"] }

    /// `Event-Date-Timestamp`: microseconds since the Unix epoch.
    public var timestampMicros: Int64? { headers["Event-Date-Timestamp"].flatMap { Int64($0) } }

    /// `Event-Sequence`: monotonic per FreeSWITCH boot.
    public var sequence: Int64? { headers["Event-Sequence"].flatMap { Int64($0) } }

    // MARK: text/event-plain

    /// Parses the payload of a `text/event-plain` frame: URL-encoded `Name: value` lines, then
    /// either a blank line or `Content-Length: n`, a blank line and n bytes of body
    /// (`switch_event_serialize` with encoding on).
    public static func parsePlain(_ payload: String) throws(ESLError) -> ESLEvent {
        // Works on UTF-8 bytes: Character-based scanning (grapheme breaking) cost most of a
        // worker's CPU at a few hundred calls per second. The headers keep the text and where
        // each name and value is; values are decoded when read (`ESLHeaderLines`).
        var payload = payload
        let parsed: (lines: [ESLHeaderLines.Line], body: String?)
        do {
            parsed = try payload.withUTF8 { bytes in try parsePlainLines(bytes) }
        } catch let error as ESLError {
            throw error
        } catch {
            throw ESLError(.malformedFrame, "\(error)")
        }
        return ESLEvent(headers: ESLHeaders(lines: ESLHeaderLines(text: payload, lines: parsed.lines)), body: parsed.body)
    }

    /// The header lines of a plain event (URL-encoded `Name: value` lines, then either a blank
    /// line or `Content-Length: n`, a blank line and n bytes of body: `switch_event_serialize`
    /// with encoding on), and its body.
    static func parsePlainLines(_ bytes: UnsafeBufferPointer<UInt8>) throws(ESLError) -> (lines: [ESLHeaderLines.Line], body: String?) {
        guard bytes.count < Int(Int32.max) else { throw ESLError(.malformedFrame, "event larger than 2 GiB") }
        var lines: [ESLHeaderLines.Line] = []
        lines.reserveCapacity(128)
        var body: String?
        var hasEventName = false
        let n = bytes.count
        var i = 0
        var contentLength: Int?
        // ASCII letters' case ignored, as header lookups do.
        @inline(__always) func isName(_ s: Int, _ e: Int, _ name: StaticString) -> Bool {
            guard e - s == name.utf8CodeUnitCount else { return false }
            for k in 0..<(e - s) where bytes[s + k] != name.utf8Start[k] {
                let x = bytes[s + k] | 0x20
                if x != (name.utf8Start[k] | 0x20) || x < 97 || x > 122 { return false }
            }
            return true
        }
        while i < n {
            var end = i
            while end < n, bytes[end] != 10 { end += 1 }
            var lineEnd = end
            if lineEnd > i, bytes[lineEnd - 1] == 13 { lineEnd -= 1 }
            let next = end + 1
            if lineEnd == i {
                // Blank line: the body follows (when announced).
                if let length = contentLength {
                    let start = min(next, n)
                    let stop = length > n - start ? n : start + length
                    body = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self)
                }
                break
            }
            var colon = i
            while colon < lineEnd, bytes[colon] != 58 { colon += 1 }
            guard colon < lineEnd else {
                let line = String(decoding: UnsafeBufferPointer(rebasing: bytes[i..<lineEnd]), as: UTF8.self)
                throw ESLError(.malformedFrame, "event header without a colon: \(line.prefix(80).debugDescription)")
            }
            var nameEnd = colon
            while nameEnd > i, bytes[nameEnd - 1] == 32 || bytes[nameEnd - 1] == 9 { nameEnd -= 1 }
            var valueStart = colon + 1
            while valueStart < lineEnd, bytes[valueStart] == 32 || bytes[valueStart] == 9 { valueStart += 1 }
            var valueEnd = lineEnd
            while valueEnd > valueStart, bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9 { valueEnd -= 1 }
            let value = UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            // Exactly "Content-Length", as before (it announces the body; it is not a header).
            if nameEnd - i == 14, memcmp(bytes.baseAddress! + i, "Content-Length", 14) == 0 {
                let text = urlDecode(value)
                guard let length = Int(text), length >= 0 else {
                    throw ESLError(.malformedFrame, "event Content-Length \(text.prefix(40).debugDescription)")
                }
                contentLength = length
            } else {
                if !hasEventName, isName(i, nameEnd, "Event-Name") { hasEventName = true }
                lines.append(
                    ESLHeaderLines.Line(
                        nameStart: Int32(i), nameEnd: Int32(nameEnd), valueStart: Int32(valueStart), valueEnd: Int32(valueEnd),
                        encoded: value.contains(37)))
            }
            i = next
        }
        guard hasEventName else { throw ESLError(.malformedFrame, "event without Event-Name") }
        return (lines, body)
    }

    /// Percent-decodes bytes (`%41` → `A`; a `%` without two hex digits stays as it is).
    static func urlDecode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.contains(37) else { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 37, i + 2 < bytes.count, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The `text/event-plain` payload of this event, values URL-encoded as FreeSWITCH does.
    public func serializedPlain() -> String {
        var out = ""
        out.reserveCapacity(headers.count * 40)
        for f in headers {
            out += f.name
            out += ": "
            out += ESLEvent.urlEncode(f.value)
            out += "\n"
        }
        if let body, !body.isEmpty {
            out += "Content-Length: \(body.utf8.count)\n\n"
            out += body
        } else {
            out += "\n"
        }
        return out
    }

    // MARK: text/event-json

    /// Parses a `text/event-json` payload: one JSON object of strings, the body under `_body`.
    public static func parseJSON(_ payload: String) throws(ESLError) -> ESLEvent {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else {
            throw ESLError(.malformedFrame, "event JSON is not an object")
        }
        var event = ESLEvent()
        // JSON objects have no order; FreeSWITCH's own output starts with Event-Name.
        for key in object.keys.sorted(by: { a, b in (a == "Event-Name" ? 0 : 1, a) < (b == "Event-Name" ? 0 : 1, b) }) {
            let value: String
            switch object[key] {
            case let s as String: value = s
            case let n as NSNumber: value = n.stringValue
            default: continue
            }
            if key == "_body" { event.body = value } else { event.headers.add(key, value) }
        }
        guard event.headers["Event-Name"] != nil else { throw ESLError(.malformedFrame, "event without Event-Name") }
        return event
    }

    public func serializedJSON() -> String {
        var object: [String: String] = [:]
        for f in headers where object[f.name] == nil { object[f.name] = f.value }
        if let body { object["_body"] = body }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: URL encoding (switch_url_encode / switch_url_decode)

    /// Bytes FreeSWITCH percent-encodes in plain event values: controls, non-ASCII, and these.
    /// A table indexed by the byte (a Set lookup per byte hashed each one).
    private static let encoded: [Bool] = {
        let listed = Set("\r\n \"#%&+:;<=>?@[\\]^`{|}".utf8)
        return (0..<256).map { b in b < 32 || b > 126 || listed.contains(UInt8(b)) }
    }()

    public static func urlEncode(_ value: String) -> String {
        let utf8 = value.utf8
        let encoded = Self.encoded
        let needed = utf8.withContiguousStorageIfAvailable { bytes in bytes.contains { encoded[Int($0)] } } ?? utf8.contains { encoded[Int($0)] }
        guard needed else { return value }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 16)
        for b in utf8 {
            if encoded[Int(b)] {
                out.append(37)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func urlDecode(_ value: String) -> String {
        guard value.utf8.contains(37) else { return value }
        return Array(value.utf8).withUnsafeBufferPointer { urlDecode($0) }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }
}

extension ESLEvent {
    /// Decodes the body of an event frame according to its `Content-Type`.
    public static func from(frame: ESLFrame) throws(ESLError) -> ESLEvent {
        let payload = frame.body ?? ""
        switch frame.contentType {
        case "text/event-plain": return try parsePlain(payload)
        case "text/event-json": return try parseJSON(payload)
        default: throw ESLError(.unexpectedReply, "not an event frame: \(frame.contentType ?? "no Content-Type")")
        }
    }
}
