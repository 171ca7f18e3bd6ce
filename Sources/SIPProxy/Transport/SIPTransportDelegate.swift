/// What the transport layer hands to the proxy core, and the questions it asks it before a
/// connection is accepted. The core conforms. The layer holds it weakly while the core holds
/// the layer as its sender, so neither keeps the other alive, and the layer knows nothing of
/// the core but this.
protocol SIPTransportDelegate: AnyObject {
    func handle(_ event: ProxyEvent, now: ContinuousClock.Instant)
    /// A flood-banned source: its new TCP and TLS connections are refused.
    func isBanned(_ source: SIPEndpoint) -> Bool
    /// A node's IP address: exempt from the per-source connection limit.
    func isNodeIP(_ ip: String) -> Bool
    /// The Server header of the answers the layer makes itself (framing errors); nil for none.
    var serverHeader: String? { get }
}
