/// `application/x-www-form-urlencoded` fields, in order, with repeated keys kept (Twilio's
/// `StatusCallbackEvent=ringing&StatusCallbackEvent=answered`).
struct FormFields: Sendable {
    private(set) var pairs: [(key: String, value: String)] = []

    /// Nil when a name or value is not valid percent-encoded UTF-8.
    static func parse(_ text: some StringProtocol) -> FormFields? {
        var fields = FormFields()
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(kv[0]), !key.isEmpty else { return nil }
            guard let value = kv.count > 1 ? decode(kv[1]) : "" else { return nil }
            fields.pairs.append((key, value))
        }
        return fields
    }

    /// `+` is a space; `%XY` a byte; the bytes must be UTF-8.
    static func decode(_ s: some StringProtocol) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            switch c {
            case 43: out.append(32)
            case 37:
                guard let h = it.popFirst(), let l = it.popFirst(), let hi = hex(h), let lo = hex(l) else { return nil }
                out.append(hi << 4 | lo)
            default: out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }

    /// The first value of `key`.
    subscript(_ key: String) -> String? { pairs.first { $0.key == key }?.value }

    /// Every value of `key`, in order.
    func all(_ key: String) -> [String] { pairs.filter { $0.key == key }.map(\.value) }

    /// Percent-encodes for a query: everything but unreserved characters.
    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 48...57, 65...90, 97...122, 45, 46, 95, 126: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let h = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [h[Int(b >> 4)], h[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}
