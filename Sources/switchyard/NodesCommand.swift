import ArgumentParser
import Dispatcher
import Foundation
import AsyncHTTPClient
import NIOCore
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
            [
                r.name, r.region, r.sip, r.drained ? "drained" : r.state, String(r.channels), r.eslChannels.map { "\($0) \(r.esl)" } ?? r.esl,
                String(r.maxChannels), String(r.routedCalls), f(r.rttMs, 2), f(r.jitterMs, 2), "\(r.probes.ok)/\(r.probes.sent)",
                r.heldDown ? "yes" : "no", f(r.sinceSeconds), r.probes.lastError.map { r.reason + " (last probe error: \($0))" } ?? r.reason,
            ]
        }
        var widths = header.map(\.count)
        for line in lines { for (i, c) in line.enumerated() { widths[i] = max(widths[i], c.count) } }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([render(header)] + lines.map(render)).joined(separator: "\n")
    }

    /// One request to the admin endpoint (async-http-client); the body of a 200, else an error
    /// with the status and body.
    static func request(_ address: HostPort, method: String, path: String) async throws -> String {
        var request = HTTPClientRequest(url: "http://\(address)\(path)")
        request.method = method == "POST" ? .POST : .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(3))
        let body = String(buffer: try await response.body.collect(upTo: 4 << 20))
        guard response.status == .ok else { throw CommandFailure("HTTP \(response.status.code): \(body.prefix(300))") }
        return body
    }
}

/// A command that could not do its job at run time (printed as `Error: …`, exit status 1).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
