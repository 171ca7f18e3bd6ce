/// One row of the live dispatcher table (`GET /nodes`, `switchyard nodes`), like
/// `kamcmd dispatcher.list`: what the proxy knows about a node right now.
public struct NodeStatus: Sendable, Codable, Hashable {
    public var name: String
    public var region: String
    public var sip: String
    /// active, probing or inactive.
    public var state: String
    /// Why the state last changed, and how long ago (seconds; nil before any change).
    public var reason: String
    public var sinceSeconds: Double?
    /// Smoothed and last OPTIONS round trip, milliseconds.
    public var rttMs: Double?
    public var lastRttMs: Double?
    /// Calls the proxy counts on the node, its capacity, and calls routed since start.
    public var activeCalls: Int
    public var maxChannels: Int
    public var routedCalls: Int
    /// Out after a failed call (or a 503 Retry-After), even if probes answer.
    public var heldDown: Bool
    /// Drained by an operator: no new calls whatever the health.
    public var drained: Bool
}

extension ProxyCore {
    /// Drains or re-enables a node (admin call). False for an unknown node.
    public func setDrained(_ node: String, _ drain: Bool) -> Bool {
        let known = dispatcher.setDrained(node, drain)
        if known {
            logger.notice("node \(drain ? "drained" : "enabled") by operator", metadata: ["node": "\(node)"])
        }
        return known
    }

    /// The dispatcher table at `now`.
    public func nodeStatuses(now: ContinuousClock.Instant) -> [NodeStatus] {
        func ms(_ d: Duration?) -> Double? {
            d.map { Double($0.components.seconds) * 1_000 + Double($0.components.attoseconds) / 1e15 }
        }
        return dispatcher.config.allNodes.map { node in
            let health = dispatcher.health[node.name]
            return NodeStatus(
                name: node.name, region: node.region, sip: node.sip.description, state: health?.state.rawValue ?? "unknown",
                reason: health?.lastReason ?? "", sinceSeconds: health?.lastChange.map { ms(now - $0)! / 1_000 },
                rttMs: ms(health?.smoothedRTT), lastRttMs: ms(health?.lastRTT), activeCalls: dispatcher.activeCalls[node.name, default: 0],
                maxChannels: node.maxChannels, routedCalls: dispatcher.routedCalls[node.name, default: 0],
                heldDown: dispatcher.isHeldDown(node.name, now: now), drained: dispatcher.drained.contains(node.name)
            )
        }
    }
}
