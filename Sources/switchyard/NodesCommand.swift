import ArgumentParser
import Dispatcher
import Foundation
import NIOCore
import NIOPosix
import SIPProxy

/// `switchyard nodes`: the live dispatcher table of a running proxy (like `kamcmd dispatcher.list`),
/// read from its admin endpoint `GET /nodes`.
struct NodesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "Print the live node table of a running proxy: state, why, latency, calls."
    )

    @Option(help: "The proxy's metrics/admin address (host:port).")
    var admin: String = "127.0.0.1:9060"

    @Flag(help: "Print the raw JSON instead of a table.")
    var json = false

    @Option(help: "Drain this node first: no new calls, calls in progress finish.")
    var drain: String?

    @Option(help: "Put this drained node back into service first.")
    var enable: String?

    func run() async throws {
        guard let address = HostPort(parsing: admin) else { throw ValidationError("--admin \(admin): not host:port") }
        let body: String
        do {
            if let name = drain { _ = try await Self.request(address, method: "POST", path: "/nodes/\(name)/drain") }
            if let name = enable { _ = try await Self.request(address, method: "POST", path: "/nodes/\(name)/enable") }
            body = try await Self.request(address, method: "GET", path: "/nodes")
        } catch {
            throw CommandFailure("cannot read http://\(address)/nodes: \(error) (is `switchyard proxy` running with metrics on \(address)?)")
        }
        if json {
            print(body, terminator: body.hasSuffix("\n") ? "" : "\n")
            return
        }
        guard let rows = try? JSONDecoder().decode([NodeStatus].self, from: Data(body.utf8)) else {
            throw CommandFailure("unexpected answer from \(address)/nodes: \(body.prefix(200))")
        }
        print(Self.table(rows))
    }

    static func table(_ rows: [NodeStatus]) -> String {
        func f(_ v: Double?, _ digits: Int = 1) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        let header = ["NODE", "REGION", "SIP", "STATE", "CHANNELS", "ESL", "MAX", "ROUTED", "RTT ms", "JITTER", "PROBES ok/sent", "HELD", "SINCE s", "REASON"]
        let lines = rows.map { r in
            [r.name, r.region, r.sip, r.drained ? "drained" : r.state, String(r.channels), r.eslChannels.map { "\($0) \(r.esl)" } ?? r.esl,
             String(r.maxChannels), String(r.routedCalls), f(r.rttMs, 2), f(r.jitterMs, 2), "\(r.probes.ok)/\(r.probes.sent)",
             r.heldDown ? "yes" : "no", f(r.sinceSeconds), r.probes.lastError.map { r.reason + " (last probe error: \($0))" } ?? r.reason]
        }
        var widths = header.map(\.count)
        for line in lines { for (i, c) in line.enumerated() { widths[i] = max(widths[i], c.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([render(header)] + lines.map(render)).joined(separator: "\n")
    }

    /// A minimal HTTP/1.1 request with `Connection: close` (the admin endpoint closes after answering).
    static func request(_ address: HostPort, method: String, path: String) async throws -> String {
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: ByteBuffer.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(done: done)) }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            done.fail(error)
            throw error
        }
        try await channel.writeAndFlush(
            ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
        channel.eventLoop.scheduleTask(in: .seconds(3)) { done.fail(ChannelError.connectTimeout(.seconds(3))) }
        let response = String(buffer: try await done.futureResult.get())
        guard let split = response.range(of: "\r\n\r\n") else { throw CommandFailure("malformed HTTP answer") }
        guard response.hasPrefix("HTTP/1.1 200") else { throw CommandFailure(String(response[..<split.lowerBound])) }
        return String(response[split.upperBound...])
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<ByteBuffer>
        var received = ByteBuffer()

        init(done: EventLoopPromise<ByteBuffer>) { self.done = done }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var part = unwrapInboundIn(data)
            received.writeBuffer(&part)
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.succeed(received)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            done.fail(error)
            context.close(promise: nil)
        }
    }
}

/// A command that could not do its job at run time (printed as `Error: …`, exit status 1).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
