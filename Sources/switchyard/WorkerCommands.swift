import ArgumentParser
import Bus
import Dispatcher
import Foundation
import Logging
import Metrics
import NIOPosix
import Prometheus
import ServiceLifecycle
import Store
import Workers

/// What the two workers share: regions.yaml, PostgreSQL, NATS, ESL password, metrics, logging.
struct WorkerOptions: ParsableArguments {
    @Option(help: "The regions file (nodes and their ESL addresses).")
    var config: String = "regions.yaml"

    @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* variables.")
    var database: String?

    @Option(help: "NATS server URL(s). Default: $NATS_URL, else nats://127.0.0.1:4222.")
    var nats: String?

    @Option(help: "Where /metrics and /healthz listen (host:port), or 'off'.")
    var metrics: String = "off"

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .info

    struct Runtime {
        let regions: RegionsConfig
        let pool: PostgresPool
        let bus: NATSBus
        let logger: Logger
        let registry: PrometheusCollectorRegistry
        let eslPassword: String
    }

    func start(label: String) async throws -> Runtime {
        let regions = try loadRegions(config)
        let level = logLevel
        bootstrapLogging(level)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: label)
        let env = ProcessInfo.processInfo.environment
        let pool = PostgresPool(conninfo: database ?? env["DATABASE_URL"] ?? "", size: 16, logger: logger)
        do {
            try await Migrations.migrate(pool)
        } catch {
            throw CommandFailure("PostgreSQL: \(error)")
        }
        let url = nats ?? env["NATS_URL"] ?? "nats://127.0.0.1:4222"
        let bus: NATSBus
        do {
            bus = try await NATSBus.connect(url: url, name: label, threads: 8, logger: logger)
        } catch {
            throw CommandFailure("NATS \(url): \(error)")
        }
        return Runtime(
            regions: regions, pool: pool, bus: bus, logger: logger, registry: registry,
            eslPassword: env["SWITCHYARD_ESL_PASSWORD"] ?? "ClueCon")
    }

    func services(_ main: any Service, _ rt: Runtime) -> [any Service] {
        var services: [any Service] = [main]
        if metrics != "off", let address = HostPort(parsing: metrics) {
            services.append(
                MetricsServer(
                    address: address, registry: rt.registry, proxy: nil, reloader: nil, group: MultiThreadedEventLoopGroup.singleton, logger: rt.logger))
        }
        return services
    }
}

/// A worker's `run()` as a lifecycle service that drains itself on graceful shutdown (it
/// watches `gracefulShutdown()`), then returns.
struct DrainingService: Service {
    let body: @Sendable () async throws -> Void
    func run() async throws { try await body() }
}

/// `switchyard orchestrator`: places queued calls on nodes and follows their status.
struct OrchestratorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrator", abstract: "Consume the 'calls' stream: originate each call on a node over ESL and move its status from the node's events.")

    @OptionGroup var options: WorkerOptions

    @Option(help: "The region this orchestrator prefers (default: proxy.region, else the first).")
    var region: String?

    @Option(help: "The SIP gateway of the originate: sofia/gateway/<gateway>/<to>.")
    var gateway: String = "carrier"

    @Option(help: "Seconds a node has to create the channel before the next node is tried.")
    var acceptTimeout: Double = 5

    @Option(help: "Seconds before an unacknowledged job is redelivered.")
    var ackWait: Double = 30

    @Option(help: "Seconds an unknown placement state (ESL slow or down) is asked about before the call is given up; never redialed blindly.")
    var confirmFor: Double = 30

    @Option(help: "Seconds a node's ESL may stay lost before its open calls end (cause node-lost, incomplete CDR).")
    var nodeLostAfter: Double = 30

    @Option(help: "On SIGTERM, seconds the calls being placed may take to finish before the process exits.")
    var drainTimeout: Double = 15

    @Flag(help: "Let status callbacks reach loopback, private and link-local addresses (tests and labs only).")
    var allowPrivateCallbacks = false

    func run() async throws {
        let rt = try await options.start(label: "switchyard.orchestrator")
        func ms(_ s: Double) -> Duration { .milliseconds(Int64(s * 1000)) }
        let env = ProcessInfo.processInfo.environment
        let config = Orchestrator.Configuration(
            regions: rt.regions, region: region ?? rt.regions.proxy.region ?? rt.regions.regions.first?.name, gateway: gateway,
            eslPassword: rt.eslPassword, acceptTimeout: ms(acceptTimeout), confirmFor: ms(confirmFor), nodeLostAfter: ms(nodeLostAfter),
            ackWait: ms(ackWait), drainTimeout: ms(drainTimeout),
            allowPrivateCallbacks: allowPrivateCallbacks || env["SWITCHYARD_ALLOW_PRIVATE_CALLBACKS"] == "1")
        let orchestrator = Orchestrator(config, pool: rt.pool, bus: rt.bus, logger: rt.logger)
        // The operator's drain state, shared with the proxies: a drained node gets no originate.
        let drainSync = NodeDrainSync(url: rt.bus.url, logger: Logger(label: "switchyard.drain")) { node, drained in
            orchestrator.setDrained(node, drained)
        }
        let group = ServiceGroup(
            configuration: .init(
                // Not cancelled on SIGTERM: the orchestrator drains itself (see `Orchestrator.run`).
                services: (options.services(DrainingService { try await orchestrator.run() }, rt) + [drainSync]).map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: rt.logger))
        rt.logger.notice("orchestrator running", metadata: ["nodes": "\(rt.regions.allNodes.filter { $0.esl != nil }.map(\.name))"])
        try await group.run()
        await rt.bus.close()
        await rt.pool.shutdown()
    }
}

/// `switchyard cdr`: one CDR row and one `events` message per finished channel.
struct CDRCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cdr", abstract: "Write one cdr row per CHANNEL_HANGUP_COMPLETE of every node, and publish it on the 'events' stream.")

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        let rt = try await options.start(label: "switchyard.cdr")
        let writer = CDRWriter(regions: rt.regions, pool: rt.pool, bus: rt.bus, eslPassword: rt.eslPassword, logger: rt.logger)
        let group = ServiceGroup(
            configuration: .init(
                services: options.services(DrainingService { try await writer.run() }, rt).map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: rt.logger))
        rt.logger.notice("CDR writer running", metadata: ["nodes": "\(rt.regions.allNodes.filter { $0.esl != nil }.map(\.name))"])
        try await group.run()
        await rt.bus.close()
        await rt.pool.shutdown()
    }
}
