public import Dispatcher
public import NIOCore
import NIOConcurrencyHelpers

/// A thread-safe way into a running proxy for the admin endpoints: the core lives on its event
/// loop, so every read hops there.
public final class ProxyHandle: Sendable {
    private let layer = NIOLockedValueBox<NIOLoopBound<ProxyRuntime>?>(nil)

    public init() {}

    func attach(_ bound: NIOLoopBound<ProxyRuntime>) {
        layer.withLockedValue { $0 = bound }
    }

    /// The dispatcher table, read on the proxy's event loop. Fails when the proxy is not running.
    public func nodeStatuses() -> EventLoopFuture<[NodeStatus]>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit { bound.value.core.nodeStatuses(now: .now) }
    }

    /// Whether the proxy is healthy (`/healthz`): every configured listener bound and at least
    /// one node, of any region, active (answering probes, not drained, not held down). The
    /// string says why not. nil when the proxy is not running.
    public func health() -> EventLoopFuture<(healthy: Bool, reason: String)>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit {
            let down = bound.value.layer.listenersDown
            if !down.isEmpty { return (false, "listeners down: \(down.map(\.description).joined(separator: " "))") }
            return bound.value.core.liveness(now: .now)
        }
    }

    /// Whether this proxy's region can take a call now (for DNS health checks): every listener
    /// up and at least one node of the proxy's own region usable (healthy, not drained, not held
    /// down) and below its `max_channels`. The string says why not.
    public func readiness() -> EventLoopFuture<(ready: Bool, reason: String)>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit {
            let down = bound.value.layer.listenersDown
            if !down.isEmpty { return (false, "listeners down: \(down.map(\.description).joined(separator: " "))") }
            return bound.value.core.regionReadiness(now: .now)
        }
    }

    /// Banned sources and trunk counters (`GET /edge`). nil when the proxy is not running.
    public func edgeStatus() -> EventLoopFuture<EdgeStatus?>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit { bound.value.core.edgeStatus(now: .now) }
    }

    /// Lifts the flood ban on an address; the future holds false when it was not banned.
    public func unban(_ address: String) -> EventLoopFuture<Bool>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit { bound.value.core.unban(address) }
    }

    /// Applies a new configuration on the proxy's loop (see `ProxyCore.reload`).
    public func reload(_ regions: RegionsConfig) -> EventLoopFuture<NodeDispatcher.ReloadDiff>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        // The certificate files are read again; one that cannot be used refuses the whole reload.
        let tls: SIPTLSContexts?
        do {
            tls = try SIPTLSContexts.load(regions)
        } catch {
            return bound.eventLoop.makeFailedFuture(error)
        }
        return bound.eventLoop.submit {
            bound.value.layer.tls = tls
            bound.value.layer.tcp = regions.proxy.tcp
            return bound.value.core.reload(regions)
        }
    }

    /// Drains (`true`) or re-enables a node; the future holds false for an unknown node.
    public func setDrained(_ node: String, _ drain: Bool) -> EventLoopFuture<Bool>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit { bound.value.core.setDrained(node, drain) }
    }

    /// Nodes that have an ESL address (name → address), from the live configuration.
    public func eslTargets() -> EventLoopFuture<[String: HostPort]>? {
        guard let bound = layer.withLockedValue({ $0 }) else { return nil }
        return bound.eventLoop.submit { bound.value.core.eslTargets() }
    }

    /// Feeds a channel count read over ESL into the dispatcher.
    public func channelCountRead(node: String, count: Int) {
        guard let bound = layer.withLockedValue({ $0 }) else { return }
        bound.eventLoop.execute { bound.value.core.channelCountRead(node: node, count: count) }
    }

    /// Tells the dispatcher that ESL to `node` is up or down (down: its reading is dropped).
    public func eslConnection(node: String, up: Bool) {
        guard let bound = layer.withLockedValue({ $0 }) else { return }
        bound.eventLoop.execute { bound.value.core.eslConnection(node: node, up: up) }
    }
}
