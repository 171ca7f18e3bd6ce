public import Foundation
import Synchronization

/// Three `nats-server` processes in one JetStream cluster on free loopback ports (client,
/// route and monitoring port each), each with its own store, as REGIONS.md describes: one per
/// region and a witness. A server can be killed and started again on the same ports and store.
public final class NATSCluster: Sendable {
    public struct Member: Sendable {
        public let name: String
        public let clientPort: Int
        public let routePort: Int
        public let httpPort: Int
        public let configFile: URL
    }

    public let members: [Member]
    private let directory: TemporaryDirectory
    private let processes = Mutex<[String: ManagedProcess]>([:])

    /// Every server, comma-separated: what clients are given.
    public var url: String { members.map { "nats://127.0.0.1:\($0.clientPort)" }.joined(separator: ",") }

    private init(members: [Member], directory: TemporaryDirectory) {
        self.members = members
        self.directory = directory
    }

    deinit {
        processes.withLock { for p in $0.values { p.terminate() } }
    }

    public static func start(in directory: TemporaryDirectory, names: [String] = ["east", "west", "witness"]) async throws -> NATSCluster {
        var members: [Member] = []
        for name in names {
            members.append(
                Member(
                    name: name, clientPort: try FreePort.next(), routePort: try FreePort.next(), httpPort: try FreePort.next(),
                    configFile: directory.file("nats-\(name).conf")))
        }
        let routes = members.map { "nats-route://127.0.0.1:\($0.routePort)" }.joined(separator: ", ")
        for m in members {
            let store = try directory.subdirectory("nats-\(m.name)-store")
            let conf = """
                server_name: \(m.name)
                listen: 127.0.0.1:\(m.clientPort)
                http: 127.0.0.1:\(m.httpPort)
                jetstream { store_dir: "\(store.path)", max_memory_store: 256MB, max_file_store: 4GB }
                cluster {
                  name: switchyard
                  listen: 127.0.0.1:\(m.routePort)
                  routes: [ \(routes) ]
                }

                """
            try conf.write(to: m.configFile, atomically: true, encoding: .utf8)
        }
        let cluster = NATSCluster(members: members, directory: directory)
        for m in members { try cluster.launch(m) }
        for m in members { try await cluster.waitUntilServing(m) }
        // JetStream is usable once the meta group has a leader.
        let led = await Poll.until(timeout: .seconds(15), interval: .milliseconds(100)) {
            members.contains { m in (try? cluster.monitor(m, "/jsz").contains("\"leader\"")) ?? false }
        }
        guard led else { throw TestSupportError("the JetStream cluster elected no meta leader within 15 s") }
        return cluster
    }

    private func launch(_ m: Member) throws {
        let process = try ManagedProcess(
            name: "nats-\(m.name)", executable: "nats-server", arguments: ["-c", m.configFile.path], directory: directory.url, maxLifetime: .seconds(1800))
        processes.withLock { $0[m.name] = process }
    }

    private func waitUntilServing(_ m: Member) async throws {
        let ready = await Poll.until(timeout: .seconds(10), interval: .milliseconds(50)) {
            guard let c = try? SIPTCPClient(connectingTo: m.clientPort) else { return false }
            return String(decoding: c.read(timeout: .milliseconds(500)) { $0.contains(10) }, as: UTF8.self).hasPrefix("INFO")
        }
        guard ready else {
            let tail = processes.withLock { $0[m.name]?.outputTail() } ?? ""
            throw TestSupportError("nats-server \(m.name) on 127.0.0.1:\(m.clientPort) never answered: \(tail)")
        }
    }

    /// GET on a member's monitoring port (`/jsz?streams=true&accounts=true`, `/varz`...).
    public func monitor(_ m: Member, _ path: String) throws -> String {
        try SwitchyardProxy.httpGet(port: m.httpPort, path: path).body
    }

    /// The name of the server that leads `stream` right now, as the cluster reports it.
    public func streamLeader(_ stream: String) -> String? {
        for m in members {
            guard let body = try? monitor(m, "/jsz?accounts=true&streams=true"),
                let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let accounts = json["account_details"] as? [[String: Any]]
            else { continue }
            for account in accounts {
                for s in (account["stream_detail"] as? [[String: Any]]) ?? [] where s["name"] as? String == stream {
                    if let leader = (s["cluster"] as? [String: Any])?["leader"] as? String, !leader.isEmpty { return leader }
                }
            }
        }
        return nil
    }

    /// SIGKILL of one server (a crash: no clean shutdown, the store stays).
    public func kill(_ name: String) {
        let p = processes.withLock { $0.removeValue(forKey: name) }
        p?.signal(SIGKILL)
        _ = p?.terminate(grace: .seconds(1))
    }

    /// Starts a killed server again on its ports and store.
    public func restart(_ name: String) async throws {
        guard let m = members.first(where: { $0.name == name }) else { throw TestSupportError("no member \(name)") }
        kill(name)
        try launch(m)
        try await waitUntilServing(m)
    }
}
