/// Twilio's identifiers for the accounts and calls of this platform: a two-letter prefix and the
/// 32 hex digits of the UUID (`AC…` for an account, `CA…` for a call). The same account and the
/// same call answer on `/v1` (by UUID) and on the Twilio surface (by SID).
public enum TwilioSID {
    public static let account = "AC"
    public static let call = "CA"

    /// `prefix` + the UUID's hex digits, lower-case.
    public static func make(_ prefix: String, uuid: String) -> String {
        var out = Array(prefix.utf8)
        out.reserveCapacity(out.count + 32)
        for c in uuid.utf8 where c != 45 { out.append((65...90).contains(c) ? c + 32 : c) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The UUID behind a SID with this prefix, or nil when it is not one (wrong prefix, length
    /// or digits).
    public static func uuid(_ sid: some StringProtocol, prefix: String) -> String? {
        let u = Array(sid.utf8)
        let p = Array(prefix.utf8)
        guard u.count == p.count + 32, u.starts(with: p) else { return nil }
        var hex: [UInt8] = []
        hex.reserveCapacity(36)
        for (i, c) in u.dropFirst(p.count).enumerated() {
            let lower: UInt8
            switch c {
            case 48...57, 97...102: lower = c
            case 65...70: lower = c + 32
            default: return nil
            }
            if i == 8 || i == 12 || i == 16 || i == 20 { hex.append(45) }
            hex.append(lower)
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
