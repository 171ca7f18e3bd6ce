import Dispatcher
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SIPCore

/// The NIO side of the proxy: UDP, TCP and TLS listeners, outbound TCP and TLS connections, and the
/// `SIPTransportSender` the core writes through. Everything here runs on one event loop, the
/// core's: handlers turn what they read into a `ProxyEvent` for the delegate (the core).
///
/// A listener must never stay down while the process runs: one that closes (for any reason but
/// shutdown) is bound again with backoff, and `fatalError` fails when that does not work within
/// `rebindDeadline`, so the service exits non-zero and a supervisor restarts it.
final class SIPTransportLayer: SIPTransportSender {
    let loop: any EventLoop
    let logger: Logger
    let limits: SIPLimits
    var tcp: TCPSettings
    /// Certificates and contexts for SIP over TLS; replaced whole on reload (new connections
    /// use the new one, open ones keep theirs).
    var tls: SIPTLSContexts? {
        didSet {
            if let tls { metrics.tlsCertificateExpiry.record(tls.certificateNotAfter - Int(time(nil))) }
        }
    }
    let metrics = TransportMetrics()
    /// Where events go: the core, which holds this layer as its sender (see `ProxyRuntime`).
    weak var delegate: (any SIPTransportDelegate)?
    /// Called when a listener cannot be bound again: the service ends with this error.
    var onListenerLost: ((ListenerLostError) -> Void)?
    var rebindDeadline: TimeAmount = .seconds(10)

    /// Every configured listener and its channel while it is up.
    private(set) var listeners: [ListenAddress: any Channel] = [:]
    private var configuredListeners: [ListenAddress] = []
    private var downSince: [ListenAddress: NIODeadline] = [:]
    private var shuttingDown = false
    /// Each UDP listener's socket, written by us (read by NIO).
    private var udpSenders: [ListenAddress: UDPSender] = [:]
    /// The socket UDP sends leave from: the first configured UDP listener that is up.
    private var udpSender: UDPSender?
    private var errorLog = RateLimitedLog(perSecond: 10)

    private var nextConnectionID: UInt64 = 1
    private var connections: [UInt64: any Channel] = [:]
    private var connectionsByAddress: [SocketAddress: UInt64] = [:]
    private var connectionsPerSource: [String: Int] = [:]
    private var pendingConnects: [SocketAddress: [(ByteBuffer, ClientTransactionKey?)]] = [:]

    init(loop: any EventLoop, limits: SIPLimits, tcp: TCPSettings = TCPSettings(), logger: Logger) {
        self.loop = loop
        self.limits = limits
        self.tcp = tcp
        self.logger = logger
    }

    var tcpConnectionCount: Int { connections.count }

    /// Configured listeners that are not bound right now (`/healthz` answers 503 while any is).
    var listenersDown: [ListenAddress] { configuredListeners.filter { listeners[$0] == nil } }

    // MARK: SIPTransportSender

    func send(_ bytes: ByteBuffer, to destination: SIPEndpoint, failureToken: ClientTransactionKey?) {
        loop.preconditionInEventLoop()
        if let refusal = DestinationCheck.refusal(for: destination.address) {
            refuse(destination, refusal)
            reportFailure(failureToken)
            return
        }
        switch destination.transport {
        case .udp:
            guard let udpSender else {
                metrics.socketError("udp", "ENOTCONN")
                reportFailure(failureToken)
                return
            }
            udpSender.enqueue(bytes, to: destination.address, token: failureToken)
        case .tcp, .tls:
            if let id = destination.connectionID ?? connectionsByAddress[destination.address], let channel = connections[id] {
                write(bytes, on: channel, failureToken: failureToken)
            } else {
                connect(to: destination.address, tls: destination.transport == .tls, first: bytes, failureToken: failureToken)
            }
        }
    }

    func flush() {
        udpSender?.flush()
    }

    private func refuse(_ destination: SIPEndpoint, _ refusal: DestinationCheck.Refusal) {
        metrics.sendRefused(destination.transport.rawValue.lowercased(), refusal.rawValue)
        if errorLog.allow(now: .now) {
            logger.notice("send to a forbidden destination dropped", metadata: ["to": "\(destination)", "reason": "\(refusal.rawValue)"])
        }
    }

    /// A datagram the kernel refused: dropped, counted, logged at a bounded rate. Never fatal.
    func udpSendFailed(to address: SocketAddress, errno code: CInt, token: ClientTransactionKey?) {
        let name = UDPSender.errnoName(code)
        metrics.socketError("udp", name)
        if errorLog.allow(now: .now) {
            logger.notice("UDP send failed; datagram dropped", metadata: ["to": "\(address)", "errno": "\(name)"])
        }
        reportFailure(token)
    }

    /// RFC 3261 §17.1.4: a request that cannot be sent fails its client transaction at once. Told
    /// on the next loop turn: the core may be in the middle of the action that sent it.
    private func reportFailure(_ token: ClientTransactionKey?) {
        guard let token else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.delegate?.handle(.transportFailed(token), now: .now) }
    }

    /// A notice at a bounded rate (a flood of bad handshakes must not become a flood of lines).
    func logNotice(_ message: Logger.Message, _ metadata: Logger.Metadata) {
        if errorLog.allow(now: .now) { logger.notice(message, metadata: metadata) }
    }

    /// An error NIO reports on a listening socket (it closes the socket only for errors it cannot
    /// recover from; a closed listener is bound again, see `listenerClosed`).
    func socketErrorCaught(_ transport: String, _ error: any Error) {
        let name = (error as? IOError).map { UDPSender.errnoName($0.errnoCode) } ?? "other"
        metrics.socketError(transport, name)
        if errorLog.allow(now: .now) {
            logger.notice("socket error", metadata: ["transport": "\(transport)", "errno": "\(name)", "error": "\(error)"])
        }
    }

    private func write(_ bytes: ByteBuffer, on channel: any Channel, failureToken: ClientTransactionKey?) {
        guard let failureToken else {
            channel.writeAndFlush(bytes, promise: nil)
            return
        }
        let promise = loop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: loop)
        promise.futureResult.whenFailure { _ in
            bound.value.delegate?.handle(.transportFailed(failureToken), now: .now)
        }
        channel.writeAndFlush(bytes, promise: promise)
    }

    // MARK: Listeners

    /// Binds every listen address; throws the first failure (nothing is left bound then).
    func bindAll(_ addresses: [ListenAddress]) -> EventLoopFuture<Void> {
        configuredListeners = addresses
        var chain = loop.makeSucceededVoidFuture()
        for listen in addresses {
            chain = chain.flatMap { self.bind(listen) }
        }
        return chain
    }

    private func bind(_ listen: ListenAddress) -> EventLoopFuture<Void> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let future: EventLoopFuture<any Channel>
        switch listen.transport {
        case .udp: future = bindUDP(listen)
        case .tcp: future = bindTCP(listen, transport: .tcp)
        case .tls: future = bindTCP(listen, transport: .tls)
        }
        return future.map { channel in
            let layer = bound.value
            layer.listeners[listen] = channel
            layer.downSince[listen] = nil
            layer.metrics.listenersDown.record(layer.listenersDown.count)
            channel.closeFuture.whenComplete { _ in bound.value.listenerClosed(listen, channel) }
        }
    }

    private func bindUDP(_ listen: ListenAddress) -> EventLoopFuture<any Channel> {
        let fd: CInt
        do {
            let address = try SocketAddress(ipAddress: listen.address.host, port: listen.address.port)
            // Bursts above the default 208 KiB (net.core.rmem_max) would be dropped by the kernel
            // before we see them; as root, SO_RCVBUFFORCE lifts the cap.
            fd = try UDPSender.openSocket(bindingTo: address, receiveBuffer: 8 << 20, sendBuffer: 4 << 20)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        return DatagramBootstrap(group: loop)
            // recvmmsg: up to 32 datagrams per syscall under load, and one read per wakeup (a
            // second recvmmsg would mostly return EAGAIN).
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.maxMessagesPerRead, value: 1)
            // NIO splits one buffer evenly over the vector's messages: 32 × 64 KiB, so no datagram
            // is cut (it is copied out and the buffer reused, see SIPDatagramHandler).
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(layer: bound.value))
                }
            }
            .withBoundSocket(fd)
            .map { channel in
                let layer = bound.value
                layer.udpSenders[listen] = UDPSender(fd: fd, allocator: channel.allocator) { address, code, token in
                    bound.value.udpSendFailed(to: address, errno: code, token: token)
                }
                layer.chooseUDPSender()
                return channel
            }
    }

    private func bindTCP(_ listen: ListenAddress, transport: SIPEndpoint.Transport) -> EventLoopFuture<any Channel> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        return ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try bound.value.addStreamHandlers(to: channel, inbound: true, transport: transport)
                }
            }
            .bind(host: listen.address.host, port: listen.address.port)
    }

    /// A listener's channel closed. At shutdown that is expected; otherwise it is bound again.
    private func listenerClosed(_ listen: ListenAddress, _ channel: any Channel) {
        guard listeners[listen] === channel else { return }
        listeners[listen] = nil
        // The descriptor is closed (and may be reused): never write to it again.
        if udpSenders.removeValue(forKey: listen) != nil { chooseUDPSender() }
        metrics.listenersDown.record(listenersDown.count)
        guard !shuttingDown else { return }
        logger.error("SIP listener closed unexpectedly; binding it again", metadata: ["listen": "\(listen)"])
        downSince[listen] = .now()
        rebind(listen, delay: .milliseconds(10))
    }

    private func rebind(_ listen: ListenAddress, delay: TimeAmount) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: delay) {
            let layer = bound.value
            guard !layer.shuttingDown, layer.listeners[listen] == nil else { return }
            layer.bind(listen).whenComplete { result in
                let layer = bound.value
                switch result {
                case .success:
                    layer.metrics.rebind(listen.description)
                    layer.logger.notice("SIP listener bound again", metadata: ["listen": "\(listen)"])
                case .failure(let error):
                    let since = layer.downSince[listen] ?? .now()
                    if NIODeadline.now() - since > layer.rebindDeadline {
                        layer.logger.critical(
                            "SIP listener cannot be bound again; stopping", metadata: ["listen": "\(listen)", "error": "\(error)"])
                        layer.onListenerLost?(ListenerLostError(listen: listen, underlying: "\(error)"))
                        return
                    }
                    layer.logger.warning("binding SIP listener failed; retrying", metadata: ["listen": "\(listen)", "error": "\(error)"])
                    layer.rebind(listen, delay: min(delay * 2, .seconds(1)))
                }
            }
        }
    }

    private func chooseUDPSender() {
        udpSender =
            configuredListeners.lazy.filter { $0.transport == .udp }.compactMap { self.udpSenders[$0] }.first
            ?? udpSenders.values.first
    }

    // MARK: TCP connections

    private func connect(to address: SocketAddress, tls: Bool, first bytes: ByteBuffer, failureToken: ClientTransactionKey?) {
        if pendingConnects[address] != nil {
            pendingConnects[address]!.append((bytes, failureToken))
            return
        }
        pendingConnects[address] = [(bytes, failureToken)]
        let bound = NIOLoopBound(self, eventLoop: loop)
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try bound.value.addStreamHandlers(to: channel, inbound: false, transport: tls ? .tls : .tcp)
                }
            }
            .connect(to: address)
            .whenComplete { result in
                let layer = bound.value
                let queued = layer.pendingConnects.removeValue(forKey: address) ?? []
                switch result {
                case .success(let channel):
                    for (b, token) in queued { layer.write(b, on: channel, failureToken: token) }
                case .failure(let error):
                    layer.logger.notice("TCP connect failed", metadata: ["to": "\(address)", "error": "\(error)"])
                    for case (_, let token?) in queued { layer.delegate?.handle(.transportFailed(token), now: .now) }
                }
            }
    }

    /// Pipeline of a SIP stream connection: for TLS the TLS handler and the check of who the
    /// peer is (`TLSIdentityHandler`), then one handler that frames by Content-Length, enforces
    /// the deadlines of `TCPSettings` (a handshake that never ends is a first message that never
    /// comes) and hands messages to the core.
    func addStreamHandlers(to channel: any Channel, inbound: Bool, transport: SIPEndpoint.Transport) throws {
        let id = nextConnectionID
        nextConnectionID += 1
        let pipeline = channel.pipeline.syncOperations
        if transport == .tls {
            guard let tls else { throw TLSMaterialError(file: "-", role: "proxy.tls", problem: "SIP over TLS without certificates") }
            if inbound {
                try pipeline.addHandler(NIOSSLServerHandler(context: tls.serverContext(for: channel.remoteAddress)))
                try pipeline.addHandler(TLSIdentityHandler(layer: self, connectionID: id, contexts: tls))
            } else {
                try pipeline.addHandler(try NIOSSLClientHandler(context: tls.client, serverHostname: nil))
                try pipeline.addHandler(TLSIdentityHandler(layer: self, connectionID: id, contexts: nil))
            }
        }
        try pipeline.addHandler(SIPStreamHandler(layer: self, connectionID: id, inbound: inbound, transport: transport))
    }

    /// Admits a connection, or refuses it (the caller closes it) over the total or per-source limit.
    func registerConnection(_ id: UInt64, channel: any Channel, inbound: Bool) -> Bool {
        guard connections.count < tcp.maxConnections else {
            metrics.tcpRefused("limit")
            if errorLog.allow(now: .now) {
                logger.warning("TCP connection limit reached; closing new connection", metadata: ["limit": "\(tcp.maxConnections)"])
            }
            return false
        }
        let remote = channel.remoteAddress
        if inbound, let remote, delegate?.isBanned(SIPEndpoint(transport: .tcp, address: remote)) == true {
            // A source banned for flooding gets no new connection either.
            metrics.tcpRefused("banned")
            return false
        }
        if inbound, let ip = remote?.ipAddress, delegate?.isNodeIP(ip) != true {
            let open = connectionsPerSource[ip, default: 0]
            guard open < tcp.maxConnectionsPerSource else {
                metrics.tcpRefused("per-source-limit")
                if errorLog.allow(now: .now) {
                    logger.notice(
                        "TCP connections per source over the limit; refused", metadata: ["source": "\(ip)", "limit": "\(tcp.maxConnectionsPerSource)"])
                }
                return false
            }
            connectionsPerSource[ip] = open + 1
        }
        connections[id] = channel
        if let remote { connectionsByAddress[remote] = id }
        metrics.tcpConnections.record(connections.count)
        return true
    }

    func unregisterConnection(_ id: UInt64, remote: SocketAddress?, inbound: Bool) {
        guard connections.removeValue(forKey: id) != nil else { return }
        delegate?.handle(.connectionClosed(id), now: .now)
        if let remote, connectionsByAddress[remote] == id { connectionsByAddress[remote] = nil }
        if inbound, let ip = remote?.ipAddress, let open = connectionsPerSource[ip] {
            connectionsPerSource[ip] = open > 1 ? open - 1 : nil
        }
        metrics.tcpConnections.record(connections.count)
    }

    func closeAll() -> EventLoopFuture<Void> {
        shuttingDown = true
        let all: [any Channel] = Array(listeners.values) + Array(connections.values)
        let futures = all.map { $0.close().recover { _ in } }
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }
}

/// A listener closed and could not be bound again: the proxy must not stay up deaf.
struct ListenerLostError: Error, Sendable, CustomStringConvertible {
    let listen: ListenAddress
    let underlying: String
    var description: String { "SIP listener \(listen) closed and could not be bound again: \(underlying)" }
}
