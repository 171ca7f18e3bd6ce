public import NIOCore
import SIPCore

/// Where a message came from or goes to: transport, address and, for TCP, the connection.
public struct SIPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public enum Transport: String, Sendable, Hashable {
        case udp = "UDP"
        case tcp = "TCP"
        case tls = "TLS"

        /// A stream (TCP, TLS): no retransmissions, responses on the connection (§18.2.2).
        public var isReliable: Bool { self != .udp }
    }

    public var transport: Transport
    public var address: SocketAddress
    /// The TCP or TLS connection a message arrived on (responses go back on it, RFC 3261 §18.2.2).
    public var connectionID: UInt64?

    public init(transport: Transport, address: SocketAddress, connectionID: UInt64? = nil) {
        self.transport = transport
        self.address = address
        self.connectionID = connectionID
    }

    /// The IPv4 address as a host-order integer, for trusted-network checks.
    public var ipv4: UInt32? {
        if case .v4(let a) = address { return UInt32(bigEndian: a.address.sin_addr.s_addr) }
        return nil
    }

    /// Same IP address as `other`, any port, compared as bytes (`SocketAddress.ipAddress`
    /// formats a String: too slow for every response).
    public func hasSameHost(as other: SIPEndpoint) -> Bool {
        switch (address, other.address) {
        case (.v4(let a), .v4(let b)):
            return a.address.sin_addr.s_addr == b.address.sin_addr.s_addr
        case (.v6(let a), .v6(let b)):
            return withUnsafeBytes(of: a.address.sin6_addr) { x in withUnsafeBytes(of: b.address.sin6_addr) { y in x.elementsEqual(y) } }
        default:
            return false
        }
    }

    public var description: String { "\(transport.rawValue.lowercased())://\(address.ipAddress ?? "?"):\(address.port ?? 0)" }
}

/// The proxy core's only way out: the NIO layer implements it, tests record what is sent.
public protocol SIPTransportSender: AnyObject {
    /// Queues `bytes` for `destination`. When the send fails (connection refused or reset), the
    /// sender reports `failureToken` back through `ProxyCore.handle(.transportFailed(token), now:)`.
    func send(_ bytes: ByteBuffer, to destination: SIPEndpoint, failureToken: ClientTransactionKey?)
    /// Flushes what `send` queued (called once per input event, so UDP writes can batch).
    func flush()
}

/// Identifies a client transaction: our branch and the method (a CANCEL shares its INVITE's branch).
public struct ClientTransactionKey: Sendable, Hashable {
    public var branch: String
    public var isCancel: Bool

    public init(branch: String, isCancel: Bool) {
        self.branch = branch
        self.isCancel = isCancel
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3): top Via branch, sent-by and method, ACK
/// matching INVITE.
struct ServerTransactionKey: Hashable {
    var branch: String
    var host: String
    var port: Int
    var isInvite: Bool

    init(branch: String, via: Via, isInvite: Bool) {
        self.branch = branch
        self.host = via.host
        self.port = via.port ?? 5060
        self.isInvite = isInvite
    }
}
