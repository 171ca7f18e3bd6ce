public import ArgumentParser
import Dispatcher
public import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import SIPProxy
import ServiceLifecycle
import CMallocTuning
import Foundation

/// `switchyard proxy`: the SIP proxy and region router for one region.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the SIP proxy: listens as configured in regions.yaml and dispatches INVITEs to the nodes."
    )

    @Option(help: "The regions file.")
    var config: String = "regions.yaml"

    @Option(help: "The region this proxy serves (preferred for dispatch). Default: proxy.region, else the first region.")
    var region: String?

    @Option(help: "Where /metrics and /healthz listen (host:port). Default: proxy.metrics from the config; 'off' disables.")
    var metrics: String?

    @Option(
        help:
            "How often each node's channel count is read over ESL, in seconds (nodes with an `esl` address; 0 turns ESL monitoring off). The password comes from $SWITCHYARD_ESL_PASSWORD, default ClueCon."
    )
    var eslPoll: Double = 1

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(
        help:
            "SIP listen addresses (transport://host:port, comma-separated), instead of proxy.listen; the first is advertised. For a second proxy on one machine with the same regions.yaml."
    )
    var listen: String?

    @Option(
        help:
            "NATS servers (comma-separated) whose key-value bucket holds the operator's drain state, shared with every proxy and orchestrator. Default: none (drain is local to this proxy)."
    )
    var nats: String?

    func run() async throws {
        tuneMalloc()
        var regions = try loadRegions(config)
        if let listen {
            var addresses: [ListenAddress] = []
            for text in listen.split(separator: ",") {
                let parts = text.split(separator: "/", omittingEmptySubsequences: true)
                guard parts.count == 2, let transport = ListenAddress.Transport(rawValue: String(parts[0].dropLast()).lowercased()),
                    let address = HostPort(parsing: String(parts[1]))
                else { throw ValidationError("--listen \(text): not transport://host:port (udp or tcp)") }
                addresses.append(ListenAddress(transport: transport, address: address))
            }
            guard let first = addresses.first else { throw ValidationError("--listen: no address") }
            regions.proxy.listen = addresses
            regions.proxy.advertise = first.address
        }
        let region = region ?? regions.proxy.region ?? regions.regions.first?.name
        if let region, regions.region(named: region) == nil {
            throw ValidationError("--region \(region): not a region of \(config) (have: \(regions.regions.map(\.name).joined(separator: ", ")))")
        }
        let level = logLevel
        bootstrapLogging(level)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "switchyard.proxy")

        let sipGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handle = ProxyHandle()
        var services: [any Service] = [SIPProxyService(regions: regions, region: region, group: sipGroup, logger: logger, handle: handle)]
        if eslPoll > 0 {
            let password = ProcessInfo.processInfo.environment["SWITCHYARD_ESL_PASSWORD"] ?? "ClueCon"
            services.append(
                NodeLoadMonitor(
                    handle: handle, password: password, pollInterval: .milliseconds(Int64(eslPoll * 1000)),
                    group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "switchyard.esl")))
        }
        let reloader = ConfigReloader(path: config, handle: handle, logger: logger)
        services.append(reloader)
        let metricsAddress = metrics == "off" ? nil : (metrics.flatMap(HostPort.init(parsing:)) ?? regions.proxy.metrics)
        var drainSync: NodeDrainSync?
        if let nats {
            let sync = NodeDrainSync(url: nats, logger: Logger(label: "switchyard.drain")) { node, drained in
                _ = try? await handle.setDrained(node, drained)?.get()
            }
            services.append(sync)
            drainSync = sync
        }
        if let metricsAddress {
            services.append(
                MetricsServer(
                    address: metricsAddress, registry: registry, proxy: handle, reloader: reloader, drainSync: drainSync,
                    group: MultiThreadedEventLoopGroup.singleton, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        try await sipGroup.shutdownGracefully()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// glibc gives each thread its own arena and grows it with mprotect, and returns freed memory
/// eagerly: under SIP load that churn cost ~7 % of the proxy's CPU in `perf`. One arena, and
/// freed memory kept in the process (bounded by the working set).
func tuneMalloc() {
    // One malloc arena (see CMallocTuning): needs a re-exec, since glibc reads it at start.
    let argv = CommandLine.unsafeArgv
    argv.withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self, capacity: Int(CommandLine.argc) + 1) {
        cmalloc_reexec_with_single_arena($0)
    }
    _ = cmalloc_keep_freed_memory()
}
