import Logging
import NIOCore
import NIOPosix
import SIPCore

/// The NIO side of the proxy: UDP and TCP listeners, outbound TCP connections, and the
/// `SIPTransportSender` the core writes through. Everything here runs on one event loop, the
/// core's, so handlers call the core directly.
final class SIPTransportLayer: SIPTransportSender {
    let loop: any EventLoop
    let logger: Logger
    let limits: SIPLimits
    let tcpIdleTimeout: TimeAmount
    let maxTCPConnections: Int
    /// Set once, right after the core is built (the core and the layer reference each other).
    var core: ProxyCore?

    var udpChannel: (any Channel)?
    var listeners: [any Channel] = []
    private var udpDirty = false
    private var nextConnectionID: UInt64 = 1
    private var connections: [UInt64: any Channel] = [:]
    private var connectionsByAddress: [SocketAddress: UInt64] = [:]
    private var pendingConnects: [SocketAddress: [(ByteBuffer, ClientTransactionKey?)]] = [:]

    init(loop: any EventLoop, limits: SIPLimits, tcpIdleTimeout: TimeAmount = .seconds(300), maxTCPConnections: Int = 10_000, logger: Logger) {
        self.loop = loop
        self.limits = limits
        self.tcpIdleTimeout = tcpIdleTimeout
        self.maxTCPConnections = maxTCPConnections
        self.logger = logger
    }

    var tcpConnectionCount: Int { connections.count }

    // MARK: SIPTransportSender

    func send(_ bytes: ByteBuffer, to destination: SIPEndpoint, failureToken: ClientTransactionKey?) {
        loop.preconditionInEventLoop()
        switch destination.transport {
        case .udp:
            guard let udp = udpChannel else { return }
            udp.write(AddressedEnvelope(remoteAddress: destination.address, data: bytes), promise: nil)
            udpDirty = true
        case .tcp:
            if let id = destination.connectionID ?? connectionsByAddress[destination.address], let channel = connections[id] {
                write(bytes, on: channel, failureToken: failureToken)
            } else {
                connect(to: destination.address, first: bytes, failureToken: failureToken)
            }
        }
    }

    func flush() {
        if udpDirty {
            udpDirty = false
            udpChannel?.flush()
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
            bound.value.core?.transportFailed(token: failureToken, now: .now)
        }
        channel.writeAndFlush(bytes, promise: promise)
    }

    // MARK: TCP connections

    private func connect(to address: SocketAddress, first bytes: ByteBuffer, failureToken: ClientTransactionKey?) {
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
                    try bound.value.addStreamHandlers(to: channel)
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
                    for case (_, let token?) in queued { layer.core?.transportFailed(token: token, now: .now) }
                }
            }
    }

    /// Pipeline of a SIP TCP connection: idle timeout, Content-Length framing, the core.
    func addStreamHandlers(to channel: any Channel) throws {
        let id = nextConnectionID
        nextConnectionID += 1
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(IdleStateHandler(allTimeout: tcpIdleTimeout))
        try sync.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
        try sync.addHandler(SIPStreamHandler(layer: self, connectionID: id))
    }

    func registerConnection(_ id: UInt64, channel: any Channel) -> Bool {
        guard connections.count < maxTCPConnections else {
            logger.warning("TCP connection limit reached; closing new connection", metadata: ["limit": "\(maxTCPConnections)"])
            return false
        }
        connections[id] = channel
        if let remote = channel.remoteAddress { connectionsByAddress[remote] = id }
        return true
    }

    func unregisterConnection(_ id: UInt64, remote: SocketAddress?) {
        connections[id] = nil
        if let remote, connectionsByAddress[remote] == id { connectionsByAddress[remote] = nil }
    }

    func closeAll() -> EventLoopFuture<Void> {
        let all: [any Channel] = listeners + Array(connections.values)
        let futures = all.map { $0.close().recover { _ in } }
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }
}

/// Delivers datagrams to the core; flushes batched writes once per read burst.
final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let layer: SIPTransportLayer

    init(layer: SIPTransportLayer) { self.layer = layer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Copy the datagram out of the 2 MiB vector-read buffer: transactions keep messages for
        // up to 32 s, and a slice would pin the whole buffer and defeat NIO's buffer reuse.
        var bytes = context.channel.allocator.buffer(capacity: envelope.data.readableBytes)
        bytes.writeImmutableBuffer(envelope.data)
        layer.core?.received(bytes, from: SIPEndpoint(transport: .udp, address: envelope.remoteAddress), now: .now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        layer.core?.tick(now: .now)
        layer.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors and the like on the shared socket: never close it.
        layer.logger.debug("UDP socket error", metadata: ["error": "\(error)"])
    }
}

/// One SIP TCP connection: framed messages to the core, limits and idle closing.
final class SIPStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let layer: SIPTransportLayer
    let connectionID: UInt64
    private var remote: SocketAddress?

    init(layer: SIPTransportLayer, connectionID: UInt64) {
        self.layer = layer
        self.connectionID = connectionID
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.channel.remoteAddress
        if !layer.registerConnection(connectionID, channel: context.channel) {
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { channelActive(context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        layer.unregisterConnection(connectionID, remote: remote)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let remote else { return }
        layer.core?.received(unwrapInboundIn(data), from: SIPEndpoint(transport: .tcp, address: remote, connectionID: connectionID), now: .now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Requests that came in over TCP may have queued UDP sends towards the nodes.
        layer.core?.tick(now: .now)
        layer.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            layer.logger.debug("closing idle TCP connection", metadata: ["remote": "\(remote.map { "\($0)" } ?? "?")"])
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Framing errors (oversized headers, bad Content-Length): the stream cannot be trusted
        // past this point. Answer the request when it is answerable (400/513), then close.
        layer.logger.info("closing SIP TCP connection", metadata: ["remote": "\(remote.map { "\($0)" } ?? "?")", "error": "\(error)"])
        if let framing = error as? SIPStreamError, let response = framing.rejection(limits: layer.limits) {
            let channel = context.channel
            context.writeAndFlush(NIOAny(response)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }
}
