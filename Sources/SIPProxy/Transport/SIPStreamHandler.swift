import Dispatcher
import NIOCore
import SIPCore

/// One SIP TCP connection: frames messages by Content-Length (RFC 3261 §18.3), hands them to the
/// core, and closes the connection when a peer is too slow or too quiet (slowloris):
/// - a message must be complete within `headerTimeout` of its first byte;
/// - a connection that has not sent one complete message yet is closed after
///   `firstMessageTimeout` idle, an established one after `idleTimeout`.
/// Connections the proxy opened (towards nodes) count as established from the start.
final class SIPStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let layer: SIPTransportLayer
    let connectionID: UInt64
    let inbound: Bool
    /// `.tcp`, or `.tls` behind a TLS handler (which decrypts before this one reads).
    let transport: SIPEndpoint.Transport
    private var remote: SocketAddress?
    private var registered = false
    private let framer: NIOSingleStepByteToMessageProcessor<SIPStreamDecoder>
    private var established: Bool
    private var lastActivity = NIODeadline.now()
    /// When the first byte of the message now being received arrived.
    private var messageStarted: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var closing = false

    init(layer: SIPTransportLayer, connectionID: UInt64, inbound: Bool, transport: SIPEndpoint.Transport = .tcp) {
        self.transport = transport
        self.layer = layer
        self.connectionID = connectionID
        self.inbound = inbound
        self.established = !inbound
        self.framer = NIOSingleStepByteToMessageProcessor(SIPStreamDecoder(limits: layer.limits))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard !registered, !closing else { return }
        remote = context.channel.remoteAddress
        guard layer.registerConnection(connectionID, channel: context.channel, inbound: inbound) else {
            closing = true
            context.close(promise: nil)
            return
        }
        registered = true
        lastActivity = context.eventLoop.now
        armTimer(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if registered { layer.unregisterConnection(connectionID, remote: remote, inbound: inbound) }
        registered = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let remote, !closing else { return }
        let now = context.eventLoop.now
        lastActivity = now
        let endpoint = SIPEndpoint(transport: transport, address: remote, connectionID: connectionID)
        do {
            try framer.process(buffer: unwrapInboundIn(data)) { message in
                established = true
                layer.delegate?.handle(.message(message, from: endpoint), now: .now)
            }
        } catch {
            framingFailed(context, error)
            return
        }
        if framer.unprocessedBytes > 0 {
            if messageStarted == nil { messageStarted = now }
        } else {
            messageStarted = nil
        }
        armTimer(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Requests that came in over TCP may have queued UDP sends towards the nodes.
        layer.delegate?.handle(.tick, now: .now)
        layer.flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        layer.logger.debug("SIP TCP connection error", metadata: ["remote": "\(describe(remote))", "error": "\(error)"])
        close(context, reason: "error")
    }

    /// Framing errors (oversized headers, bad Content-Length): the stream cannot be trusted past
    /// this point. Answer the request when it is answerable (400/513), then close.
    private func framingFailed(_ context: ChannelHandlerContext, _ error: any Error) {
        layer.logger.info("closing SIP TCP connection", metadata: ["remote": "\(describe(remote))", "error": "\(error)"])
        layer.metrics.tcpClosed("framing")
        closing = true
        if let framing = error as? SIPStreamError, let response = framing.rejection(limits: layer.limits, server: layer.delegate?.serverHeader) {
            let channel = context.channel
            context.writeAndFlush(NIOAny(response)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }

    // MARK: Deadlines

    /// The earliest moment this connection must be looked at again.
    private func nextDeadline() -> NIODeadline {
        let tcp = layer.tcp
        let idle = lastActivity + TimeAmount(established ? tcp.idleTimeout : tcp.firstMessageTimeout)
        guard let started = messageStarted else { return idle }
        return min(idle, started + TimeAmount(tcp.headerTimeout))
    }

    /// One scheduled check per connection, moved only when the deadline comes earlier: reads
    /// that push it later cost nothing (the check re-arms itself when it fires early).
    private func armTimer(_ context: ChannelHandlerContext) {
        let deadline = nextDeadline()
        if let current = timerDeadline, timer != nil, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let me = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            me.value.timerFired(bound.value)
        }
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = nil
        guard registered, !closing else { return }
        let now = context.eventLoop.now
        let tcp = layer.tcp
        if let started = messageStarted, now >= started + TimeAmount(tcp.headerTimeout) {
            close(context, reason: "header-timeout")
            return
        }
        if now >= lastActivity + TimeAmount(established ? tcp.idleTimeout : tcp.firstMessageTimeout) {
            close(context, reason: established ? "idle" : "first-message-timeout")
            return
        }
        armTimer(context)
    }

    private func close(_ context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        layer.metrics.tcpClosed(reason)
        layer.logger.debug("closing SIP TCP connection", metadata: ["remote": "\(describe(remote))", "reason": "\(reason)"])
        context.close(promise: nil)
    }

    private func describe(_ address: SocketAddress?) -> String {
        address.map { "\($0)" } ?? "?"
    }
}
