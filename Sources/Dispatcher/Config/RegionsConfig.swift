/// A host and port, validated (`127.0.0.1:5080`, `[::1]:5060`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; IPv6 hosts are written in brackets.
    public init?(parsing text: String) {
        let t = trimmed(text)
        var host: Substring
        var portText: Substring
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]"), t[t.index(after: close)...].hasPrefix(":") else { return nil }
            host = t[t.index(after: t.startIndex)..<close]
            portText = t[t.index(close, offsetBy: 2)...]
        } else {
            guard let colon = t.lastIndex(of: ":"), !t[..<colon].contains(":") else { return nil }
            host = t[..<colon]
            portText = t[t.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65_535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A SIP listening address: `udp://127.0.0.1:5060`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Transport: String, Sendable, Hashable, CaseIterable {
        case udp, tcp, tls

        /// RFC 3261 §26.2: SIP over TLS listens on 5061 unless told otherwise.
        public var defaultPort: Int { self == .tls ? 5061 : 5060 }
    }
    public var transport: Transport
    public var address: HostPort

    public init(transport: Transport, address: HostPort) {
        self.transport = transport
        self.address = address
    }

    public var description: String { "\(transport.rawValue)://\(address)" }
}

/// An IPv4 network in CIDR form, for the trusted-sources list.
public struct IPv4Network: Sendable, Hashable, CustomStringConvertible {
    public let base: UInt32
    public let prefix: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let ip = IPv4Network.parseIPv4(String(parts[0])) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : 32
        guard let prefix, (0...32).contains(prefix) else { return nil }
        self.prefix = prefix
        self.base = ip & IPv4Network.mask(prefix)
    }

    public func contains(_ address: UInt32) -> Bool { address & IPv4Network.mask(prefix) == base }

    public static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix) }

    /// Dotted-quad IPv4 (`192.0.2.1`) as a host-order integer; nil for anything else. Runs on the
    /// SIP hot path (Via host checks), so it reads UTF-8 bytes without allocating.
    public static func parseIPv4(_ text: String) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for b in text.utf8 {
            if b == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else {
                guard b >= 48, b <= 57, digits < 3 else { return nil }
                octet = octet * 10 + UInt32(b - 48)
                guard octet <= 255 else { return nil }
                digits += 1
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    public var description: String {
        "\(base >> 24).\(base >> 16 & 255).\(base >> 8 & 255).\(base & 255)/\(prefix)"
    }
}

/// A media node the proxy dispatches to.
public struct Node: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var region: String
    public var sip: HostPort
    public var esl: HostPort?
    public var maxChannels: Int
    public var weight: Int
    /// `drain: true` in the file: the operator's state from config (no new calls).
    public var drain: Bool
    /// How the proxy reaches the node's SIP address (`transport:`, default udp).
    public var transport: ListenAddress.Transport = .udp

    public init(
        name: String, region: String, sip: HostPort, esl: HostPort? = nil, maxChannels: Int = 500, weight: Int = 1, drain: Bool = false,
        transport: ListenAddress.Transport = .udp
    ) {
        self.transport = transport
        self.name = name
        self.region = region
        self.sip = sip
        self.esl = esl
        self.maxChannels = maxChannels
        self.weight = weight
        self.drain = drain
    }

    public var description: String { transport == .udp ? "\(name)@\(sip)" : "\(name)@\(sip);transport=\(transport.rawValue)" }
}

public struct Region: Sendable, Hashable {
    public var name: String
    public var preferFor: [String]
    public var nodes: [Node]
}

/// How `NodeDispatcher` orders the usable nodes of a region.
/// - `leastLoaded`: fewest calls per `max_channels` (the proxy's own count; ESL counts come later)
/// - `weighted`: smooth weighted round robin by `weight`
/// - `latency`: lowest smoothed OPTIONS round trip
/// - `hashCallID`: rendezvous hash of the Call-ID (sticky; a lost node moves only its calls)
/// - `roundRobin`: rotate
public enum DispatchPolicy: String, Sendable, Hashable, CaseIterable {
    case leastLoaded = "least-loaded"
    case weighted
    case latency
    case hashCallID = "hash-callid"
    case roundRobin = "round-robin"
}

public struct ProbeSettings: Sendable, Hashable {
    public var interval: Duration = .seconds(1)
    public var timeout: Duration = .milliseconds(500)
    public var downAfter = 2
    public var upAfter = 2
}

public struct FailoverSettings: Sendable, Hashable {
    /// No provisional response within this time: try the next node. The ceiling of the
    /// adaptive timeout (see `inviteTimeoutMin`).
    public var inviteTimeout: Duration = .seconds(2)
    /// The floor of the adaptive provisional timeout: a node with a probe round trip gets
    /// `3·SRTT + 4·RTTVAR` clamped to [`inviteTimeoutMin`, `inviteTimeout`] (an RFC 6298-style
    /// estimate: a live node sends 100 Trying within about one round trip). Equal to
    /// `inviteTimeout` turns the adaptation off.
    public var inviteTimeoutMin: Duration = .milliseconds(250)
    /// Final responses from a node that send the INVITE to the next node.
    public var retryOn: Set<Int> = [408, 500, 502, 503, 504]
    /// Nodes tried per INVITE, the first included.
    public var maxAttempts = 3
    /// How long a node that failed an INVITE is skipped (tried last) before traffic finds it again.
    public var holdDown: Duration = .seconds(5)
}

/// Limits on SIP over TCP, so slow or idle peers cannot hold connections (slowloris).
public struct TCPSettings: Sendable, Hashable {
    /// A connection that has sent at least one complete message is closed after this long idle.
    public var idleTimeout: Duration = .seconds(300)
    /// A connection that has not yet sent one complete message is closed after this long idle.
    public var firstMessageTimeout: Duration = .seconds(30)
    /// A message must be complete (headers and body) within this time of its first byte.
    public var headerTimeout: Duration = .seconds(10)
    /// Open connections in all; beyond it new ones are closed at once.
    public var maxConnections = 10_000
    /// Open connections from one IP address (our nodes excepted); beyond it new ones are refused.
    public var maxConnectionsPerSource = 256

    public init() {}
}

public struct ProxySettings: Sendable, Hashable {
    public var listen: [ListenAddress]
    /// The host:port written in Via and Record-Route. Defaults to the first listen address.
    public var advertise: HostPort
    public var trusted: [IPv4Network]
    /// Where `/metrics` and `/healthz` are served.
    public var metrics: HostPort?
    /// The region this proxy serves (preferred for dispatch), when not given on the command line.
    public var region: String?
    public var tcp = TCPSettings()
    /// Out-of-dialog methods besides INVITE that are dispatched to a node (as non-INVITE
    /// transactions, by the same policy and failover); others get 405 with `Allow`.
    public var dispatchMethods: [String] = ProxySettings.defaultDispatchMethods
    /// Server transactions alive at once (`proxy.max_transactions`), those in their timer
    /// windows included. A new request beyond it gets 503 with Retry-After, so memory stays
    /// bounded under any flood. A call holds an INVITE and a BYE transaction for their 32 s
    /// timer windows: the default takes about 7,800 calls/s sustained.
    public var maxTransactions = 500_000
    /// Certificates for SIP over TLS (`proxy.tls`); nil when no TLS is configured.
    public var tls: TLSSettings?

    public static let defaultDispatchMethods = ["REGISTER", "MESSAGE", "SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "INFO"]
}

/// A validated `regions.yaml`: it cannot hold an invalid value.
public struct RegionsConfig: Sendable, Hashable {
    public var proxy: ProxySettings
    public var policy: DispatchPolicy
    public var probe: ProbeSettings
    public var failover: FailoverSettings
    /// Regions in name order.
    public var regions: [Region]
    /// `dispatch.spill_at`: a preferred region whose usable nodes are past this share of their
    /// capacity (0 < share ≤ 1) is offered new calls only after the other regions. nil: never.
    public var spillAt: Double? = nil
    /// Who may send requests and how fast (`edge:`): flood control, scanners, unknown sources.
    public var edge = EdgeSettings()
    /// The carriers allowed in, with their limits (`trunks:`).
    public var trunks: [Trunk] = []

    public var allNodes: [Node] { regions.flatMap(\.nodes) }

    public func region(named name: String) -> Region? { regions.first { $0.name == name } }
}

/// Whitespace-trimmed copy of `text` (no Foundation in this module).
func trimmed(_ text: String) -> String {
    var s = Substring(text)
    while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" { s.removeLast() }
    return String(s)
}
