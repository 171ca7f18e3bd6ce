public import Dispatcher

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
    /// Mean deviation of the round trip (RFC 6298 RTTVAR), milliseconds.
    public var jitterMs: Double?
    /// Channels used for dispatch: the node's ESL count reconciled with the proxy's calls since.
    public var channels: Int
    /// The node's own count at the last ESL reading; nil without a live ESL connection.
    public var eslChannels: Int?
    /// ESL monitoring: "connected", "down" (configured, not connected) or "off" (no `esl` address).
    public var esl: String
    /// Calls the proxy counts on the node, its capacity, and calls routed since start.
    public var activeCalls: Int
    public var maxChannels: Int
    public var routedCalls: Int
    /// Out after a failed call (or a 503 Retry-After), even if probes answer.
    public var heldDown: Bool
    /// Drained by an operator: no new calls whatever the health.
    public var drained: Bool
    /// OPTIONS probes sent, answered, failed, timed out, and the last error.
    public var probes: ProbeCounters
}

extension ProxyCore {
    /// Nodes with an ESL address, for the load monitor.
    public func eslTargets() -> [String: HostPort] {
        var out: [String: HostPort] = [:]
        for node in dispatcher.config.allNodes { if let esl = node.esl { out[node.name] = esl } }
        return out
    }

    /// A channel count read from `node` over ESL.
    public func channelCountRead(node: String, count: Int) {
        dispatcher.channelCountRead(node: node, count: count)
        metrics.channels(node, dispatcher.channels(node))
    }

    /// The ESL connection to `node` came up or went away.
    public func eslConnection(node: String, up: Bool) {
        if up {
            guard eslConnected.insert(node).inserted else { return }
            logger.info("ESL monitoring connected", metadata: ["node": "\(node)"])
        } else {
            guard eslConnected.remove(node) != nil else { return }
            dispatcher.channelCountLost(node: node)
            logger.warning("ESL monitoring lost; counting the proxy's own calls", metadata: ["node": "\(node)"])
        }
    }

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
                rttMs: ms(health?.smoothedRTT), lastRttMs: ms(health?.lastRTT), jitterMs: ms(health?.rttJitter),
                channels: dispatcher.channels(node.name), eslChannels: dispatcher.eslChannels[node.name],
                esl: node.esl == nil ? "off" : (eslConnected.contains(node.name) ? "connected" : "down"),
                activeCalls: dispatcher.activeCalls[node.name, default: 0],
                maxChannels: node.maxChannels, routedCalls: dispatcher.routedCalls[node.name, default: 0],
                heldDown: dispatcher.isHeldDown(node.name, now: now), drained: dispatcher.drained.contains(node.name),
                probes: dispatcher.probeCounters[node.name] ?? ProbeCounters()
            )
        }
    }
}
