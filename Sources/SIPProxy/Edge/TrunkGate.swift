public import Dispatcher

/// Which trunk a source belongs to, and each trunk's call limits: a token bucket for calls per
/// second and a count of calls from INVITE to BYE (or to a failed final response). The
/// `proxy.trusted` networks form one more trunk, "trusted", without limits. A pure value: time
/// is passed in.
struct TrunkGate {
    enum Refusal: String {
        case rate
        case concurrency
    }

    struct State {
        let trunk: Trunk
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var active = 0
        var accepted = 0
        var refusedRate = 0
        var refusedConcurrency = 0
    }

    private(set) var trunks: [State]
    /// Which trunk a source is, behind a reference: the core asks for every message, and a
    /// method called on this struct, stored in the core, copies all of it first.
    let rules: TrunkRules
    /// Calls counted against a trunk's `max_concurrent`, by Call-ID.
    private var calls: [String: (trunk: Int, since: ContinuousClock.Instant)] = [:]
    private var nextSweep: ContinuousClock.Instant?
    /// Some trunk has `max_concurrent`: BYEs and failed INVITEs must be looked up.
    let tracksCalls: Bool

    static let trustedName = "trusted"

    init(trunks declared: [Trunk], trusted: [IPv4Network], now: ContinuousClock.Instant, keeping old: TrunkGate? = nil) {
        var all = declared
        if !trusted.isEmpty {
            all.append(Trunk(name: Self.trustedName, sources: trusted.map { TrunkSource(network: $0) }))
        }
        trunks = all.map { t in
            var s = State(trunk: t, tokens: Double(t.callsPerSecond ?? 0), refilled: now)
            // A reload keeps what a trunk of the same name had counted.
            if let previous = old?.trunks.first(where: { $0.trunk.name == t.name }) {
                s.active = previous.active
                s.accepted = previous.accepted
                s.refusedRate = previous.refusedRate
                s.refusedConcurrency = previous.refusedConcurrency
            }
            return s
        }
        rules = TrunkRules(all)
        tracksCalls = all.contains { $0.maxConcurrent != nil }
        if tracksCalls, let old {
            let names = Dictionary(all.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            for (callID, c) in old.calls {
                if let i = names[old.trunks[c.trunk].trunk.name] { calls[callID] = (i, c.since) }
            }
        }
    }

    /// The trunk `source` sends from, if any.
    func match(_ source: SIPEndpoint) -> Int? { rules.match(source) }

    /// The trunk declared as `name` (a TLS connection's certificate names it).
    func index(named name: String) -> Int? {
        trunks.firstIndex { $0.trunk.name == name }
    }

    func hasLimits(_ trunk: Int) -> Bool {
        trunks[trunk].trunk.callsPerSecond != nil || trunks[trunk].trunk.maxConcurrent != nil
    }

    /// A new call from `trunk`: nil when it may go on (and it is counted), else why not.
    /// `callID` is made only for a trunk with `max_concurrent`.
    mutating func admitCall(trunk i: Int, callID: @autoclosure () -> String, now: ContinuousClock.Instant) -> Refusal? {
        let t = trunks[i].trunk
        if let cps = t.callsPerSecond {
            // Bucket of `cps` tokens (a burst of one second's worth), refilled continuously.
            let elapsed = now - trunks[i].refilled
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            trunks[i].tokens = min(Double(cps), trunks[i].tokens + seconds * Double(cps))
            trunks[i].refilled = now
            guard trunks[i].tokens >= 1 else {
                trunks[i].refusedRate += 1
                return .rate
            }
        }
        if let limit = t.maxConcurrent {
            let id = callID()
            if calls[id] != nil { return nil }
            guard trunks[i].active < limit else {
                trunks[i].refusedConcurrency += 1
                return .concurrency
            }
            calls[id] = (i, now)
            trunks[i].active += 1
        }
        if t.callsPerSecond != nil { trunks[i].tokens -= 1 }
        trunks[i].accepted += 1
        return nil
    }

    /// The call ended (BYE) or never started (a final failure response): it stops counting.
    mutating func callEnded(callID: String) {
        guard let c = calls.removeValue(forKey: callID) else { return }
        trunks[c.trunk].active -= 1
    }

    /// Calls whose end the proxy never saw stop counting after `maxAge`; at most every 10 s.
    mutating func sweepIfDue(now: ContinuousClock.Instant, maxAge: Duration) {
        guard tracksCalls else { return }
        if let next = nextSweep, now < next { return }
        nextSweep = now + .seconds(10)
        let stale = calls.filter { now - $0.value.since >= maxAge }
        for (callID, _) in stale { callEnded(callID: callID) }
    }
}

/// Source → trunk rules, most specific first (longest prefix, then a port-specific rule before a
/// port-less one of the same prefix). Immutable.
final class TrunkRules {
    private struct Rule {
        let source: TrunkSource
        let trunk: Int
    }

    private let rules: [Rule]

    init(_ trunks: [Trunk]) {
        var rules: [Rule] = []
        for (i, t) in trunks.enumerated() {
            for source in t.sources { rules.append(Rule(source: source, trunk: i)) }
        }
        rules.sort { $0.source.isMoreSpecific(than: $1.source) }
        self.rules = rules
    }

    /// The trunk `source` sends from, if any.
    func match(_ source: SIPEndpoint) -> Int? {
        guard let ip = source.ipv4 else { return nil }
        let port = source.address.port ?? 0
        for r in rules where r.source.contains(ip: ip, port: port) { return r.trunk }
        return nil
    }
}
