/// Chooses the nodes a new call is offered to, in order, and keeps what that choice depends on:
/// node health (probes and call outcomes), hold-downs after failed calls, the proxy's own count
/// of calls per node, and round-robin cursors.
///
/// Order: the preferred region first — the one whose `prefer_for` prefix matches the called
/// number, else the proxy's own region — then the other regions by probe latency. Within a
/// region the policy orders the usable nodes. The list is capped at `failover.max_attempts`;
/// empty means no node can take the call (the proxy answers 503).
///
/// Pure: no clock of its own. Time is passed in as `ContinuousClock.Instant`, so tests move it.
public struct NodeDispatcher: Sendable {
    public private(set) var config: RegionsConfig
    public let localRegion: String?
    private var cursor: [String: Int] = [:]
    /// Smooth weighted round robin state per node (nginx's algorithm).
    private var weightCredit: [String: Int] = [:]
    /// Node name → instant until which it is held down.
    private var heldUntil: [String: ContinuousClock.Instant] = [:]
    /// Node name → observed health.
    public private(set) var health: [String: NodeHealth] = [:]
    /// Node name → calls the proxy sent there that have not ended (never below zero).
    public private(set) var activeCalls: [String: Int] = [:]
    /// Node name → the node's own channel count, as last read over ESL (`show channels count`
    /// or HEARTBEAT `Session-Count`). Absent while no ESL reading is current.
    public private(set) var eslChannels: [String: Int] = [:]
    /// Node name → calls started minus calls ended since that reading.
    private var sinceReading: [String: Int] = [:]
    /// Node name → OPTIONS probe counters ("why is it down").
    public private(set) var probeCounters: [String: ProbeCounters] = [:]
    /// Calls routed per node since start.
    public private(set) var routedCalls: [String: Int] = [:]
    /// Nodes an operator drained: no new calls, whatever their health (kept apart from it).
    public private(set) var drained: Set<String> = []
    /// Number prefixes homed to a region, longest first.
    private var prefixes: [(prefix: String, region: String)]

    public init(config: RegionsConfig, localRegion: String?) {
        self.config = config
        self.localRegion = localRegion
        self.prefixes = Self.prefixes(of: config)
        for node in config.allNodes {
            health[node.name] = NodeHealth(downAfter: config.probe.downAfter, upAfter: config.probe.upAfter)
            if node.drain { drained.insert(node.name) }
        }
    }

    private static func prefixes(of config: RegionsConfig) -> [(prefix: String, region: String)] {
        var prefixes: [(String, String)] = []
        for region in config.regions {
            for p in region.preferFor { prefixes.append((p, region.name)) }
        }
        return prefixes.sorted { $0.0.count > $1.0.count }
    }

    /// What a reload changed, by node name.
    public struct ReloadDiff: Sendable, Hashable {
        public var added: [String] = []
        public var removed: [String] = []
        /// Same name, new SIP address: treated as a new node (its health starts over).
        public var replaced: [String] = []
        public var kept: [String] = []

        public init() {}
    }

    /// Applies a new configuration as a diff: nodes that stay (same name and SIP address) keep
    /// their health, latency, load, hold-down and drain; new nodes start active; removed nodes
    /// are forgotten. Calls in progress are untouched (they follow their Route sets).
    @discardableResult
    public mutating func reload(_ new: RegionsConfig) -> ReloadDiff {
        var diff = ReloadDiff()
        let old = Dictionary(uniqueKeysWithValues: config.allNodes.map { ($0.name, $0) })
        let next = Dictionary(uniqueKeysWithValues: new.allNodes.map { ($0.name, $0) })
        for node in new.allNodes {
            if let before = old[node.name] {
                if before.sip == node.sip {
                    diff.kept.append(node.name)
                    // `drain` in the file wins when it changed there; otherwise the admin's state stays.
                    if before.drain != node.drain { _ = setDrained(node.name, node.drain) }
                    health[node.name]?.setThresholds(downAfter: new.probe.downAfter, upAfter: new.probe.upAfter)
                    if before.esl != node.esl { forgetReading(node.name) }
                    continue
                }
                diff.replaced.append(node.name)
            } else {
                diff.added.append(node.name)
            }
            health[node.name] = NodeHealth(downAfter: new.probe.downAfter, upAfter: new.probe.upAfter)
            activeCalls[node.name] = nil
            heldUntil[node.name] = nil
            probeCounters[node.name] = nil
            forgetReading(node.name)
            if node.drain { drained.insert(node.name) } else { drained.remove(node.name) }
        }
        for name in old.keys where next[name] == nil {
            diff.removed.append(name)
            health[name] = nil
            activeCalls[name] = nil
            heldUntil[name] = nil
            weightCredit[name] = nil
            probeCounters[name] = nil
            forgetReading(name)
            drained.remove(name)
        }
        config = new
        prefixes = Self.prefixes(of: new)
        diff.added.sort()
        diff.removed.sort()
        diff.replaced.sort()
        diff.kept.sort()
        return diff
    }

    /// The region a called (or calling) number is homed to by `prefer_for`, if any.
    public func homeRegion(of number: String?) -> String? {
        guard let number, !number.isEmpty else { return nil }
        let normalized = number.hasPrefix("+") ? number : "+" + number
        for (prefix, region) in prefixes {
            let p = prefix.hasPrefix("+") ? prefix : "+" + prefix
            if normalized.hasPrefix(p) { return region }
        }
        return nil
    }

    /// Nodes to offer a new call to, in order (see the type's documentation).
    public mutating func candidates(callID: String = "", number: String? = nil, now: ContinuousClock.Instant) -> [Node] {
        let preferred = homeRegion(of: number) ?? localRegion
        var regions = config.regions.filter { $0.name != preferred }
        regions.sort { (regionLatency($0, now) ?? .seconds(3_600)) < (regionLatency($1, now) ?? .seconds(3_600)) }
        if let preferred, let region = config.region(named: preferred) {
            // Past `spill_at` of its capacity, the preferred region comes after the others
            // ("Virginia is at 80 %, route the next call to Oregon").
            if let spill = config.spillAt, occupancy(region, now: now) >= spill {
                regions.append(region)
            } else {
                regions.insert(region, at: 0)
            }
        }
        var result: [Node] = []
        let limit = config.failover.maxAttempts
        for region in regions where result.count < limit {
            // A node at its max_channels gets no new call (it would only answer 503).
            let usable = region.nodes.filter { isUsable($0.name, now: now) && channels($0.name) < $0.maxChannels }
            guard !usable.isEmpty else { continue }
            result += order(usable, region: region.name, callID: callID).prefix(limit - result.count)
        }
        return result
    }

    /// Channels in use over capacity across a region's usable nodes (1 when none is usable).
    public func occupancy(_ region: Region, now: ContinuousClock.Instant) -> Double {
        let usable = region.nodes.filter { isUsable($0.name, now: now) }
        let capacity = usable.reduce(0) { $0 + max(1, $1.maxChannels) }
        guard capacity > 0 else { return 1 }
        return Double(usable.reduce(0) { $0 + channels($1.name) }) / Double(capacity)
    }

    /// The usable nodes of one region in policy order.
    private mutating func order(_ nodes: [Node], region: String, callID: String) -> [Node] {
        switch config.policy {
        case .roundRobin:
            let start = cursor[region, default: 0] % nodes.count
            cursor[region] = start &+ 1
            return Array(nodes[start...] + nodes[..<start])
        case .weighted:
            // Smooth weighted round robin: every node earns its weight, the richest is chosen and
            // pays the total. The rest follow by remaining credit (failover order).
            let total = nodes.reduce(0) { $0 + $1.weight }
            for n in nodes { weightCredit[n.name, default: 0] += n.weight }
            let sorted = nodes.sorted { weightCredit[$0.name, default: 0] > weightCredit[$1.name, default: 0] }
            weightCredit[sorted[0].name, default: 0] -= total
            return sorted
        case .leastLoaded:
            return nodes.sorted { load($0) < load($1) }
        case .latency:
            return nodes.sorted { (health[$0.name]?.smoothedRTT ?? .seconds(3_600)) < (health[$1.name]?.smoothedRTT ?? .seconds(3_600)) }
        case .hashCallID:
            // Rendezvous hashing: stable per Call-ID, and a node going down moves only its calls.
            return nodes.sorted { score(callID, $0.name) > score(callID, $1.name) }
        }
    }

    /// Channels in use over capacity.
    public func load(_ node: Node) -> Double {
        Double(channels(node.name)) / Double(max(1, node.maxChannels))
    }

    /// Channels in use on `node`: the node's last ESL count plus the calls the proxy started
    /// there since, minus those that ended (never below zero); without a current ESL reading,
    /// the proxy's own count.
    public func channels(_ node: String) -> Int {
        guard let base = eslChannels[node] else { return activeCalls[node, default: 0] }
        return max(0, base + sinceReading[node, default: 0])
    }

    private func score(_ callID: String, _ node: String) -> UInt64 {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in callID.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        h = (h ^ 0xFF) &* 1_099_511_628_211
        for b in node.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        return h
    }

    /// The best smoothed probe latency among a region's usable nodes.
    private func regionLatency(_ region: Region, _ now: ContinuousClock.Instant) -> Duration? {
        region.nodes.filter { isUsable($0.name, now: now) }.compactMap { health[$0.name]?.smoothedRTT }.min()
    }

    /// Healthy, not drained and not held down.
    public func isUsable(_ node: String, now: ContinuousClock.Instant) -> Bool {
        guard health[node]?.acceptsCalls ?? false, !drained.contains(node) else { return false }
        return !isHeldDown(node, now: now)
    }

    // MARK: Operator state

    /// Drains `node` (no new calls; calls in progress finish through the Route set) or puts it
    /// back. Returns false for an unknown node.
    @discardableResult
    public mutating func setDrained(_ node: String, _ drain: Bool) -> Bool {
        guard health[node] != nil else { return false }
        if drain { drained.insert(node) } else { drained.remove(node) }
        return true
    }

    // MARK: Call accounting (the proxy's own view of load)

    /// The proxy sent a new call to `node`.
    public mutating func callStarted(node: String) {
        activeCalls[node, default: 0] += 1
        routedCalls[node, default: 0] += 1
        if eslChannels[node] != nil { sinceReading[node, default: 0] += 1 }
    }

    /// A call on `node` ended: failed, refused, or hung up. Never goes below zero.
    public mutating func callEnded(node: String) {
        activeCalls[node] = max(0, activeCalls[node, default: 0] - 1)
        if eslChannels[node] != nil { sinceReading[node, default: 0] -= 1 }
    }

    /// The node reported `count` channels over ESL: that becomes the base, and what the proxy
    /// counted since the last reading is folded into it (reconciled, so the two cannot drift).
    /// Channels the node has that the proxy did not send (API-originated calls) count too.
    public mutating func channelCountRead(node: String, count: Int) {
        guard health[node] != nil else { return }
        eslChannels[node] = max(0, count)
        sinceReading[node] = 0
    }

    /// The ESL connection to `node` is gone: its reading is stale, the proxy's own count rules.
    public mutating func channelCountLost(node: String) { forgetReading(node) }

    private mutating func forgetReading(_ node: String) {
        eslChannels[node] = nil
        sinceReading[node] = nil
    }

    // MARK: Outcomes

    /// A node failed an INVITE (timeout, retry_on status, transport error): it is down at once
    /// and stays out for at least `holdDown` (or `retryAfter`, when the node said so), then until
    /// probes bring it back.
    public mutating func reportFailure(node: String, now: ContinuousClock.Instant, reason: String = "call failed", retryAfter: Duration? = nil) {
        heldUntil[node] = now + (retryAfter ?? config.failover.holdDown)
        health[node]?.callFailed(reason: reason, now: now)
    }

    /// Keeps `node` out of new calls for `duration` without touching its health (a refusal
    /// that says nothing about whether the node is alive).
    public mutating func holdDown(node: String, for duration: Duration, now: ContinuousClock.Instant) {
        heldUntil[node] = now + duration
    }

    /// A node answered a call: the hold-down ends (health follows the probes).
    public mutating func reportSuccess(node: String) {
        heldUntil[node] = nil
    }

    /// An OPTIONS probe was sent to `node`.
    public mutating func probeSent(node: String) {
        guard health[node] != nil else { return }
        probeCounters[node, default: ProbeCounters()].sent += 1
    }

    /// A probe of `node` was answered after `rtt`. Returns the new state when it changed.
    @discardableResult
    public mutating func probeSucceeded(node: String, rtt: Duration, now: ContinuousClock.Instant) -> NodeHealth.State? {
        guard health[node] != nil else { return nil }
        probeCounters[node, default: ProbeCounters()].ok += 1
        guard health[node]?.probeSucceeded(rtt: rtt, now: now) == true else { return nil }
        return health[node]?.state
    }

    /// A probe of `node` timed out (`timedOut`), failed at the transport or was answered with an
    /// error. Returns the new state when it changed.
    @discardableResult
    public mutating func probeFailed(node: String, reason: String, timedOut: Bool = false, now: ContinuousClock.Instant) -> NodeHealth.State? {
        guard health[node] != nil else { return nil }
        probeCounters[node, default: ProbeCounters()].failed += 1
        if timedOut { probeCounters[node, default: ProbeCounters()].timeouts += 1 }
        probeCounters[node, default: ProbeCounters()].lastError = reason
        guard health[node]?.probeFailed(reason: reason, now: now) == true else { return nil }
        return health[node]?.state
    }

    /// How long to wait for a provisional response from `node` before failing over: three
    /// smoothed probe round trips plus four deviations, within [`inviteTimeoutMin`,
    /// `inviteTimeout`]; the ceiling while the node has no round-trip estimate.
    public func provisionalTimeout(for node: String) -> Duration {
        let f = config.failover
        guard let srtt = health[node]?.smoothedRTT else { return f.inviteTimeout }
        let estimate = srtt * 3 + (health[node]?.rttJitter ?? .zero) * 4
        return min(f.inviteTimeout, max(f.inviteTimeoutMin, estimate))
    }

    /// Whether `node` is currently held down.
    public func isHeldDown(_ node: String, now: ContinuousClock.Instant) -> Bool {
        (heldUntil[node].map { $0 > now }) ?? false
    }
}

/// What the prober did for one node: enough to answer "why is it down".
public struct ProbeCounters: Sendable, Hashable, Codable {
    public var sent = 0
    public var ok = 0
    public var failed = 0
    public var timeouts = 0
    public var lastError: String?

    public init() {}
}
