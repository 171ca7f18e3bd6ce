import Bus
import Foundation
import Store
import Testing
import TestSupport

/// The call plane for one test: PostgreSQL, nats-server, emulated nodes, the API, and the
/// workers the test asks for, all real processes on free loopback ports.
final class CallPlaneStack: @unchecked Sendable {
    // @unchecked: built and used by one test at a time.
    let dir: TemporaryDirectory
    let postgres: PostgresServer
    let nats: NATSServer
    var nodes: [FSNodeProcess]
    let api: SwitchyardAPI
    let key: String
    let config: URL
    var workers: [SwitchyardWorker] = []
    let pool: PostgresPool

    init(nodes: Int = 2, nodeArguments: [String] = ["--ring-ms", "100", "--talk-ms", "1200"]) async throws {
        dir = try TemporaryDirectory()
        postgres = try await PostgresServer.start(in: dir)
        nats = try await NATSServer.start(in: dir)
        var started: [FSNodeProcess] = []
        for i in 0..<nodes { started.append(try await FSNodeProcess.start(name: "fs-\(i + 1)", arguments: nodeArguments, in: dir)) }
        self.nodes = started
        key = try await SwitchyardAPI.createAccount(name: "acme", database: postgres.url, in: dir)
        api = try await SwitchyardAPI.start(database: postgres.url, nats: nats.url, in: dir)
        config = dir.file("regions.yaml")
        let lines = started.map { n in
            "      - { name: \(n.name), sip: \"127.0.0.1:\(n.sipPort)\", esl: \"127.0.0.1:\(n.eslPort)\", max_channels: 100 }"
        }
        try """
        proxy:
          listen: [ "udp://127.0.0.1:\(try FreePort.next())" ]
          trusted: [ "127.0.0.0/8" ]
        dispatch:
          policy: round-robin
        regions:
          us-east-1:
            nodes:
        \(lines.joined(separator: "\n"))

        """.write(to: config, atomically: true, encoding: .utf8)
        pool = PostgresPool(conninfo: postgres.url, size: 2)
    }

    @discardableResult
    func startWorker(_ kind: String, name: String? = nil, arguments: [String] = [], environment: [String: String] = [:]) async throws -> SwitchyardWorker {
        // Callbacks go to a receiver on loopback here; the SSRF refusal has its own test.
        var env = environment
        if kind == "orchestrator", env["SWITCHYARD_ALLOW_PRIVATE_CALLBACKS"] == nil { env["SWITCHYARD_ALLOW_PRIVATE_CALLBACKS"] = "1" }
        let w = try await SwitchyardWorker.start(
            kind, name: name, config: config, database: postgres.url, nats: nats.url, arguments: arguments, environment: env, in: dir)
        workers.append(w)
        return w
    }

    func createCall(to: String = "+15551234567", extra: String = "") throws -> String {
        let r = try api.request(
            "POST", "/v1/calls", key: key, body: "{\"to\": \"\(to)\", \"from\": \"+15557654321\", \"url\": \"https://example.com/x\"\(extra)}")
        guard r.status == 201, let id = r.json["id"] as? String else { throw TestSupportError("create call: \(r.status) \(r.body)") }
        return id
    }

    func call(_ id: String) throws -> [String: Any] { try api.request("GET", "/v1/calls/\(id)", key: key).json }

    func waitForStatus(_ id: String, _ wanted: Set<String>, timeout: Duration = .seconds(20)) async -> String? {
        var last: String?
        _ = await Poll.until(timeout: timeout, interval: .milliseconds(100)) {
            last = (try? self.call(id))?["status"] as? String
            return last.map(wanted.contains) ?? false
        }
        return last
    }

    func cdrCount(_ sql: String = "SELECT count(*) AS n FROM cdr", _ params: [String?] = []) async throws -> Int {
        try await pool.query(sql, params).first?.int("n") ?? -1
    }

    func stop() async {
        for w in workers { w.stop() }
        api.stop()
        for n in nodes { n.stop() }
        await pool.shutdown()
        nats.stop()
        postgres.stop()
    }
}
