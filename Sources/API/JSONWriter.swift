import HTTPTypes
import Hummingbird

/// Writes the API's hot response bodies (calls and pages of calls) straight into bytes.
/// Foundation's `JSONEncoder` was the largest single cost of a create on the Twilio surface
/// (17 % of the API's CPU under `scripts/bench-api`, its call having 30 fields and a nested
/// object). Strings are escaped as RFC 8259 requires (quote, backslash, controls); slashes and
/// non-ASCII characters are written as they are, as before. Keys are written in the order given:
/// the resources write them sorted, so the bodies are the bytes `JSONEncoder` with
/// `.sortedKeys` produced.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        comma()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func array<T>(_ items: [T], _ each: (inout JSONWriter, T) -> Void) {
        comma()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        for item in items { each(&self, item) }
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// A key inside an object; the value follows.
    mutating func key(_ k: String) {
        comma()
        string(k)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    mutating func field(_ k: String, _ v: String?) {
        key(k)
        value(v)
    }

    mutating func field(_ k: String, _ v: Int?) {
        key(k)
        value(v)
    }

    /// An array of strings, or null for nil.
    mutating func field(_ k: String, _ v: [String]?) {
        key(k)
        if let v { array(v) { w, s in w.value(s) } } else { value(nil as String?) }
    }

    mutating func field(_ k: String, _ v: Bool?) {
        key(k)
        value(v)
    }

    mutating func value(_ v: String?) {
        comma()
        if let v { string(v) } else { bytes.append(contentsOf: [110, 117, 108, 108]) }
        needsComma = true
    }

    mutating func value(_ v: Int?) {
        comma()
        if let v { bytes.append(contentsOf: String(v).utf8) } else { bytes.append(contentsOf: [110, 117, 108, 108]) }
        needsComma = true
    }

    mutating func value(_ v: Bool?) {
        comma()
        switch v {
        case .some(true): bytes.append(contentsOf: [116, 114, 117, 101])
        case .some(false): bytes.append(contentsOf: [102, 97, 108, 115, 101])
        case .none: bytes.append(contentsOf: [110, 117, 108, 108])
        }
        needsComma = true
    }

    private mutating func comma() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    /// A string value written as `head` followed by `tail`, without building the joined string
    /// (a resource's URIs: one base, many suffixes).
    mutating func field(_ k: String, _ head: String, _ tail: String) {
        key(k)
        comma()
        bytes.append(34)
        unquoted(head)
        unquoted(tail)
        bytes.append(34)
        needsComma = true
    }

    private mutating func string(_ s: String) {
        bytes.append(34)
        unquoted(s)
        bytes.append(34)
    }

    /// `s` escaped as a JSON string's contents.
    private mutating func unquoted(_ s: String) {
        var s = s
        s.withUTF8 { u in
            // Most strings (ids, numbers, URLs, times) need no escape: one copy, not a byte at a time.
            guard u.contains(where: { $0 < 32 || $0 == 34 || $0 == 92 }) else {
                bytes.append(contentsOf: u)
                return
            }
            for b in u {
                switch b {
                case 34: bytes.append(contentsOf: [92, 34])
                case 92: bytes.append(contentsOf: [92, 92])
                case 10: bytes.append(contentsOf: [92, 110])
                case 13: bytes.append(contentsOf: [92, 114])
                case 9: bytes.append(contentsOf: [92, 116])
                case 8: bytes.append(contentsOf: [92, 98])
                case 12: bytes.append(contentsOf: [92, 102])
                case 0..<32:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [92, 117, 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
                default: bytes.append(b)
                }
            }
        }
    }
}

/// A body written by `JSONWriter`.
protocol JSONWritable {
    func write(to w: inout JSONWriter)
}

/// A JSON response with `value` as its body.
func jsonResponse(_ value: some JSONWritable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var h = headers
    h[.contentType] = "application/json"
    var w = JSONWriter()
    value.write(to: &w)
    return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: w.bytes)))
}

/// A digest of a validated request's canonical form (fields joined in a fixed order), to tell an
/// `Idempotency-Key` retry from a different request with the same key.
func requestDigest(_ canonical: String) -> String {
    var h: UInt64 = 14_695_981_039_346_656_037
    var h2: UInt64 = 0x9E37_79B9_7F4A_7C15
    for b in canonical.utf8 {
        h = (h ^ UInt64(b)) &* 1_099_511_628_211
        h2 = (h2 &+ UInt64(b)) &* 0xBF58_476D_1CE4_E5B9
    }
    return String(h, radix: 16) + String(h2, radix: 16)
}
