import Dispatcher
import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import SIPProxy
import ServiceLifecycle

/// The admin endpoint of the proxy and the workers, on Hummingbird (already in the binary for
/// the API): `GET /metrics` (Prometheus text), `/healthz` (liveness: 503 while a SIP listener is
/// down or no node is active), `/ready` (200 only while this region can take a call), `/nodes` (the dispatcher
/// table), `POST /nodes/{name}/drain|enable`, `GET /edge` (flood bans, trunk counters),
/// `POST /edge/unban/{address}`, `POST /reload`.
struct MetricsServer: Service {
    let address: HostPort
    let registry: PrometheusCollectorRegistry
    let proxy: ProxyHandle?
    let reloader: ConfigReloader?
    var drainSync: NodeDrainSync? = nil
    let group: any EventLoopGroup
    let logger: Logger

    func run() async throws {
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil, reuseAddress: true),
            eventLoopGroupProvider: .shared(group), logger: logger)
        logger.notice("metrics listening", metadata: ["address": "\(address)"])
        try await app.run()
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        let registry = self.registry, proxy = self.proxy, reloader = self.reloader, drainSync = self.drainSync
        router.get("metrics") { _, _ in
            Self.text(.ok, String(decoding: registry.emitToBuffer(), as: UTF8.self), contentType: "text/plain; version=0.0.4")
        }
        router.get("healthz") { _, _ in
            // 503 while any configured SIP listener is down or no node is active: a deaf proxy,
            // or one with nowhere to send a call, is not healthy. The body says which.
            guard let health = proxy?.health() else { return Self.text(.ok, "ok\n") }
            do {
                let h = try await health.get()
                return h.healthy ? Self.text(.ok, "ok\n") : Self.text(.serviceUnavailable, "\(h.reason)\n")
            } catch {
                return Self.text(.serviceUnavailable, "proxy not running\n")
            }
        }
        router.get("ready") { _, _ in
            // For DNS failover health checks: 200 only while this region can take a call.
            guard let ready = proxy?.readiness(), let r = try? await ready.get() else {
                return Self.text(.serviceUnavailable, "not ready: proxy not running\n")
            }
            return Self.text(r.ready ? .ok : .serviceUnavailable, "\(r.ready ? "ready" : "not ready"): \(r.reason)\n")
        }
        router.get("nodes") { _, _ in
            guard let table = proxy?.nodeStatuses(), let rows = try? await table.get() else {
                return try Self.json(.serviceUnavailable, ErrorBody(error: "proxy not running"))
            }
            return try Self.json(.ok, rows)
        }
        router.post("nodes/:name/:action") { _, context in
            let name = context.parameters.get("name") ?? ""
            let action = context.parameters.get("action") ?? ""
            guard action == "drain" || action == "enable" else { return try Self.json(.notFound, ErrorBody(error: "no such action")) }
            let drain = action == "drain"
            guard let done = proxy?.setDrained(name, drain), (try? await done.get()) == true else {
                return try Self.json(.notFound, ErrorBody(error: "no such node"))
            }
            // Applied here at once; with shared drain state also written to the bucket, which
            // every other proxy and orchestrator watches.
            if let drainSync {
                var problem: String?
                do {
                    if try await !drainSync.setDrained(name, drain) { problem = "shared drain state not reachable yet" }
                } catch {
                    problem = "shared drain state: \(error)"
                }
                if let problem {
                    // Applied to this proxy only: say so, the operator must retry.
                    return try Self.json(.serviceUnavailable, DrainProblem(node: name, error: problem, applied: "this proxy only"))
                }
            }
            return try Self.json(.ok, DrainDone(node: name, state: drain ? "drained" : "enabled"))
        }
        router.get("edge") { _, _ in
            guard let status = proxy?.edgeStatus(), let value = try? await status.get() else {
                return try Self.json(.serviceUnavailable, ErrorBody(error: "proxy not running"))
            }
            return try Self.json(.ok, value)
        }
        router.post("edge/unban/:address") { _, context in
            let address = context.parameters.get("address") ?? ""
            guard let done = proxy?.unban(address), (try? await done.get()) == true else {
                return try Self.json(.notFound, ErrorBody(error: "\(address) is not banned"))
            }
            return try Self.json(.ok, Unbanned(address: address, banned: false))
        }
        router.post("reload") { _, _ in
            guard let reloader else { return try Self.json(.serviceUnavailable, ErrorBody(error: "no reloader")) }
            switch await reloader.reload() {
            case .success(let diff):
                return try Self.json(.ok, Reloaded(reloaded: true, added: diff.added, removed: diff.removed, replaced: diff.replaced, kept: diff.kept.count))
            case .failure(let error):
                return try Self.json(.unprocessableContent, ReloadFailed(reloaded: false, error: "\(error)"))
            }
        }
        return router
    }

    struct ErrorBody: Encodable { var error: String }
    struct Unbanned: Encodable { var address: String, banned: Bool }
    struct DrainDone: Encodable { var node: String, state: String }
    struct DrainProblem: Encodable { var node: String, error: String, applied: String }
    struct Reloaded: Encodable { var reloaded: Bool, added: [String], removed: [String], replaced: [String], kept: Int }
    struct ReloadFailed: Encodable { var reloaded: Bool, error: String }

    static func text(_ status: HTTPResponse.Status, _ body: String, contentType: String = "text/plain") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(value)
        data.append(10)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
