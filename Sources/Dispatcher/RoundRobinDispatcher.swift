/// The first dispatcher: round robin over the healthy nodes of the proxy's own region, then of
/// the other regions. A node is healthy when its `NodeHealth` is active (probes and calls decide)
/// and it is not inside the hold-down that follows a failed call.
///
/// Pure: no clock of its own. Time is passed in as `ContinuousClock.Instant`, so tests move it.
public struct RoundRobinDispatcher: Sendable {
    public let config: RegionsConfig
    public let localRegion: String?
    private var cursor: [String: Int] = [:]
    /// Node name → instant until which it is held down.
    private var heldUntil: [String: ContinuousClock.Instant] = [:]
    /// Node name → observed health.
    public private(set) var health: [String: NodeHealth] = [:]
    /// Candidate lists per region order, computed once.
    private let regionOrder: [Region]

    public init(config: RegionsConfig, localRegion: String?) {
        self.config = config
        self.localRegion = localRegion
        var order = config.regions
        if let localRegion, let i = order.firstIndex(where: { $0.name == localRegion }) {
            order.insert(order.remove(at: i), at: 0)
        }
        regionOrder = order
        for node in config.allNodes {
            health[node.name] = NodeHealth(downAfter: config.probe.downAfter, upAfter: config.probe.upAfter)
        }
    }

    /// Nodes to try for a new INVITE, in order, at most `failover.maxAttempts` long: healthy
    /// nodes of the local region first (rotated per call), then of the other regions. Empty when
    /// no node can take a call (the proxy answers 503).
    public mutating func candidates(now: ContinuousClock.Instant) -> [Node] {
        var result: [Node] = []
        let limit = config.failover.maxAttempts
        for region in regionOrder where !region.nodes.isEmpty {
            let start = cursor[region.name, default: 0]
            cursor[region.name] = (start + 1) % region.nodes.count
            for k in 0..<region.nodes.count where result.count < limit {
                let node = region.nodes[(start + k) % region.nodes.count]
                if isUsable(node.name, now: now) { result.append(node) }
            }
        }
        return result
    }

    /// Healthy and not held down.
    public func isUsable(_ node: String, now: ContinuousClock.Instant) -> Bool {
        guard health[node]?.acceptsCalls ?? false else { return false }
        return !isHeldDown(node, now: now)
    }

    /// A node failed an INVITE (timeout, retry_on status, transport error): it is down at once
    /// and stays out for at least `holdDown` (or `retryAfter`, when the node said so), then until
    /// probes bring it back.
    public mutating func reportFailure(node: String, now: ContinuousClock.Instant, reason: String = "call failed", retryAfter: Duration? = nil) {
        heldUntil[node] = now + (retryAfter ?? config.failover.holdDown)
        health[node]?.callFailed(reason: reason, now: now)
    }

    /// A node answered a call: the hold-down ends (health follows the probes).
    public mutating func reportSuccess(node: String) {
        heldUntil[node] = nil
    }

    /// A probe of `node` was answered after `rtt`. Returns the new state when it changed.
    @discardableResult
    public mutating func probeSucceeded(node: String, rtt: Duration, now: ContinuousClock.Instant) -> NodeHealth.State? {
        guard health[node]?.probeSucceeded(rtt: rtt, now: now) == true else { return nil }
        return health[node]?.state
    }

    /// A probe of `node` timed out or was refused. Returns the new state when it changed.
    @discardableResult
    public mutating func probeFailed(node: String, reason: String, now: ContinuousClock.Instant) -> NodeHealth.State? {
        guard health[node]?.probeFailed(reason: reason, now: now) == true else { return nil }
        return health[node]?.state
    }

    /// Whether `node` is currently held down.
    public func isHeldDown(_ node: String, now: ContinuousClock.Instant) -> Bool {
        (heldUntil[node].map { $0 > now }) ?? false
    }
}
