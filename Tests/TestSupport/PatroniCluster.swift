public import Foundation

/// PostgreSQL with automatic failover, as REGIONS.md recommends: one etcd member as the witness
/// and two Patroni members (primary in us-east-1, synchronous standby in us-west-2) on free
/// loopback ports, all under a temporary folder, run as the postgres user. Settings: ttl 5,
/// loop_wait 1, retry_timeout 2, synchronous_mode, failsafe_mode (measured there: failover
/// 4.5–5.5 s).
public final class PatroniCluster: Sendable {
    public struct Member: Sendable {
        public let name: String
        public let pgPort: Int
        public let restPort: Int
        public let configFile: URL
    }

    public let members: [Member]
    public let etcdPort: Int
    private let root: URL
    private let etcd: ManagedProcess
    private let processes: ProcessBox

    /// The libpq multi-host URL clients use: it follows the primary (`target_session_attrs`).
    public var url: String {
        let hosts = members.map { "127.0.0.1:\($0.pgPort)" }.joined(separator: ",")
        return "postgresql://postgres@\(hosts)/postgres?target_session_attrs=read-write&connect_timeout=1"
    }

    private init(members: [Member], etcdPort: Int, root: URL, etcd: ManagedProcess, processes: ProcessBox) {
        self.members = members
        self.etcdPort = etcdPort
        self.root = root
        self.etcd = etcd
        self.processes = processes
    }

    deinit {
        processes.terminateAll()
        // Patroni double-forks the postmaster (it survives a Patroni restart): stop it by its pid file.
        for m in members { Self.killPostmaster(dataDirectory: root.appendingPathComponent(m.name)) }
        etcd.terminate(grace: .seconds(5))
    }

    /// SIGKILL to the postmaster of `dataDirectory` (from its `postmaster.pid`) and its backends.
    static func killPostmaster(dataDirectory: URL) {
        guard let text = try? String(contentsOf: dataDirectory.appendingPathComponent("postmaster.pid"), encoding: .utf8),
            let first = text.split(separator: "\n").first, let pid = pid_t(first.trimmingCharacters(in: .whitespaces)), pid > 1
        else { return }
        ProcessTree.killTree(pid)
    }

    /// Whether Patroni and etcd are installed (scripts/bootstrap installs them).
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/patroni") && FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd")
    }

    public static func start(in directory: TemporaryDirectory) async throws -> PatroniCluster {
        let bin = try PostgresServer.binDirectory()
        let root = try directory.subdirectory("patroni")
        chmod(directory.path, 0o755)
        guard let pw = getpwnam("postgres") else { throw TestSupportError("no postgres user (install the postgresql package)") }
        let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        chown(root.path, uid, gid)
        func asPostgres(_ tool: String, _ args: [String]) -> (String, [String]) {
            geteuid() == 0 ? ("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + args) : (tool, args)
        }

        let etcdClient = try FreePort.next(), etcdPeer = try FreePort.next()
        let (etcdTool, etcdArgs) = asPostgres(
            "/usr/bin/etcd",
            [
                "--name", "witness", "--data-dir", root.appendingPathComponent("etcd").path,
                "--listen-client-urls", "http://127.0.0.1:\(etcdClient)", "--advertise-client-urls", "http://127.0.0.1:\(etcdClient)",
                "--listen-peer-urls", "http://127.0.0.1:\(etcdPeer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(etcdPeer)",
                "--initial-cluster", "witness=http://127.0.0.1:\(etcdPeer)", "--initial-cluster-state", "new",
            ])
        let etcd = try ManagedProcess(name: "etcd", executable: etcdTool, arguments: etcdArgs, directory: root, maxLifetime: .seconds(1800))
        let etcdUp = await Poll.until(timeout: .seconds(15), interval: .milliseconds(100)) {
            ((try? SwitchyardProxy.httpGet(port: etcdClient, path: "/health"))?.body.contains("true")) ?? false
        }
        guard etcdUp else { throw TestSupportError("etcd never answered /health: \(etcd.outputTail())") }

        var members: [Member] = []
        for name in ["pg1", "pg2"] {
            let m = Member(name: name, pgPort: try FreePort.next(), restPort: try FreePort.next(), configFile: root.appendingPathComponent("\(name).yml"))
            let yaml = """
                scope: switchyard
                name: \(name)
                restapi: { listen: 127.0.0.1:\(m.restPort), connect_address: 127.0.0.1:\(m.restPort) }
                etcd3: { hosts: 127.0.0.1:\(etcdClient) }
                bootstrap:
                  dcs:
                    ttl: 5
                    loop_wait: 1
                    retry_timeout: 2
                    maximum_lag_on_failover: 1048576
                    synchronous_mode: true
                    synchronous_mode_strict: false
                    failsafe_mode: true
                    postgresql:
                      use_pg_rewind: true
                      use_slots: true
                      parameters: { wal_level: replica, hot_standby: "on", wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10, max_connections: 200 }
                  initdb: [ { encoding: UTF8 }, data-checksums ]
                  pg_hba: [ "local all all trust", "host replication replicator 127.0.0.1/32 trust", "host all all 127.0.0.1/32 trust" ]
                postgresql:
                  listen: 127.0.0.1:\(m.pgPort)
                  connect_address: 127.0.0.1:\(m.pgPort)
                  data_dir: \(root.appendingPathComponent(name).path)
                  bin_dir: \(bin)
                  pgpass: \(root.appendingPathComponent("pgpass-\(name)").path)
                  authentication:
                    superuser: { username: postgres, password: pgpass }
                    replication: { username: replicator, password: reppass }
                    rewind: { username: rewinder, password: rewpass }
                  parameters: { unix_socket_directories: \(root.path) }
                watchdog: { mode: "off" }

                """
            try yaml.write(to: m.configFile, atomically: true, encoding: .utf8)
            chown(m.configFile.path, uid, gid)
            members.append(m)
        }
        let box = ProcessBox()
        let cluster = PatroniCluster(members: members, etcdPort: etcdClient, root: root, etcd: etcd, processes: box)
        // The first bootstraps; the second clones itself from it once it leads.
        try cluster.launch(members[0])
        let led = await Poll.until(timeout: .seconds(60), interval: .milliseconds(200)) { cluster.primary() != nil }
        guard led else { throw TestSupportError("Patroni \(members[0].name) never became primary: \(box.tail(members[0].name))") }
        try cluster.launch(members[1])
        let synced = await Poll.until(timeout: .seconds(60), interval: .milliseconds(200)) { cluster.syncStandby() != nil }
        guard synced else { throw TestSupportError("Patroni \(members[1].name) never became the sync standby: \(box.tail(members[1].name))") }
        return cluster
    }

    private func launch(_ m: Member) throws {
        let (tool, args) =
            geteuid() == 0 ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "/usr/bin/patroni", m.configFile.path]) : ("/usr/bin/patroni", [m.configFile.path])
        let p = try ManagedProcess(name: "patroni-\(m.name)", executable: tool, arguments: args, directory: root, maxLifetime: .seconds(1800))
        processes.set(m.name, p)
    }

    /// The member Patroni's REST API names the leader (`GET /primary` is 200 there only).
    public func primary() -> Member? {
        members.first { m in ((try? SwitchyardProxy.httpGet(port: m.restPort, path: "/primary", timeout: .milliseconds(500)))?.status.contains(" 200")) ?? false
        }
    }

    /// The synchronous standby (`GET /sync` is 200 there only).
    public func syncStandby() -> Member? {
        members.first { m in ((try? SwitchyardProxy.httpGet(port: m.restPort, path: "/sync", timeout: .milliseconds(500)))?.status.contains(" 200")) ?? false }
    }

    /// SIGKILL of a member's Patroni and its PostgreSQL (a crash of the whole region's database).
    public func kill(_ m: Member) {
        let data = root.appendingPathComponent(m.name)
        processes.kill(m.name)
        Self.killPostmaster(dataDirectory: data)
    }

    /// Starts a killed member again: it rejoins as a replica (pg_rewind).
    public func restart(_ m: Member) throws {
        processes.kill(m.name)
        try launch(m)
    }
}

/// The member processes, by name.
final class ProcessBox: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var processes: [String: ManagedProcess] = [:]

    func set(_ name: String, _ p: ManagedProcess) { lock.withLock { processes[name] = p } }

    func kill(_ name: String) {
        let p = lock.withLock { processes.removeValue(forKey: name) }
        p?.signal(SIGKILL)
        _ = p?.terminate(grace: .seconds(1))
    }

    func tail(_ name: String) -> String { lock.withLock { processes[name]?.outputTail() } ?? "" }

    func terminateAll() {
        let all = lock.withLock { () -> [ManagedProcess] in
            defer { processes = [:] }
            return Array(processes.values)
        }
        for p in all { p.terminate(grace: .seconds(10)) }
    }
}
