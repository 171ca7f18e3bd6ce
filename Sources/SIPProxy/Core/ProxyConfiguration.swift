public import Dispatcher
public import SIPCore

/// What the proxy core needs to know, derived once from `RegionsConfig` so the hot path only
/// reads precomputed strings.
public struct ProxyConfiguration: Sendable {
    /// The address written in Via and Record-Route.
    public var advertise: HostPort
    public var listen: [ListenAddress]
    public var trusted: [IPv4Network]
    public var failover: FailoverSettings
    public var probe: ProbeSettings
    /// OPTIONS probing of the nodes (on unless tests turn it off).
    public var probeEnabled: Bool
    public var timers: TimerValues
    /// RFC 3261 §16.6 step 11: how long an INVITE branch may ring (> 3 minutes).
    public var timerC: Duration
    public var limits: SIPLimits
    /// Seconds announced in Retry-After when no node can take a call.
    public var retryAfterSeconds: Int
    /// Limits and deadlines of SIP over TCP (applied to new reads at once on reload).
    public var tcp: TCPSettings
    /// Out-of-dialog methods besides INVITE dispatched to nodes.
    public var dispatchMethods: Set<SIPMethod>
    /// Server transactions at once; a new request beyond it gets 503 (`proxy.max_transactions`).
    public var maxTransactions: Int
    /// Flood control, scanner filter, unknown sources, our Server / User-Agent name.
    public var edge: EdgeSettings
    /// Declared carriers; `trusted` networks are added as one more trunk without limits.
    public var trunks: [Trunk]
    /// `Allow:` line for 405 and OPTIONS answers: what this proxy takes out of dialog.
    let allowHeader: String
    /// `edge.scanners.user_agents`, lowercased bytes, for a search without allocation.
    let scannerPatterns: [[UInt8]]

    /// How this proxy names itself on the wire (Via, Record-Route, its own addresses), behind
    /// one reference: the message path reads it for every message, and a method called on this
    /// struct, read from the core's stored `var`, copies the whole struct (some twenty
    /// reference-counted fields retained and released; ~2 % of the proxy's CPU in `perf`).
    let advertised: AdvertisedForms

    public init(
        regions: RegionsConfig, timers: TimerValues = .rfc3261, timerC: Duration = .seconds(181),
        limits: SIPLimits = .default, retryAfterSeconds: Int = 5
    ) {
        advertise = regions.proxy.advertise
        listen = regions.proxy.listen
        trusted = regions.proxy.trusted
        failover = regions.failover
        probe = regions.probe
        probeEnabled = true
        self.timers = timers
        self.timerC = timerC
        self.limits = limits
        self.retryAfterSeconds = retryAfterSeconds
        tcp = regions.proxy.tcp
        dispatchMethods = Set(regions.proxy.dispatchMethods.map { SIPMethod($0) })
        maxTransactions = regions.proxy.maxTransactions
        edge = regions.edge
        trunks = regions.trunks
        scannerPatterns = regions.edge.scanners.drop ? regions.edge.scanners.userAgents.map { Array($0.lowercased().utf8) } : []
        var allowed = ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"]
        for m in regions.proxy.dispatchMethods where !allowed.contains(m) { allowed.append(m) }
        allowHeader = "Allow: " + allowed.joined(separator: ", ")
        advertised = AdvertisedForms(advertise: advertise, listen: listen)
    }

    /// The name our answers carry in `Server` and our requests in `User-Agent`; nil: none.
    @inline(__always) var serverHeader: String? { edge.serverHeader }
}

/// The precomputed header text and addresses of one proxy (see `ProxyConfiguration.advertised`).
final class AdvertisedForms: Sendable {
    let viaPrefixUDP: String
    let viaPrefixTCP: String
    let viaPrefixTLS: String
    let recordRouteUDP: String
    let recordRouteTCP: String
    let recordRouteTLS: String
    /// Every host:port this proxy answers to, for "is this Route / Via mine" checks.
    let ownAddresses: Set<HostPort>
    /// Our Via value up to its branch (`SIP/2.0/UDP host:port;branch=`) and what parsing it gives
    /// (with a placeholder branch): a response's top Via is this with our branch, and the value
    /// cache is told so instead of parsing it again (`SIPValueCache.remember`).
    let viaValuePrefixUDP: String
    let viaValuePrefixTCP: String
    let viaValuePrefixTLS: String
    private let viaTemplates: [Via?]

    init(advertise: HostPort, listen: [ListenAddress]) {
        let hp = advertise.description
        viaPrefixUDP = "Via: SIP/2.0/UDP \(hp);branch="
        viaPrefixTCP = "Via: SIP/2.0/TCP \(hp);branch="
        recordRouteUDP = "Record-Route: <sip:\(hp);lr>\r\n"
        recordRouteTCP = "Record-Route: <sip:\(hp);transport=tcp;lr>\r\n"
        // TLS has its own port (5061): the advertised host with the first tls:// listener's port.
        let tlsPort = listen.first { $0.transport == .tls }?.address.port ?? ListenAddress.Transport.tls.defaultPort
        let tlsAdvertise = HostPort(host: advertise.host, port: tlsPort)
        viaPrefixTLS = "Via: SIP/2.0/TLS \(tlsAdvertise);branch="
        recordRouteTLS = "Record-Route: <sip:\(tlsAdvertise);transport=tls;lr>\r\n"
        ownAddresses = Set([advertise, tlsAdvertise] + listen.map(\.address))
        viaValuePrefixUDP = String(viaPrefixUDP.dropFirst("Via: ".count))
        viaValuePrefixTCP = String(viaPrefixTCP.dropFirst("Via: ".count))
        viaValuePrefixTLS = String(viaPrefixTLS.dropFirst("Via: ".count))
        viaTemplates = [viaValuePrefixUDP, viaValuePrefixTCP, viaValuePrefixTLS].map { SIPMessageParser.parseVia($0 + "z9hG4bK") }
    }

    /// Our Via value's text up to the branch, for `transport`.
    func viaValuePrefix(_ transport: SIPEndpoint.Transport) -> String {
        switch transport {
        case .udp: viaValuePrefixUDP
        case .tcp: viaValuePrefixTCP
        case .tls: viaValuePrefixTLS
        }
    }

    /// What parsing our Via value for `transport` with `branch` gives: the template's parse with
    /// the branch put in (a branch of ours is a plain token, so nothing else changes).
    func via(_ transport: SIPEndpoint.Transport, branch: String) -> Via? {
        let index: Int
        switch transport {
        case .udp: index = 0
        case .tcp: index = 1
        case .tls: index = 2
        }
        guard var via = viaTemplates[index] else { return nil }
        via.branch = branch
        return via
    }

    func viaPrefix(_ transport: SIPEndpoint.Transport) -> String {
        switch transport {
        case .udp: viaPrefixUDP
        case .tcp: viaPrefixTCP
        case .tls: viaPrefixTLS
        }
    }

    func recordRoute(_ transport: SIPEndpoint.Transport) -> String {
        switch transport {
        case .udp: recordRouteUDP
        case .tcp: recordRouteTCP
        case .tls: recordRouteTLS
        }
    }

    /// The URI names this proxy (host and port, port 5060 when absent).
    func isOwn(_ uri: SIPURI) -> Bool {
        ownAddresses.contains(HostPort(host: uri.host, port: uri.port ?? 5060))
    }

    /// The Via was written by this proxy.
    func isOwn(_ via: Via) -> Bool {
        ownAddresses.contains(HostPort(host: via.host, port: via.port ?? 5060))
    }
}
