/// One source a trunk sends from: an IPv4 network and, optionally, one port (like a row of
/// Kamailio's `permissions` address table).
public struct TrunkSource: Sendable, Hashable, CustomStringConvertible {
    public var network: IPv4Network
    public var port: Int?

    public init(network: IPv4Network, port: Int? = nil) {
        self.network = network
        self.port = port
    }

    /// `a.b.c.d`, `a.b.c.d/len`, or either followed by `:port`.
    public init?(parsing text: String) {
        let t = trimmed(text)
        var networkText = Substring(t)
        var port: Int?
        if let colon = t.lastIndex(of: ":") {
            guard let p = Int(t[t.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            networkText = t[..<colon]
        }
        guard let network = IPv4Network(parsing: String(networkText)) else { return nil }
        self.network = network
        self.port = port
    }

    public func contains(ip: UInt32, port: Int) -> Bool {
        network.contains(ip) && (self.port == nil || self.port == port)
    }

    /// The order in which sources are tried, most specific first: longer prefix, then a
    /// port-specific entry before a port-less one of the same prefix.
    public func isMoreSpecific(than other: TrunkSource) -> Bool {
        if network.prefix != other.network.prefix { return network.prefix > other.network.prefix }
        return port != nil && other.port == nil
    }

    public var description: String { port.map { "\(network):\($0)" } ?? network.description }
}

/// A carrier allowed to send calls through the proxy (`trunks:` in `regions.yaml`).
public struct Trunk: Sendable, Hashable {
    public var name: String
    public var sources: [TrunkSource]
    /// For SIP over TLS: the client certificate subject this trunk presents (its common name,
    /// a DNS name of its subjectAltName, or the whole subject as `CN=...,O=...`).
    public var tlsSubject: String?
    /// For SIP over TLS: the CA (PEM file) that signs this trunk's client certificates. Set, a
    /// TLS connection from the trunk's sources must present a certificate it signed.
    public var tlsCA: String?
    /// New INVITEs per second; beyond it 503 with Retry-After. nil: no limit.
    public var callsPerSecond: Int?
    /// Calls from INVITE to BYE (or a failed final response); beyond it 503. nil: no limit.
    public var maxConcurrent: Int?

    public init(
        name: String, sources: [TrunkSource], tlsSubject: String? = nil, tlsCA: String? = nil, callsPerSecond: Int? = nil, maxConcurrent: Int? = nil
    ) {
        self.tlsCA = tlsCA
        self.name = name
        self.sources = sources
        self.tlsSubject = tlsSubject
        self.callsPerSecond = callsPerSecond
        self.maxConcurrent = maxConcurrent
    }
}

/// What happens to a request from a source that is no trunk, no `proxy.trusted` network and
/// no node.
public enum UnknownSourceAction: String, Sendable, Hashable, CaseIterable {
    /// Answered 403 Forbidden.
    case reject
    /// Dropped without an answer (nothing tells a scanner a SIP server is here).
    case drop
}

/// Per-source flood control in the manner of Kamailio's `pike`: a source sending more than
/// `requests` messages within `window` is ignored for `ban`.
public struct FloodSettings: Sendable, Hashable {
    public var enabled = true
    public var requests = 30
    public var window: Duration = .seconds(2)
    public var ban: Duration = .seconds(120)
    /// Sources tracked at once, so a spoofed flood from many addresses cannot grow memory.
    public var maxSources = 100_000
    /// Trunks are governed by their own `calls_per_second`; true counts them here too.
    public var applyToTrunks = false

    public init() {}
}

/// Requests from known SIP scanners, recognised by their User-Agent.
public struct ScannerSettings: Sendable, Hashable {
    /// Drop out-of-dialog requests whose User-Agent contains one of `userAgents`.
    public var drop = true
    /// Case-insensitive substrings.
    public var userAgents = ScannerSettings.defaultUserAgents

    public static let defaultUserAgents = [
        "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "sundayddr", "iwar", "sivus", "pplsip", "smap", "gulp",
    ]

    public init() {}
}

/// The proxy's edge toward the internet (`edge:` in `regions.yaml`).
public struct EdgeSettings: Sendable, Hashable {
    public var unknownSource = UnknownSourceAction.reject
    public var flood = FloodSettings()
    public var scanners = ScannerSettings()
    /// The product name in the `Server` header of our answers and the `User-Agent` of our own
    /// requests; nil leaves both headers out.
    public var serverHeader: String? = "switchyard"
    /// A trunk call whose BYE the proxy never saw stops counting after this long.
    public var maxCallDuration: Duration = .seconds(4 * 3600)

    public init() {}
}

/// SIP over TLS (`proxy.tls`): the proxy's certificate and the CAs it checks peers against.
/// Paths are absolute (relative ones are resolved against the directory of `regions.yaml`);
/// the files are read when the proxy starts and again on every reload.
public struct TLSSettings: Sendable, Hashable {
    /// PEM: the proxy's certificate, then any intermediates.
    public var certificate: String
    /// PEM: the certificate's private key.
    public var key: String
    /// PEM CA bundle: set, every TLS client is asked for a certificate, and one it presents
    /// must chain to this bundle (or to its trunk's `tls_ca`). Unset, only trunks with a
    /// `tls_ca` or a `tls_subject` are asked.
    public var clientCA: String?
    /// PEM CA bundle the certificates of nodes reached over TLS must chain to. Unset, the
    /// connection to a node is encrypted but its certificate is not checked.
    public var nodeCA: String?

    public init(certificate: String, key: String, clientCA: String? = nil, nodeCA: String? = nil) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
        self.nodeCA = nodeCA
    }
}
