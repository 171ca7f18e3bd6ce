/// The times of the Twilio surface: the store's ISO-8601 UTC timestamps
/// (`2026-01-02T03:04:05.123456Z`) read as seconds since the epoch, and written as RFC 2822
/// with a `+0000` zone (`Fri, 02 Jan 2026 03:04:05 +0000`), which is what Twilio's clients
/// parse. No Foundation formatter: both directions are pure arithmetic, safe on any thread.
public enum TwilioTime {
    /// Seconds since the epoch of `2026-01-02T03:04:05[.ffffff]Z` (or with a space for `T`,
    /// or a date alone), nil when it is not one.
    public static func epochSeconds(_ iso: some StringProtocol) -> Double? {
        let u = Array(iso.utf8)
        guard u.count >= 10, u[4] == 45, u[7] == 45 else { return nil }
        func n(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard (48...57).contains(u[i]) else { return nil }
                v = v * 10 + Int(u[i] - 48)
            }
            return v
        }
        guard let y = n(0..<4), let mo = n(5..<7), let d = n(8..<10), (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var h = 0, mi = 0, s = 0
        var fraction = 0.0
        if u.count > 10 {
            guard u.count >= 19, u[10] == 84 || u[10] == 32, u[13] == 58, u[16] == 58, let hh = n(11..<13), let mm = n(14..<16), let ss = n(17..<19),
                hh < 24, mm < 60, ss < 61
            else { return nil }
            (h, mi, s) = (hh, mm, ss)
            var i = 19
            if i < u.count, u[i] == 46 {
                i += 1
                var scale = 0.1
                while i < u.count, (48...57).contains(u[i]) {
                    fraction += Double(u[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
            }
            // Only UTC: `Z`, `+00`, `+0000`, `+00:00`, or nothing.
            let zone = String(decoding: u[i...], as: UTF8.self)
            guard ["", "Z", "+00", "+0000", "+00:00"].contains(zone) else { return nil }
        }
        return Double(days(year: y, month: mo, day: d) * 86400 + h * 3600 + mi * 60 + s) + fraction
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Fri, 02 Jan 2026 03:04:05 +0000`.
    public static func rfc2822(epochSeconds: Double) -> String {
        let t = Int(epochSeconds.rounded(.down))
        let z0 = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - z0 * 86400
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let wd = weekdays[((z0 % 7) + 7) % 7]
        return "\(wd), \(two(d)) \(months[m - 1]) \(y) \(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60)) +0000"
    }

    /// The RFC 2822 form of a store timestamp; nil for nil or an unreadable one.
    public static func rfc2822(iso: String?) -> String? {
        iso.flatMap { epochSeconds($0) }.map { rfc2822(epochSeconds: $0) }
    }
}
