public import Dispatcher
import NIOCore

/// Per-source flood control in the manner of Kamailio's `pike`: each source address gets a
/// window of `settings.window`; more than `settings.requests` messages in one window bans the
/// source for `settings.ban`, and a source that keeps flooding while banned stays banned. A
/// banned source's datagrams are dropped before they are parsed. A pure value: time is passed in.
///
/// Memory is bounded by `settings.maxSources` (windows and bans together). When the table is
/// full even after expired entries are swept, new sources pass uncounted (and `tableFull` says
/// so): they still meet the trunk check, so an unknown source is refused all the same.
struct FloodGuard {
    struct Ban {
        var address: String
        var since: ContinuousClock.Instant
        var until: ContinuousClock.Instant
        var dropped: Int
        var windowStart: ContinuousClock.Instant
        var windowCount: Int
    }

    enum Verdict: Equatable {
        case pass
        /// The message is dropped: the source is banned.
        case banned
        /// The message is dropped and the ban starts with it.
        case newlyBanned
    }

    private struct Window {
        var start: ContinuousClock.Instant
        var count: Int
    }

    var settings: FloodSettings
    private var windows: [UInt64: Window] = [:]
    private(set) var bans: [UInt64: Ban] = [:]
    private var nextSweep: ContinuousClock.Instant?
    /// New sources went uncounted because the table was full.
    private(set) var tableFull = false

    init(settings: FloodSettings) {
        self.settings = settings
    }

    var trackedSources: Int { windows.count + bans.count }

    /// Counts one message from `key` (see `SIPEndpoint.sourceKey`); `address` names the source
    /// in the ban list and is made only when a ban starts.
    mutating func admit(_ key: UInt64, address: @autoclosure () -> String, now: ContinuousClock.Instant) -> Verdict {
        if var ban = bans[key] {
            if now < ban.until {
                ban.dropped += 1
                if now - ban.windowStart < settings.window {
                    ban.windowCount += 1
                    // Still flooding: the ban runs on from now.
                    if ban.windowCount > settings.requests { ban.until = now + settings.ban }
                } else {
                    ban.windowStart = now
                    ban.windowCount = 1
                }
                bans[key] = ban
                return .banned
            }
            bans[key] = nil
        }
        if var w = windows[key], now - w.start < settings.window {
            w.count += 1
            guard w.count > settings.requests else {
                windows[key] = w
                return .pass
            }
            windows[key] = nil
            bans[key] = Ban(address: address(), since: now, until: now + settings.ban, dropped: 1, windowStart: now, windowCount: 1)
            return .newlyBanned
        }
        if windows[key] == nil, trackedSources >= settings.maxSources {
            sweep(now: now)
            guard trackedSources < settings.maxSources else {
                tableFull = true
                return .pass
            }
        }
        windows[key] = Window(start: now, count: 1)
        return .pass
    }

    /// Forgets windows that ended and bans that ran out; at most once a second.
    mutating func sweepIfDue(now: ContinuousClock.Instant) {
        if let next = nextSweep, now < next { return }
        sweep(now: now)
    }

    private mutating func sweep(now: ContinuousClock.Instant) {
        nextSweep = now + .seconds(1)
        let window = settings.window
        if windows.contains(where: { now - $0.value.start >= window }) {
            windows = windows.filter { now - $0.value.start < window }
        }
        if bans.contains(where: { now >= $0.value.until }) {
            bans = bans.filter { now < $0.value.until }
        }
        tableFull = trackedSources >= settings.maxSources
    }

    /// Lifts the ban on `key` (the operator's call).
    mutating func unban(_ key: UInt64) -> Bool {
        bans.removeValue(forKey: key) != nil
    }
}

extension SIPEndpoint {
    /// The source address without its port, as one integer: IPv4 as itself, IPv6 hashed into
    /// the keys above 2^32 (flood control counts per address, as `pike` does).
    var sourceKey: UInt64 {
        switch address {
        case .v4(let a):
            return UInt64(UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            let h = withUnsafeBytes(of: a.address.sin6_addr) { fnv1a64($0) }
            return h | (1 << 63)
        default:
            return UInt64.max
        }
    }
}

private func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}
