import API
import ArgumentParser
import CallPlane
import Bus
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Store

/// `switchyard api`: the call API (Hummingbird) over PostgreSQL and NATS JetStream.
struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Run the call API: POST /v1/calls and friends, backed by PostgreSQL and the JetStream stream 'calls'."
    )

    @Option(help: "Where the API listens, host:port.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* variables.")
    var database: String?

    @Option(help: "NATS server URL(s). Default: $NATS_URL, else nats://127.0.0.1:4222.")
    var nats: String?

    @Option(help: "PostgreSQL connections (and NATS publish threads).")
    var pool: Int = 8

    @Option(help: "regions.yaml: a call's 'region' must be one of its regions. Without it, any well-formed region name is accepted.")
    var config: String?

    @Option(help: "Log level.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        guard let (host, port) = splitHostPort(listen) else { throw ValidationError("--listen \(listen): not host:port") }
        let level = logLevel
        bootstrapLogging(level)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "switchyard.api")
        let env = ProcessInfo.processInfo.environment
        let postgres = PostgresPool(conninfo: database ?? env["DATABASE_URL"] ?? "", size: pool, logger: logger)
        do {
            let applied = try await Migrations.migrate(postgres)
            if !applied.isEmpty { logger.notice("applied migrations", metadata: ["versions": "\(applied)"]) }
        } catch {
            throw CommandFailure("PostgreSQL: \(error)")
        }
        let natsURL = nats ?? env["NATS_URL"] ?? "nats://127.0.0.1:4222"
        let bus: NATSBus
        do {
            bus = try await NATSBus.connect(url: natsURL, name: "switchyard-api", threads: pool, logger: logger)
            try await bus.ensureStream(CallPublisher.stream)
        } catch {
            throw CommandFailure("NATS \(natsURL): \(error)")
        }
        let regions = try config.map { Set(try loadRegions($0).regions.map(\.name)) }
        let server = APIServer(pool: postgres, bus: bus, logger: logger, regions: regions) {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
        let app = Application(
            router: server.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "switchyard"),
            logger: logger)
        let sweeper = OutboxService(sweeper: OutboxSweeper(publisher: server.publisher))
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: app), .init(service: sweeper)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        logger.notice("API listening", metadata: ["listen": "\(host):\(port)", "nats": "\(natsURL)"])
        try await group.run()
        await bus.close()
        await postgres.shutdown()
    }
}

/// The outbox sweeper as a service: stops on graceful shutdown.
struct OutboxService: Service {
    let sweeper: OutboxSweeper
    func run() async throws {
        await cancelWhenGracefulShutdown { await sweeper.run() }
    }
}

/// `switchyard accounts create --name NAME`: prints a new API key once, and the account's
/// Twilio credentials (AccountSid and AuthToken). `switchyard accounts limits`: the account's
/// pacing (calls per second) and concurrent-call limit on the Twilio surface.
struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts", abstract: "Manage API accounts.", subcommands: [Create.self, Limits.self, Twilio.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an account and print its API key (shown only once).")

        @Option(help: "Account name.")
        var name: String

        @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* variables.")
        var database: String?

        @Flag(help: "Print only the key (for scripts).")
        var quiet = false

        func run() async throws {
            let pool = PostgresPool(conninfo: database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "", size: 1)
            do {
                try await Migrations.migrate(pool)
                let (account, key) = try await AccountStore(pool: pool).create(name: name)
                await pool.shutdown()
                if quiet {
                    print(key)
                } else {
                    print(
                        """
                        account \(account.id) (\(account.name))
                        api key: \(key)
                        (store it now: only its hash is kept)
                        callback signing secret: \(account.signingSecret ?? "-")
                        twilio AccountSid: \(TwilioSID.make(TwilioSID.account, uuid: account.id))
                        twilio AuthToken: \(account.signingSecret ?? "-") (the signing secret)
                        """
                    )
                }
            } catch {
                await pool.shutdown()
                throw CommandFailure("\(error)")
            }
        }
    }

    struct Limits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "limits", abstract: "Set an account's Twilio-surface limits: calls placed per second, and calls open at once.")

        @Option(help: "The account's id (UUID) or AccountSid (AC…).")
        var account: String

        @Option(name: .customLong("calls-per-second"), help: "Calls placed per second (Twilio's CPS; default for a new account: 1).")
        var callsPerSecond: Double?

        @Option(name: .customLong("max-concurrent"), help: "Calls queued, ringing or in progress at once (default for a new account: 1000).")
        var maxConcurrent: Int?

        @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* variables.")
        var database: String?

        func validate() throws {
            if let c = callsPerSecond, !(c > 0 && c <= 100_000) { throw ValidationError("--calls-per-second must be above 0 and at most 100000") }
            if let m = maxConcurrent, m < 1 { throw ValidationError("--max-concurrent must be at least 1") }
            if callsPerSecond == nil, maxConcurrent == nil { throw ValidationError("give --calls-per-second, --max-concurrent or both") }
        }

        func run() async throws {
            let id = TwilioSID.uuid(account, prefix: TwilioSID.account) ?? account.lowercased()
            let pool = PostgresPool(conninfo: database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "", size: 1)
            do {
                try await Migrations.migrate(pool)
                try await AccountStore(pool: pool).setLimits(account: id, callsPerSecond: callsPerSecond, maxConcurrentCalls: maxConcurrent)
                await pool.shutdown()
            } catch {
                await pool.shutdown()
                throw CommandFailure("\(error)")
            }
        }
    }

    struct Twilio: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "twilio", abstract: "Print the Twilio credentials (AccountSid AuthToken) of the account an API key belongs to.")

        @Option(help: "The account's API key.")
        var key: String

        @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* variables.")
        var database: String?

        func run() async throws {
            let pool = PostgresPool(conninfo: database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "", size: 1)
            do {
                let accounts = AccountStore(pool: pool)
                guard let account = try await accounts.authenticate(key: key), let secret = try await accounts.signingSecret(account: account.id) else {
                    await pool.shutdown()
                    throw CommandFailure("no account has that key")
                }
                await pool.shutdown()
                print("\(TwilioSID.make(TwilioSID.account, uuid: account.id)) \(secret)")
            } catch let e as CommandFailure {
                throw e
            } catch {
                await pool.shutdown()
                throw CommandFailure("\(error)")
            }
        }
    }
}
