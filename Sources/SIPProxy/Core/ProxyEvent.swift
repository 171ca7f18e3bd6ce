public import NIOCore

/// Everything that reaches the proxy core from outside, as the transport layer and the timer
/// task hand it over (`ProxyCore.handle`). The core answers each by sending through its
/// `SIPTransportSender`; nothing else calls into it on the hot path.
public enum ProxyEvent {
    /// One datagram, or one framed stream message, from `from`.
    case message(ByteBuffer, from: SIPEndpoint)
    /// Time passed: due timers fire, probes go out, edge state is swept.
    case tick
    /// A send for this client transaction failed at the transport (RFC 3261 §17.1.4).
    case transportFailed(ClientTransactionKey)
    /// A TLS handshake verified a client certificate naming `trunk`.
    case connectionIdentified(UInt64, trunk: String)
    /// A TCP or TLS connection closed.
    case connectionClosed(UInt64)
}
