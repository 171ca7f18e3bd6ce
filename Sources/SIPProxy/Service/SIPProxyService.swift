public import Dispatcher
public import Logging
public import NIOCore
import NIOPosix
import SIPCore
public import ServiceLifecycle

/// The SIP proxy as a swift-service-lifecycle `Service`: binds every listen address of the
/// configuration, runs the core on one event loop, and on graceful shutdown stops taking new
/// INVITEs, lets in-flight transactions finish (bounded by `drainTimeout`), then closes.
public struct SIPProxyService: Service {
    public let regions: RegionsConfig
    public let region: String?
    public let configuration: ProxyConfiguration
    public let logger: Logger
    public let group: any EventLoopGroup
    public let drainTimeout: Duration
    /// Admin access to the running proxy (node table).
    public let handle: ProxyHandle

    public init(
        regions: RegionsConfig, region: String?, configuration: ProxyConfiguration? = nil, group: any EventLoopGroup, logger: Logger,
        drainTimeout: Duration = .seconds(5), handle: ProxyHandle = ProxyHandle()
    ) {
        self.handle = handle
        self.regions = regions
        self.region = region
        self.configuration = configuration ?? ProxyConfiguration(regions: regions)
        self.group = group
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    public func run() async throws {
        let loop = group.next()
        let bound = try await start(on: loop)
        handle.attach(bound)
        logger.notice(
            "SIP proxy listening",
            metadata: ["listen": "\(configuration.listen.map(\.description))", "region": "\(region ?? "-")", "advertise": "\(configuration.advertise)"]
        )
        try? await gracefulShutdown()
        logger.notice("SIP proxy draining")
        try await loop.submit { bound.value.core?.draining = true }.get()
        let deadline = ContinuousClock.now + drainTimeout
        while ContinuousClock.now < deadline {
            let active = try await loop.submit { bound.value.core?.pendingRequestCount ?? 0 }.get()
            if active == 0 { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        try await loop.flatSubmit { bound.value.closeAll() }.get()
        logger.notice("SIP proxy stopped")
    }

    /// Binds the sockets and builds the core on `loop`.
    func start(on loop: any EventLoop) async throws -> NIOLoopBound<SIPTransportLayer> {
        let configuration = self.configuration
        let regions = self.regions
        let region = self.region
        let logger = self.logger
        let layerBox = try await loop.submit {
            let layer = SIPTransportLayer(loop: loop, limits: configuration.limits, logger: logger)
            let dispatcher = NodeDispatcher(config: regions, localRegion: region)
            layer.core = ProxyCore(configuration: configuration, dispatcher: dispatcher, transport: layer, logger: logger, now: .now)
            return NIOLoopBound(layer, eventLoop: loop)
        }.get()

        for listen in configuration.listen {
            switch listen.transport {
            case .udp:
                let channel = try await DatagramBootstrap(group: loop)
                    .channelOption(.socketOption(.so_reuseaddr), value: 1)
                    // recvmmsg: up to 32 datagrams per syscall under load, and one read per
                    // wakeup (a second recvmmsg would mostly return EAGAIN).
                    .channelOption(.datagramVectorReadMessageCount, value: 32)
                    .channelOption(.maxMessagesPerRead, value: 1)
                    // NIO splits one buffer evenly over the vector's messages: 32 × 64 KiB, so no
                    // datagram is cut (it is copied out and the buffer reused, see SIPDatagramHandler).
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 65_536))
                    .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(layer: layerBox.value))
                        }
                    }
                    .bind(host: listen.address.host, port: listen.address.port)
                    .get()
                // Bursts above the default 208 KiB (net.core.rmem_max) are dropped by the kernel
                // before we see them; as root, SO_RCVBUFFORCE lifts the cap (else keep the default).
                #if os(Linux)
                _ = try? await channel.setOption(.socketOption(NIOBSDSocket.Option(rawValue: 33 /* SO_RCVBUFFORCE */)), value: 8 << 20).get()
                #endif
                try await loop.submit {
                    let layer = layerBox.value
                    if layer.udpChannel == nil { layer.udpChannel = channel }
                    layer.listeners.append(channel)
                }.get()
            case .tcp:
                let channel = try await ServerBootstrap(group: loop, childGroup: loop)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(.backlog, value: 256)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try layerBox.value.addStreamHandlers(to: channel)
                        }
                    }
                    .bind(host: listen.address.host, port: listen.address.port)
                    .get()
                try await loop.submit { layerBox.value.listeners.append(channel) }.get()
            }
        }
        // The timer wheel's clock. Under traffic every read burst advances it (SIPDatagramHandler,
        // SIPStreamHandler), so timers fire on the wheel's 10 ms grain; this task only covers quiet
        // periods, at a coarser 50 ms, so an idle proxy wakes up 20 times a second, not 100.
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { _ in
            layerBox.value.core?.tick(now: .now)
        }
        return layerBox
    }
}
