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
        // Runs until graceful shutdown, or until a listener is lost for good: a proxy must never
        // stay up deaf, so that ends the service with an error (and the process exits non-zero).
        let (lost, lostContinuation) = AsyncStream.makeStream(of: ListenerLostError.self)
        try await loop.submit { bound.value.layer.onListenerLost = { lostContinuation.yield($0) } }.get()
        let failure: ListenerLostError? = await withTaskGroup(of: ListenerLostError?.self) { group in
            group.addTask {
                for await error in lost { return error }
                return nil
            }
            group.addTask {
                try? await gracefulShutdown()
                return nil
            }
            let first = await group.next() ?? nil
            lostContinuation.finish()
            group.cancelAll()
            return first
        }
        if let failure {
            _ = try? await loop.flatSubmit { bound.value.layer.closeAll() }.get()
            throw failure
        }
        logger.notice("SIP proxy draining")
        try await loop.submit { bound.value.core.draining = true }.get()
        let deadline = ContinuousClock.now + drainTimeout
        while ContinuousClock.now < deadline {
            let active = try await loop.submit { bound.value.core.pendingRequestCount }.get()
            if active == 0 { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        try await loop.flatSubmit { bound.value.layer.closeAll() }.get()
        logger.notice("SIP proxy stopped")
    }

    /// Binds the sockets and builds the core on `loop`.
    func start(on loop: any EventLoop) async throws -> NIOLoopBound<ProxyRuntime> {
        let configuration = self.configuration
        let regions = self.regions
        let region = self.region
        let logger = self.logger
        // Certificates are read before anything binds: a bad or expired one stops the start.
        let tls = try SIPTLSContexts.load(regions)
        let runtime = try await loop.submit {
            let dispatcher = NodeDispatcher(config: regions, localRegion: region)
            let runtime = ProxyRuntime(loop: loop, configuration: configuration, dispatcher: dispatcher, tls: tls, logger: logger, now: .now)
            return NIOLoopBound(runtime, eventLoop: loop)
        }.get()
        try await loop.flatSubmit { runtime.value.layer.bindAll(configuration.listen) }.get()
        // The timer wheel's clock. Under traffic every read burst advances it (SIPDatagramHandler,
        // SIPStreamHandler), so timers fire on the wheel's 10 ms grain; this task only covers quiet
        // periods, at a coarser 50 ms, so an idle proxy wakes up 20 times a second, not 100.
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { _ in
            runtime.value.core.handle(.tick, now: .now)
        }
        return runtime
    }
}
