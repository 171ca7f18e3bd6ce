public import Dispatcher
public import Logging
public import NIOCore
import SIPCore

/// The RFC 3261 §16 stateful proxy, as logic: messages and timer ticks in, sends out through a
/// `SIPTransportSender`. It owns the transaction tables and is confined to one event loop (or
/// one test), so it takes no locks. Time is always passed in.
public final class ProxyCore: SIPTransportDelegate {
    var config: ProxyConfiguration
    var dispatcher: NodeDispatcher
    let transport: any SIPTransportSender
    let logger: Logger
    let metrics = ProxyMetrics()

    var serverTransactions: [ServerTransactionKey: ServerTransactionRecord] = [:]
    var clientTransactions: [ClientTransactionKey: ClientTransactionRecord] = [:]
    var wheel: TimerWheel<TimerPayload>
    var now: ContinuousClock.Instant
    var nodeEndpoints: [String: SIPEndpoint]
    /// Node name by its SIP address, to account BYEs to the right node.
    var nodeByAddress: [SocketAddress: String]
    /// The nodes' IP addresses.
    var nodeIPs: Set<String>
    /// Per-process branch prefix part, so branches stay unique across restarts.
    let bootID: UInt16
    var branchCounter: UInt64 = 0
    var droppedLogBudget = RateLimitedLog(perSecond: 20)
    /// Set on graceful shutdown: new INVITEs get 503 while in-flight transactions finish.
    public var draining = false
    var pendingProbes: [String: PendingProbe] = [:]
    /// Nodes whose ESL connection (channel counts) is up.
    var eslConnected: Set<String> = []
    var nextProbeAt: ContinuousClock.Instant
    var probeCounter: UInt64 = 0
    /// Per-source flood control (`edge.flood`).
    var flood: FloodGuard
    /// Trunks by source, and their call limits (`trunks`, `proxy.trusted`).
    var trunkGate: TrunkGate
    /// TLS connections whose client certificate named a trunk (connection id → trunk name).
    var connectionTrunks: [UInt64: String] = [:]
    /// Header values parsed moments ago (the Route to us, a dialog's From): not parsed again.
    let valueCache = SIPValueCache()
    /// Paths the core's invariants rule out that were reached anyway (`requestReleased`): 0.
    var internalErrorCount = 0

    public init(configuration: ProxyConfiguration, dispatcher: NodeDispatcher, transport: any SIPTransportSender, logger: Logger, now: ContinuousClock.Instant)
    {
        self.config = configuration
        self.dispatcher = dispatcher
        self.transport = transport
        self.logger = logger
        self.now = now
        self.nextProbeAt = now
        self.wheel = TimerWheel(origin: now)
        flood = FloodGuard(settings: configuration.edge.flood)
        trunkGate = TrunkGate(trunks: configuration.trunks, trusted: configuration.trusted, now: now)
        nodeEndpoints = Self.endpoints(of: dispatcher.config, logger: logger)
        nodeByAddress = Dictionary(nodeEndpoints.map { ($0.value.address, $0.key) }, uniquingKeysWith: { a, _ in a })
        nodeIPs = Set(nodeEndpoints.values.compactMap(\.address.ipAddress))
        bootID = UInt16.random(in: 0...UInt16.max)
    }

    static func endpoints(of regions: RegionsConfig, logger: Logger) -> [String: SIPEndpoint] {
        var endpoints: [String: SIPEndpoint] = [:]
        for node in regions.allNodes {
            if let address = try? SocketAddress(ipAddress: node.sip.host, port: node.sip.port) {
                endpoints[node.name] = SIPEndpoint(transport: SIPEndpoint.Transport(node.transport), address: address)
            } else {
                logger.error("node address is not an IP address; node ignored", metadata: ["node": "\(node.name)", "sip": "\(node.sip)"])
            }
        }
        return endpoints
    }

    /// Applies a new `regions.yaml` while running (SIGHUP or the admin call): nodes, policy,
    /// probing and failover settings change at once; nodes that stay keep their health and load;
    /// transactions in flight are untouched. Listen and advertise addresses need a restart.
    public func reload(_ regions: RegionsConfig) -> NodeDispatcher.ReloadDiff {
        if regions.proxy.listen != config.listen || regions.proxy.advertise != config.advertise {
            logger.warning("proxy.listen / proxy.advertise changed: they take effect on restart only")
        }
        let diff = dispatcher.reload(regions)
        // Built from the running addresses, so the forms derived from them (Via, Record-Route,
        // own addresses) stay those of the sockets actually bound.
        var running = regions
        running.proxy.listen = config.listen
        running.proxy.advertise = config.advertise
        var next = ProxyConfiguration(
            regions: running, timers: config.timers, timerC: config.timerC, limits: config.limits, retryAfterSeconds: config.retryAfterSeconds)
        next.probeEnabled = config.probeEnabled
        config = next
        flood.settings = next.edge.flood
        trunkGate = TrunkGate(trunks: next.trunks, trusted: next.trusted, now: now, keeping: trunkGate)
        nodeEndpoints = Self.endpoints(of: regions, logger: logger)
        nodeByAddress = Dictionary(nodeEndpoints.map { ($0.value.address, $0.key) }, uniquingKeysWith: { a, _ in a })
        nodeIPs = Set(nodeEndpoints.values.compactMap(\.address.ipAddress))
        logger.notice(
            "configuration reloaded",
            metadata: ["added": "\(diff.added)", "removed": "\(diff.removed)", "replaced": "\(diff.replaced)", "kept": "\(diff.kept.count)"]
        )
        return diff
    }

    /// Transactions still running (server and client), including those only absorbing
    /// retransmissions after their final response.
    public var activeTransactionCount: Int { serverTransactions.count + clientTransactions.count }

    /// Requests still waiting for their final response: graceful shutdown waits for zero.
    public var pendingRequestCount: Int { serverTransactions.values.lazy.filter { !$0.machine.hasFinalResponse }.count }

    // MARK: - Inputs

    /// The one way in: every event from the transport layer and the timer task.
    public func handle(_ event: ProxyEvent, now: ContinuousClock.Instant) {
        switch event {
        case .message(let bytes, let source): received(bytes, from: source, now: now)
        case .tick: tick(now: now)
        case .transportFailed(let token): transportFailed(token: token, now: now)
        case .connectionIdentified(let id, let trunk): bindConnection(id, trunk: trunk)
        case .connectionClosed(let id): connectionClosed(id)
        }
    }

    /// The Server header of answers the transport layer makes itself.
    var serverHeader: String? { config.serverHeader }

    /// One datagram, or one framed stream message, from `source`. Sends are queued; the caller
    /// flushes the transport once per read burst, so UDP writes leave in batches.
    private func received(_ bytes: ByteBuffer, from source: SIPEndpoint, now: ContinuousClock.Instant) {
        self.now = now
        metrics.messagesReceived.increment()
        let trunk = source.transport == .tls ? tlsTrunk(source) : trunkGate.rules.match(source)
        guard floodAdmits(source, trunk: trunk) else { return }
        switch SIPMessageParser.parse(bytes, limits: config.limits, datagram: source.transport == .udp, server: config.serverHeader, cache: valueCache) {
        case .message(let msg):
            if msg.isRequest {
                metrics.requestsReceived.increment()
                handleRequest(msg, from: source, trunk: trunk)
            } else {
                metrics.responsesReceived.increment()
                handleResponse(msg, from: source)
            }
        case .rejected(let error, let response):
            if let response {
                metrics.malformedAnswered.increment()
                transport.send(response, to: source, failureToken: nil)
            } else {
                metrics.malformedDropped.increment()
            }
            if droppedLogBudget.allow(now: now) {
                logger.info(
                    "malformed SIP message",
                    metadata: ["source": "\(source)", "error": "\(error)", "action": "\(response == nil ? "dropped" : "answered \(error.statusCode)")"]
                )
            }
        }
    }

    /// Advances timers to `now`: after every read burst and from a coarse periodic task.
    private func tick(now: ContinuousClock.Instant) {
        self.now = now
        while let due = wheel.nextDue(upTo: now) {
            for payload in due {
                switch payload {
                case .server(let ref, let timer, let generation):
                    guard let st = ref.object, st.generations[timer] == generation, case .transaction(let t) = timer else { continue }
                    runServer(st.machine.timerFired(t), st)
                case .client(let ref, let timer, let generation):
                    guard let ct = ref.object, ct.generations[timer] == generation else { continue }
                    clientTimerFired(ct, timer)
                }
            }
        }
        runProber(now: now)
        sweepEdge(now: now)
        transport.flush()
    }

    /// A send for `token` failed at the transport (TCP refused/reset): RFC 3261 §17.1.4.
    private func transportFailed(token: ClientTransactionKey, now: ContinuousClock.Instant) {
        self.now = now
        guard let ct = clientTransactions[token], !ct.abandoned else { return }
        logger.notice("transport error towards branch destination", metadata: ["destination": "\(ct.destination)", "node": "\(ct.node?.name ?? "-")"])
        runClient(ct.machine.transportFailed(), ct, response: nil)
        transport.flush()
    }

    // MARK: - Timers

    func arm(_ st: ServerTransactionRecord, _ timer: CoreTimer, after delay: Duration) {
        let generation = st.generations.bump(timer)
        wheel.schedule(.server(Weak(st), timer, generation), after: delay, now: now)
    }

    func arm(_ ct: ClientTransactionRecord, _ timer: CoreTimer, after delay: Duration) {
        let generation = ct.generations.bump(timer)
        wheel.schedule(.client(Weak(ct), timer, generation), after: delay, now: now)
    }

    func disarm(_ ct: ClientTransactionRecord, _ timer: CoreTimer) {
        _ = ct.generations.bump(timer)
    }

    // MARK: - Helpers shared by requests and responses

    /// A fresh RFC 3261 branch: magic cookie, our marker "sy", the loop hash (§16.6 step 8) and
    /// a unique part.
    func makeBranch(loopHash: UInt32) -> String {
        branchCounter &+= 1
        // z9hG4bKsy + 8 hex (loop hash) + 4 hex (boot id) + "." + 12 hex (counter): built in place.
        let counter = branchCounter
        let boot = bootID
        return String(unsafeUninitializedCapacity: 34) { buf in
            let prefix: StaticString = "z9hG4bKsy"
            var i = 0
            for k in 0..<prefix.utf8CodeUnitCount {
                buf[i] = prefix.utf8Start[k]
                i += 1
            }
            let digits: StaticString = "0123456789abcdef"
            for shift in stride(from: 28, through: 0, by: -4) {
                buf[i] = digits.utf8Start[Int((loopHash >> UInt32(shift)) & 0xF)]
                i += 1
            }
            for shift in stride(from: 12, through: 0, by: -4) {
                buf[i] = digits.utf8Start[Int((boot >> UInt16(shift)) & 0xF)]
                i += 1
            }
            buf[i] = UInt8(ascii: ".")
            i += 1
            for shift in stride(from: 44, through: 0, by: -4) {
                buf[i] = digits.utf8Start[Int((counter >> UInt64(shift)) & 0xF)]
                i += 1
            }
            return i
        }
    }

    /// Where a response to `msg` goes (RFC 3261 §18.2.2, RFC 3581 §4).
    func responseDestination(_ msg: SIPMessage, _ source: SIPEndpoint) -> SIPEndpoint {
        guard source.transport == .udp else { return source }
        let via = msg.topVia
        if case .absent = via.rport, let port = via.port, port != source.address.port, let ip = source.address.ipAddress,
            let address = try? SocketAddress(ipAddress: ip, port: port)
        {
            return SIPEndpoint(transport: .udp, address: address)
        }
        return source
    }

    /// A To tag for responses the proxy generates itself, stable across retransmissions.
    func localTag(_ msg: SIPMessage) -> String {
        "sy" + hex(fnv1a(msg.topVia.branch ?? "", seed: msg.hash(msg.callIDRange)))
    }

    /// Answers `msg` statelessly (no server transaction: a retransmission is answered again).
    func reply(_ msg: SIPMessage, _ source: SIPEndpoint, _ status: Int, _ reason: String, extraHeaders: [String] = []) {
        metrics.localReplies.increment()
        let bytes = ResponseBuilder.response(
            to: msg, status: status, reason: reason, toTag: localTag(msg), extraHeaders: extraHeaders, server: config.serverHeader)
        transport.send(bytes, to: responseDestination(msg, source), failureToken: nil)
    }

    func serverKey(_ msg: SIPMessage, isInvite: Bool) -> ServerTransactionKey {
        let via = msg.topVia
        if let branch = via.branch, via.hasMagicCookie {
            return ServerTransactionKey(branch: branch, via: via, isInvite: isInvite)
        }
        // RFC 2543 peers (§17.2.3): no usable branch, match on the dialog and CSeq instead.
        let legacy = "\(msg.callID)|\(msg.fromTag ?? "")|\(msg.cseq.number)|\(msg.requestURIText)"
        return ServerTransactionKey(branch: legacy, via: via, isInvite: isInvite)
    }

    /// Resolves a next-hop URI to an endpoint (IP literals only: no DNS on the hot path).
    func endpoint(for uri: SIPURI, transportHint: String?) -> SIPEndpoint? {
        // RFC 3261 §26.2: a sips: URI is reached over TLS (port 5061 unless it says otherwise).
        let transport: SIPEndpoint.Transport
        if let name = uri.transport ?? transportHint {
            transport = Self.equalsFolded(name, "tcp") ? .tcp : Self.equalsFolded(name, "tls") ? .tls : .udp
        } else {
            transport = Self.equalsFolded(uri.scheme, "sips") ? .tls : .udp
        }
        let host = uri.maddr ?? uri.host
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard let address = try? SocketAddress(ipAddress: bare, port: uri.port ?? (transport == .tls ? 5061 : 5060)) else { return nil }
        return SIPEndpoint(transport: transport, address: address)
    }

    /// `text` equals the lowercase ASCII `lower`, ignoring case, without allocating.
    static func equalsFolded(_ text: String, _ lower: StaticString) -> Bool {
        let l = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
        return text.utf8.elementsEqual(l) { a, b in (a >= 65 && a <= 90 ? a | 0x20 : a) == b }
    }

    func updateGauges() {
        metrics.serverTransactions.record(serverTransactions.count)
        metrics.clientTransactions.record(clientTransactions.count)
    }
}

/// Caps a log line's rate so a flood of garbage cannot turn into a flood of log lines.
struct RateLimitedLog {
    let perSecond: Int
    private var windowStart: ContinuousClock.Instant?
    private var count = 0

    init(perSecond: Int) { self.perSecond = perSecond }

    mutating func allow(now: ContinuousClock.Instant) -> Bool {
        if let start = windowStart, now - start < .seconds(1) {
            count += 1
            return count <= perSecond
        }
        windowStart = now
        count = 1
        return true
    }
}

extension SIPEndpoint.Transport {
    init(_ transport: ListenAddress.Transport) {
        switch transport {
        case .udp: self = .udp
        case .tcp: self = .tcp
        case .tls: self = .tls
        }
    }
}
