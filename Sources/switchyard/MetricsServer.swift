import Dispatcher
import Foundation
import SIPProxy
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `/metrics` (Prometheus text format), `/healthz` and `/nodes` (the dispatcher table as JSON)
/// over plain NIOHTTP1: three read-only routes do not justify an HTTP framework in the proxy.
struct MetricsServer: Service {
    let address: HostPort
    let registry: PrometheusCollectorRegistry
    let proxy: ProxyHandle?
    let reloader: ConfigReloader?
    var drainSync: NodeDrainSync? = nil
    let group: any EventLoopGroup
    let logger: Logger

    func run() async throws {
        let registry = self.registry
        let proxy = self.proxy
        let reloader = self.reloader
        let drainSync = self.drainSync
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry, proxy: proxy, reloader: reloader, drainSync: drainSync))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        logger.notice("metrics listening", metadata: ["address": "\(address)"])
        try? await gracefulShutdown()
        try await channel.close()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let proxy: ProxyHandle?
    let reloader: ConfigReloader?
    let drainSync: NodeDrainSync?
    private var path = ""
    private var method = HTTPMethod.GET
    private var keepAlive = true

    init(registry: PrometheusCollectorRegistry, proxy: ProxyHandle?, reloader: ConfigReloader?, drainSync: NodeDrainSync? = nil) {
        self.registry = registry
        self.proxy = proxy
        self.reloader = reloader
        self.drainSync = drainSync
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            method = head.method
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
            switch path.split(separator: "?").first.map(String.init) ?? path {
            case "/metrics":
                (status, contentType, body) = (.ok, "text/plain; version=0.0.4", registry.emitToBuffer())
            case "/healthz":
                // 503 while any configured SIP listener is down: a deaf proxy is not healthy.
                guard let down = proxy?.listenersDown() else {
                    (status, contentType, body) = (.ok, "text/plain", Array("ok\n".utf8))
                    break
                }
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let close = !keepAlive
                down.hop(to: context.eventLoop).whenComplete { result in
                    switch result {
                    case .success(let down) where down.isEmpty:
                        Self.respond(bound.value, .ok, "text/plain", Array("ok\n".utf8), close: close)
                    case .success(let down):
                        Self.respond(bound.value, .serviceUnavailable, "text/plain", Array("listeners down: \(down.joined(separator: " "))\n".utf8), close: close)
                    case .failure:
                        Self.respond(bound.value, .serviceUnavailable, "text/plain", Array("proxy not running\n".utf8), close: close)
                    }
                }
                return
            case "/ready":
                // For DNS failover health checks: 200 only while this region can take a call.
                guard let ready = proxy?.readiness() else {
                    (status, contentType, body) = (.serviceUnavailable, "text/plain", Array("proxy not running\n".utf8))
                    break
                }
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let close = !keepAlive
                ready.hop(to: context.eventLoop).whenComplete { result in
                    switch result {
                    case .success(let r):
                        Self.respond(bound.value, r.ready ? .ok : .serviceUnavailable, "text/plain", Array("\(r.ready ? "ready" : "not ready"): \(r.reason)\n".utf8), close: close)
                    case .failure:
                        Self.respond(bound.value, .serviceUnavailable, "text/plain", Array("not ready: proxy not running\n".utf8), close: close)
                    }
                }
                return
            case let p where method == .POST && p.hasPrefix("/nodes/") && (p.hasSuffix("/drain") || p.hasSuffix("/enable")):
                // POST /nodes/{name}/drain | /enable
                let parts = p.split(separator: "/")
                guard parts.count == 3, let done = proxy?.setDrained(String(parts[1]), parts[2] == "drain") else {
                    (status, contentType, body) = (.notFound, "application/json", Array(#"{"error":"no such node"}"#.utf8))
                    break
                }
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let close = !keepAlive
                let name = String(parts[1])
                let drain = parts[2] == "drain"
                let drainSync = self.drainSync
                // Applied here at once; with shared drain state also written to the bucket, which
                // every other proxy and orchestrator watches.
                let shared = done.hop(to: context.eventLoop).flatMap { known -> EventLoopFuture<(Bool, String?)> in
                    guard known, let drainSync else { return bound.value.eventLoop.makeSucceededFuture((known, nil)) }
                    let promise = bound.value.eventLoop.makePromise(of: (Bool, String?).self)
                    promise.completeWithTask {
                        do {
                            return try await drainSync.setDrained(name, drain) ? (true, nil) : (true, "shared drain state not reachable yet")
                        } catch {
                            return (true, "shared drain state: \(error)")
                        }
                    }
                    return promise.futureResult
                }
                shared.whenComplete { result in
                    switch result {
                    case .success((true, nil)):
                        Self.respond(bound.value, .ok, "application/json", Array(#"{"node":"\#(name)","state":"\#(drain ? "drained" : "enabled")"}"#.utf8) + [10], close: close)
                    case .success((true, let problem?)):
                        // Applied to this proxy only: say so, the operator must retry.
                        let text = problem.replacingOccurrences(of: "\"", with: "'")
                        Self.respond(bound.value, .serviceUnavailable, "application/json", Array(#"{"node":"\#(name)","error":"\#(text)","applied":"this proxy only"}"#.utf8) + [10], close: close)
                    default:
                        Self.respond(bound.value, .notFound, "application/json", Array(#"{"error":"no such node"}"#.utf8), close: close)
                    }
                }
                return
            case "/reload" where method == .POST:
                guard let reloader else {
                    (status, contentType, body) = (.serviceUnavailable, "application/json", Array(#"{"error":"no reloader"}"#.utf8))
                    break
                }
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let close = !keepAlive
                let promise = context.eventLoop.makePromise(of: String.self)
                promise.completeWithTask {
                    switch await reloader.reload() {
                    case .success(let diff):
                        return #"{"reloaded":true,"added":\#(diff.added),"removed":\#(diff.removed),"replaced":\#(diff.replaced),"kept":\#(diff.kept.count)}"#
                    case .failure(let error):
                        let text = "\(error)".replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                            .replacingOccurrences(of: "\n", with: "\\n")
                        return #"{"reloaded":false,"error":"\#(text)"}"#
                    }
                }
                promise.futureResult.whenSuccess { json in
                    let ok = json.hasPrefix(#"{"reloaded":true"#)
                    Self.respond(bound.value, ok ? .ok : .unprocessableEntity, "application/json", Array(json.utf8) + [10], close: close)
                }
                return
            case "/nodes":
                guard let table = proxy?.nodeStatuses() else {
                    (status, contentType, body) = (.serviceUnavailable, "application/json", Array(#"{"error":"proxy not running"}"#.utf8))
                    break
                }
                // The table is read on the proxy's loop; answer on ours when it arrives.
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                let close = !keepAlive
                table.hop(to: context.eventLoop).whenComplete { result in
                    let json: [UInt8]
                    switch result {
                    case .success(let rows):
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                        json = Array((try? encoder.encode(rows)) ?? Data("[]".utf8)) + [10]
                    case .failure:
                        json = Array(#"{"error":"proxy not running"}"#.utf8)
                    }
                    Self.respond(bound.value, .ok, "application/json", json, close: close)
                }
                return
            default:
                (status, contentType, body) = (.notFound, "text/plain", Array("not found\n".utf8))
            }
            Self.respond(context, status, contentType, body, close: !keepAlive)
        }
    }

    /// Writes a whole response; closes the connection afterwards when the client asked for it.
    static func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ contentType: String, _ body: [UInt8], close: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in
            if close { channel.close(promise: nil) }
        }
    }
}
