public import Logging
public import NIOCore
import ESL
public import NIOPosix

/// A running emulated FreeSWITCH node: the ESL server and the SIP UAS on one event loop.
public final class FSNodeServer: Sendable {
    public let configuration: FSNodeConfiguration
    /// Where the SIP UAS and the ESL server actually listen (port 0 in the configuration picks a free one).
    public let sipPort: Int
    public let eslPort: Int
    private let node: NIOLoopBound<FSNode>
    private let sipChannel: any Channel
    private let eslChannel: any Channel

    private init(configuration: FSNodeConfiguration, node: NIOLoopBound<FSNode>, sipChannel: any Channel, eslChannel: any Channel) {
        self.configuration = configuration
        self.node = node
        self.sipChannel = sipChannel
        self.eslChannel = eslChannel
        self.sipPort = sipChannel.localAddress?.port ?? configuration.sipPort
        self.eslPort = eslChannel.localAddress?.port ?? configuration.eslPort
    }

    /// Binds the SIP (UDP) and ESL (TCP) ports and starts the heartbeat. `onDie` runs for the
    /// `die` fault (the CLI exits the process).
    public static func start(
        _ configuration: FSNodeConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "switchyard.fsnode"), onDie: (@Sendable () -> Void)? = nil
    ) async throws -> FSNodeServer {
        let loop = group.next()
        let node = try await loop.submit {
            let n = FSNode(config: configuration, loop: loop, logger: logger)
            if let onDie { n.onDie = onDie }
            return NIOLoopBound(n, eventLoop: loop)
        }.get()
        let sip = try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(SIPUASHandler(node: node.value)) }
            }
            .bind(host: configuration.sipHost, port: configuration.sipPort).get()
        let esl: any Channel
        do {
            esl = try await ServerBootstrap(group: loop, childGroup: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(ESLFrameDecoder(direction: .fromClient, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1024 * 1024)))
                        try ch.pipeline.syncOperations.addHandler(ESLListener(node: node.value))
                    }
                }
                .bind(host: configuration.eslHost, port: configuration.eslPort).get()
        } catch {
            try? await sip.close()
            throw error
        }
        try await loop.submit {
            node.value.sipChannel = sip
            node.value.startHeartbeat()
        }.get()
        logger.info(
            "fsnode up",
            metadata: [
                "name": "\(configuration.name)", "sip": "\(configuration.sipHost):\(sip.localAddress?.port ?? 0)",
                "esl": "\(configuration.eslHost):\(esl.localAddress?.port ?? 0)", "max-channels": "\(configuration.maxChannels)",
            ])
        return FSNodeServer(configuration: configuration, node: node, sipChannel: sip, eslChannel: esl)
    }

    /// Runs an API command as if it came over ESL (`fsnode fault stall`, `show channels count`).
    public func api(_ command: String) async throws -> String {
        let node = self.node
        return try await sipChannel.eventLoop.flatSubmit { node.value.api(command) }.get()
    }

    /// Closes both ports and every ESL connection; channels are dropped without events.
    public func stop() async {
        let node = self.node
        try? await sipChannel.eventLoop.submit {
            node.value.stop()
            for l in Array(node.value.listeners.values) { l.close(notice: true) }
        }.get()
        try? await eslChannel.close()
        try? await sipChannel.close()
    }
}

/// Feeds datagrams to the node.
final class SIPUASHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let node: FSNode

    init(node: FSNode) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        node.sipReceived(envelope.data, from: envelope.remoteAddress)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: UDP keeps going.
        node.logger.debug("SIP socket error", metadata: ["error": "\(error)"])
    }
}
