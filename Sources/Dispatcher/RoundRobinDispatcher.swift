/// The first dispatcher: round robin over the nodes of the proxy's own region, then the other
/// regions, skipping (trying last) nodes that recently failed an INVITE.
///
/// Pure: no clock of its own. Time is passed in as `ContinuousClock.Instant`, so tests move it.
public struct RoundRobinDispatcher: Sendable {
    public let config: RegionsConfig
    public let localRegion: String?
    private var cursor: [String: Int] = [:]
    /// Node name → instant until which it is held down.
    private var heldUntil: [String: ContinuousClock.Instant] = [:]
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
    }

    /// Nodes to try for a new INVITE, in order, at most `failover.maxAttempts` long. Healthy
    /// nodes of the local region come first (rotated per call), then other regions; nodes held
    /// down after a failure go last, so a call still has somewhere to go when all are suspect.
    public mutating func candidates(now: ContinuousClock.Instant) -> [Node] {
        var healthy: [Node] = []
        var held: [Node] = []
        for region in regionOrder where !region.nodes.isEmpty {
            let start = cursor[region.name, default: 0]
            cursor[region.name] = (start + 1) % region.nodes.count
            for k in 0..<region.nodes.count {
                let node = region.nodes[(start + k) % region.nodes.count]
                if let until = heldUntil[node.name], until > now {
                    held.append(node)
                } else {
                    healthy.append(node)
                }
            }
        }
        return Array((healthy + held).prefix(config.failover.maxAttempts))
    }

    /// A node failed an INVITE (timeout, 5xx, transport error): skip it for `holdDown`, or for
    /// `retryAfter` when the node said so (503 Retry-After).
    public mutating func reportFailure(node: String, now: ContinuousClock.Instant, retryAfter: Duration? = nil) {
        heldUntil[node] = now + (retryAfter ?? config.failover.holdDown)
    }

    /// A node answered: it is usable again at once.
    public mutating func reportSuccess(node: String) {
        heldUntil[node] = nil
    }

    /// Whether `node` is currently held down.
    public func isHeldDown(_ node: String, now: ContinuousClock.Instant) -> Bool {
        (heldUntil[node].map { $0 > now }) ?? false
    }
}
