import ArgumentParser
import Dispatcher
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `switchyard up`: the two-region deployment on this machine, with the same distributed engines
/// a production deployment uses (REGIONS.md):
/// - a JetStream cluster of three nats-servers (us-east-1, us-west-2 and a witness; streams R3);
/// - PostgreSQL under Patroni with etcd as the witness: primary in us-east-1, synchronous
///   standby in us-west-2, automatic failover; clients use the libpq multi-host URL;
/// - per region: its two emulated FreeSWITCH nodes (from regions.yaml), its proxy, its API, an
///   orchestrator and a CDR writer; drain state shared through NATS.
/// Data lives under `.switchyard/` and is reused by the next `up` (`--fresh` starts over).
/// SIGINT/SIGTERM stops everything it started, in reverse order.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Run both regions on this machine: NATS cluster, PostgreSQL HA, nodes, proxies, APIs, workers.")

    @Option(help: "The regions file (its two regions' nodes are started).")
    var config = "regions.yaml"

    @Option(help: "Where data and logs live (reused by the next up).")
    var data = ".switchyard"

    @Flag(help: "Remove the data folder first.")
    var fresh = false

    @Flag(help: "Place a call through each region's proxy and API, print the outcome, stop (exit 0 only if all succeeded).")
    var demo = false

    @Option(help: "Log level of every process.")
    var logLevel = "info"

    @Flag(help: "Put each region in its own network namespace, joined by a delayed WAN link (root only; see README).")
    var netns = false

    @Option(help: "With --netns: the WAN link's one-way delay in milliseconds (35: about us-east-1 ↔ us-west-2).")
    var wanDelayMs = 35

    /// Fixed local ports, region by region (the witness hosts the third NATS server and etcd).
    struct Layout {
        static let regions = ["us-east-1", "us-west-2"]
        static let natsClient = [14222, 14223, 14224]
        static let natsRoute = [16222, 16223, 16224]
        static let natsHTTP = [18222, 18223, 18224]
        static let natsNames = ["east", "west", "witness"]
        static let etcd = (client: 12379, peer: 12380)
        static let patroni = [(name: "pg-east", pg: 16101, rest: 18008), (name: "pg-west", pg: 16102, rest: 18009)]
        static let proxySIP = [5060, 5160]
        static let proxyAdmin = [9060, 9160]
        static let api = [8080, 8180]
        /// Loopback or namespaces (`--netns`): set once by `startAll` before any other thread starts.
        nonisolated(unsafe) static var net = UpNetwork.loopback
    }

    func validate() throws {
        guard (0...1000).contains(wanDelayMs) else { throw ValidationError("--wan-delay-ms \(wanDelayMs): 0 to 1000") }
    }

    func run() throws {
        let regions = try loadRegions(config)
        for name in Layout.regions where regions.region(named: name) == nil {
            throw ValidationError("\(config) has no region \(name): up runs us-east-1 and us-west-2")
        }
        let fm = FileManager.default
        let root = URL(fileURLWithPath: data, isDirectory: true).standardizedFileURL
        if fresh, fm.fileExists(atPath: root.path) { try fm.removeItem(at: root) }
        try fm.createDirectory(at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let binary = Self.selfExecutable()
        let stack = Stack(root: root, logLevel: logLevel)
        Stack.installSignalHandlers(stack)
        do {
            try startAll(stack, regions: regions, binary: binary, root: root)
        } catch {
            stack.stopAll()
            throw error
        }
        if demo {
            let ok = runDemo(stack)
            stack.stopAll()
            if !ok { throw ExitCode(1) }
            return
        }
        stack.say("running; Ctrl-C stops everything")
        let exited = stack.waitForAnyExit()
        stack.say("\(exited) exited; stopping the rest")
        stack.stopAll()
        throw ExitCode(1)
    }

    // MARK: Starting

    /// The network this `up` runs on (set once by `startAll`, before any thread reads it).
    var network: UpNetwork { netns ? .namespaced(delayMs: wanDelayMs) : .loopback }

    func startAll(_ stack: Stack, regions given: RegionsConfig, binary: String, root: URL) throws {
        let net = network
        Layout.net = net
        var regions = given
        var config = self.config
        if net.isNamespaced {
            // The same regions file, with each node on its region's address.
            var byRegion: [String: [(host: String, port: Int)]] = [:]
            for name in Layout.regions {
                for node in regions.region(named: name)?.nodes ?? [] {
                    byRegion[name, default: []].append((node.sip.host, node.sip.port))
                    if let esl = node.esl { byRegion[name, default: []].append((esl.host, esl.port)) }
                }
            }
            let text = try String(contentsOfFile: config, encoding: .utf8)
            let moved = root.appendingPathComponent("netns-regions.yaml")
            try net.rewrite(config: text, regions: RegionsConfigView(byRegion: byRegion)).write(to: moved, atomically: true, encoding: .utf8)
            config = moved.path
            regions = try loadRegions(config)
            try net.setUp(stack, root: root)
            stack.onStop { net.tearDown() }
        } else {
            let nodePorts = Layout.regions.flatMap { regions.region(named: $0)?.nodes ?? [] }
            try Stack.requireFree(
                tcp: Layout.natsClient + Layout.natsRoute + Layout.natsHTTP + [Layout.etcd.client, Layout.etcd.peer]
                    + Layout.patroni.flatMap { [$0.pg, $0.rest] }
                    + Layout.proxySIP + Layout.proxyAdmin + Layout.api + nodePorts.compactMap { $0.esl?.port },
                udp: Layout.proxySIP + nodePorts.map(\.sip.port))
        }
        let pgBin = try Stack.postgresBin()
        let asPostgres = geteuid() == 0
        let pgRoot = root.appendingPathComponent("postgres")
        try FileManager.default.createDirectory(at: pgRoot, withIntermediateDirectories: true)
        if asPostgres { try stack.chownToPostgres(pgRoot) }
        chmod(root.path, 0o755)
        let witness = net.witnessHost

        // NATS: three servers, one cluster (east, west, and the witness).
        let routes = Layout.natsRoute.enumerated().map { "nats-route://\(net.natsHost($0.offset)):\($0.element)" }.joined(separator: ", ")
        for i in 0..<3 {
            let store = root.appendingPathComponent("nats-\(Layout.natsNames[i])")
            let conf = root.appendingPathComponent("nats-\(Layout.natsNames[i]).conf")
            let h = net.natsHost(i)
            try """
            server_name: \(Layout.natsNames[i])
            listen: \(h):\(Layout.natsClient[i])
            http: \(h):\(Layout.natsHTTP[i])
            jetstream { store_dir: "\(store.path)", max_memory_store: 256MB, max_file_store: 8GB }
            cluster { name: switchyard, listen: \(h):\(Layout.natsRoute[i]), routes: [ \(routes) ] }

            """.write(to: conf, atomically: true, encoding: .utf8)
            try stack.start("nats-\(Layout.natsNames[i])", "nats-server", ["-c", conf.path], namespace: i < 2 ? net.namespaces[i] : nil)
        }
        let natsURL = Layout.natsClient.enumerated().map { "nats://\(net.natsHost($0.offset)):\($0.element)" }.joined(separator: ",")
        for (i, port) in Layout.natsClient.enumerated() {
            try stack.waitForTCP(port, "nats-\(Layout.natsNames[i])", host: net.natsHost(i))
        }
        try stack.waitFor("a JetStream meta leader", timeout: 30) {
            Layout.natsHTTP.enumerated().contains {
                (Stack.httpGet(host: net.natsHost($0.offset), port: $0.element, path: "/jsz")?.body.contains("\"leader\"")) ?? false
            }
        }

        // PostgreSQL: etcd (witness), Patroni east (primary), Patroni west (sync standby).
        let etcdData = pgRoot.appendingPathComponent("etcd")
        try stack.start(
            "etcd", "/usr/bin/etcd",
            [
                "--name", "witness", "--data-dir", etcdData.path,
                "--listen-client-urls", "http://\(witness):\(Layout.etcd.client)", "--advertise-client-urls", "http://\(witness):\(Layout.etcd.client)",
                "--listen-peer-urls", "http://\(witness):\(Layout.etcd.peer)", "--initial-advertise-peer-urls", "http://\(witness):\(Layout.etcd.peer)",
                "--initial-cluster", "witness=http://\(witness):\(Layout.etcd.peer)", "--initial-cluster-state",
                FileManager.default.fileExists(atPath: etcdData.path) ? "existing" : "new",
            ], asPostgres: asPostgres)
        try stack.waitFor("etcd", timeout: 20) { (Stack.httpGet(host: witness, port: Layout.etcd.client, path: "/health")?.body.contains("true")) ?? false }
        // A new cluster: east bootstraps and leads, then west clones from it. An existing one
        // (data kept from an earlier up): both start at once, since the last leader may be either.
        let existing = FileManager.default.fileExists(atPath: pgRoot.appendingPathComponent(Layout.patroni[0].name).path)
        for (i, member) in Layout.patroni.enumerated() {
            let file = pgRoot.appendingPathComponent("\(member.name).yml")
            try Self.patroniYAML(
                name: member.name, host: net.regionHost[i], pg: member.pg, rest: member.rest, etcd: "\(witness):\(Layout.etcd.client)",
                data: pgRoot, bin: pgBin
            )
            .write(to: file, atomically: true, encoding: .utf8)
            if asPostgres { try stack.chownToPostgres(file) }
            try stack.start(member.name, "/usr/bin/patroni", [file.path], asPostgres: asPostgres, namespace: net.namespaces[i])
            if i == 0, !existing {
                try stack.waitFor("a PostgreSQL primary", timeout: 90) { Self.patroniLeader() != nil }
            }
        }
        try stack.waitFor("a PostgreSQL primary", timeout: 90) { Self.patroniLeader() != nil }
        try stack.waitFor("the synchronous standby", timeout: 90) {
            Layout.patroni.enumerated().contains {
                (Stack.httpGet(host: net.regionHost[$0.offset], port: $0.element.rest, path: "/sync")?.status.contains(" 200")) ?? false
            }
        }
        let database = Self.databaseURL()
        try stack.runToEnd("migrate", binary, ["migrate", "--database", database])
        let keyFile = root.appendingPathComponent("api-key")
        var apiKey = (try? String(contentsOf: keyFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if apiKey.isEmpty {
            apiKey = try stack.runToEnd("accounts", binary, ["accounts", "create", "--name", "demo", "--database", database, "--quiet"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try apiKey.write(to: keyFile, atomically: true, encoding: .utf8)
        }

        // Per region: nodes, proxy, API, workers (inside the region's namespace with --netns).
        for (r, region) in Layout.regions.enumerated() {
            let ns = net.namespaces[r]
            let host = net.regionHost[r]
            for node in regions.region(named: region)!.nodes {
                var args = ["fsnode", "--name", node.name, "--sip", node.sip.description, "--max-channels", String(node.maxChannels), "--log-level", logLevel]
                if let esl = node.esl { args += ["--esl", esl.description] }
                try stack.start(node.name, binary, args, namespace: ns)
            }
            for node in regions.region(named: region)!.nodes {
                try stack.waitForUDPAnswer(node.sip.port, node.name, host: node.sip.host, local: net.callerHost[r])
            }
            try stack.start(
                "proxy-\(region)", binary,
                [
                    "proxy", "--config", config, "--region", region, "--listen", "udp://\(host):\(Layout.proxySIP[r]),tcp://\(host):\(Layout.proxySIP[r])",
                    "--metrics", "\(host):\(Layout.proxyAdmin[r])", "--nats", natsURL, "--log-level", logLevel,
                ], namespace: ns)
            try stack.start(
                "api-\(region)", binary,
                [
                    "api", "--listen", "\(host):\(Layout.api[r])", "--database", database, "--nats", natsURL, "--config", config, "--log-level", logLevel,
                ], namespace: ns)
            try stack.start(
                "orchestrator-\(region)", binary,
                [
                    "orchestrator", "--config", config, "--region", region, "--database", database, "--nats", natsURL, "--metrics", "off", "--log-level",
                    logLevel,
                    // One machine: the callback receivers people try it with are local.
                    "--allow-private-callbacks",
                ], namespace: ns)
            try stack.start(
                "cdr-\(region)", binary,
                [
                    "cdr", "--config", config, "--database", database, "--nats", natsURL, "--metrics", "off", "--log-level", logLevel,
                ], namespace: ns)
        }
        for r in 0..<2 {
            let host = net.regionHost[r]
            try stack.waitFor("proxy-\(Layout.regions[r]) healthy", timeout: 30) {
                (Stack.httpGet(host: host, port: Layout.proxyAdmin[r], path: "/healthz")?.status.contains(" 200")) ?? false
            }
            try stack.waitFor("api-\(Layout.regions[r]) healthy", timeout: 60) {
                (Stack.httpGet(host: host, port: Layout.api[r], path: "/healthz")?.status.contains(" 200")) ?? false
            }
        }
        stack.apiKey = apiKey
        let twilio =
            (try? stack.runToEnd("accounts", binary, ["accounts", "twilio", "--key", apiKey, "--database", database]))?
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init) ?? []
        stack.twilio = twilio.count == 2 ? (twilio[0], twilio[1]) : nil
        try Self.uacScenario.write(to: root.appendingPathComponent("uac.xml"), atomically: true, encoding: .utf8)
        printTable(stack, regions: regions, database: database, natsURL: natsURL, apiKey: apiKey)
    }

    /// The libpq multi-host URL of the Patroni members (follows the primary).
    static func databaseURL() -> String {
        let hosts = Layout.patroni.enumerated().map { "\(Layout.net.regionHost[$0.offset]):\($0.element.pg)" }.joined(separator: ",")
        return "postgresql://postgres@\(hosts)/postgres?target_session_attrs=read-write&connect_timeout=1"
    }

    func printTable(_ stack: Stack, regions: RegionsConfig, database: String, natsURL: String, apiKey: String) {
        let net = Layout.net
        let whereText =
            net.isNamespaced
            ? "two regions in network namespaces \(net.namespaces.compactMap { $0 }.joined(separator: " and ")), \(net.wanDelayMs ?? 0) ms each way between them"
            : "two regions on 127.0.0.1"
        var lines = ["", "Switchyard is up: \(whereText) (data and logs in \(stack.root.path))", ""]
        for (r, region) in Layout.regions.enumerated() {
            let h = net.regionHost[r]
            lines.append("  \(region)\(net.namespaces[r].map { " (namespace \($0))" } ?? "")")
            lines.append("    proxy SIP    udp+tcp \(h):\(Layout.proxySIP[r])   admin/metrics http://\(h):\(Layout.proxyAdmin[r]) (/healthz /nodes /metrics)")
            lines.append("    API          http://\(h):\(Layout.api[r])   (/healthz, /v1/calls)")
            for node in regions.region(named: region)!.nodes {
                lines.append(
                    "    node \(node.name.padding(toLength: 8, withPad: " ", startingAt: 0)) sip udp \(node.sip)   esl \(node.esl?.description ?? "-")")
            }
            lines.append("    PostgreSQL   Patroni \(Layout.patroni[r].name) on \(h):\(Layout.patroni[r].pg) (REST :\(Layout.patroni[r].rest))")
            lines.append("    NATS         nats://\(h):\(Layout.natsClient[r]) (monitoring :\(Layout.natsHTTP[r]))")
        }
        lines.append("  witness")
        lines.append("    etcd         http://\(net.witnessHost):\(Layout.etcd.client)      NATS nats://\(net.witnessHost):\(Layout.natsClient[2])")
        lines.append("")
        lines.append("  database URL   \(database)")
        lines.append("  NATS servers   \(natsURL)")
        lines.append("  API key        \(apiKey)   (account demo)")
        if let (sid, token) = stack.twilio { lines.append("  Twilio         AccountSid \(sid)   AuthToken \(token)") }
        lines.append("")
        for (r, region) in Layout.regions.enumerated() {
            let h = net.regionHost[r]
            lines.append("  \(region): a call through the API")
            lines.append(
                "    curl -s -X POST http://\(h):\(Layout.api[r])/v1/calls -H 'Authorization: Bearer \(apiKey)' -H 'Content-Type: application/json' -d '{\"to\": \"+15551234567\", \"from\": \"+15557654321\", \"url\": \"https://example.com/twiml\"}'"
            )
            if let (sid, token) = stack.twilio {
                lines.append("  \(region): the same through Twilio's Calls API (or the twilio SDK with client.api.base_url = \"http://\(h):\(Layout.api[r])\")")
                lines.append(
                    "    curl -s -u \(sid):\(token) http://\(h):\(Layout.api[r])/2010-04-01/Accounts/\(sid)/Calls.json --data-urlencode To=+15551234567 --data-urlencode From=+15557654321 --data-urlencode Url=https://example.com/twiml"
                )
            }
            lines.append("  \(region): ten SIP calls through its proxy")
            lines.append(
                "    sipp \(h):\(Layout.proxySIP[r]) -sf \(stack.root.path)/uac.xml -s 15551234567 -i \(net.callerHost[r]) -p \(25060 + r) -m 10 -r 5 -nostdin")
        }
        lines.append("")
        lines.append("  drain a node everywhere:  switchyard nodes --admin \(net.regionHost[1]):\(Layout.proxyAdmin[1]) --drain fs-e1")
        lines.append("")
        FileHandle.standardError.write(Data(lines.joined(separator: "\n").utf8 + [10]))
    }

    // MARK: Demo

    private func runDemo(_ stack: Stack) -> Bool {
        var ok = true
        for (r, region) in Layout.regions.enumerated() {
            let h = Layout.net.regionHost[r]
            let sipp = stack.runCapturing(
                "sipp",
                [
                    "\(h):\(Layout.proxySIP[r])", "-sf", stack.root.appendingPathComponent("uac.xml").path, "-s", "15551234567", "-i", Layout.net.callerHost[r],
                    "-p", String(25060 + r), "-m", "5", "-r", "5", "-nostdin", "-timeout", "30s", "-timeout_error",
                ])
            stack.say("demo \(region): 5 SIP calls through \(h):\(Layout.proxySIP[r]): sipp exit \(sipp.status)")
            if sipp.status != 0 { ok = false }
            let body = #"{"to": "+15551234567", "from": "+15557654321", "url": "https://example.com/twiml"}"#
            guard
                let created = Stack.httpRequest(
                    host: h, port: Layout.api[r], method: "POST", path: "/v1/calls", body: body, headers: ["Authorization": "Bearer \(stack.apiKey)"]),
                created.status.contains(" 201"),
                let json = try? JSONSerialization.jsonObject(with: Data(created.body.utf8)) as? [String: Any], let id = json["id"] as? String
            else {
                stack.say("demo \(region): API create failed")
                ok = false
                continue
            }
            var status = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let got = Stack.httpRequest(
                    host: h, port: Layout.api[r], method: "GET", path: "/v1/calls/\(id)", headers: ["Authorization": "Bearer \(stack.apiKey)"]),
                    let j = try? JSONSerialization.jsonObject(with: Data(got.body.utf8)) as? [String: Any], let s = j["status"] as? String
                {
                    status = s
                    if ["completed", "failed", "busy", "no-answer", "canceled"].contains(s) { break }
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
            var cdrs = 0
            let cdrDeadline = Date().addingTimeInterval(10)
            while Date() < cdrDeadline, cdrs == 0 {
                if let got = Stack.httpRequest(
                    host: h, port: Layout.api[r], method: "GET", path: "/v1/calls/\(id)/cdr", headers: ["Authorization": "Bearer \(stack.apiKey)"]),
                    got.status.contains(" 200")
                {
                    cdrs = 1
                } else {
                    Thread.sleep(forTimeInterval: 0.2)
                }
            }
            stack.say("demo \(region): API call \(id) ended \(status), CDR \(cdrs == 1 ? "written" : "missing")")
            if status != "completed" || cdrs != 1 { ok = false }
        }
        stack.say(ok ? "demo: OK" : "demo: FAILED (logs in \(stack.root.appendingPathComponent("logs").path))")
        return ok
    }

    // MARK: Helpers

    /// This binary's path (for the processes it starts), whether it was run by path or found on PATH.
    static func selfExecutable() -> String {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return exe }
        let arg0 = CommandLine.arguments[0]
        return arg0.contains("/") ? URL(fileURLWithPath: arg0).standardizedFileURL.path : Stack.which(arg0) ?? arg0
    }

    static func patroniLeader() -> Int? {
        Layout.patroni.enumerated().first {
            (Stack.httpGet(host: Layout.net.regionHost[$0.offset], port: $0.element.rest, path: "/primary")?.status.contains(" 200")) ?? false
        }?.offset
    }

    static func patroniYAML(name: String, host: String, pg: Int, rest: Int, etcd: String, data: URL, bin: String) -> String {
        """
        scope: switchyard
        name: \(name)
        restapi: { listen: \(host):\(rest), connect_address: \(host):\(rest) }
        etcd3: { hosts: \(etcd) }
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
              parameters: { wal_level: replica, hot_standby: "on", wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10, max_connections: 300 }
          initdb: [ { encoding: UTF8 }, data-checksums ]
          pg_hba: [ "local all all trust", "host replication replicator 127.0.0.1/32 trust", "host all all 127.0.0.1/32 trust",
                    "host replication replicator 10.77.0.0/16 trust", "host all all 10.77.0.0/16 trust" ]
        postgresql:
          listen: \(host):\(pg)
          connect_address: \(host):\(pg)
          data_dir: \(data.appendingPathComponent(name).path)
          bin_dir: \(bin)
          pgpass: \(data.appendingPathComponent("pgpass-\(name)").path)
          authentication:
            superuser: { username: postgres, password: pgpass }
            replication: { username: replicator, password: reppass }
            rewind: { username: rewinder, password: rewpass }
          parameters: { unix_socket_directories: \(data.path) }
        watchdog: { mode: "off" }

        """
    }

    /// The caller: INVITE, 1 s call, BYE along the Record-Route set (loose routing), as in
    /// scripts/run; sipp's built-in uac sends its BYE without the Route set.
    static let uacScenario = """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <!DOCTYPE scenario SYSTEM "sipp.dtd">
        <!-- Caller (UAC): INVITE -> (100) (180) 200 -> ACK -> 1 s call -> BYE -> 200, following
             Record-Route (loose routing). Same as shared/bench/scenarios/uac.xml with a 1 s pause. -->
        <scenario name="switchyard-uac">
          <send retrans="500" start_rtd="1">
            <![CDATA[
        INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
        To: [service] <sip:[service]@[remote_ip]:[remote_port]>
        Call-ID: [call_id]
        CSeq: 1 INVITE
        Contact: sip:sipp@[local_ip]:[local_port]
        Max-Forwards: 70
        Subject: switchyard run
        Content-Type: application/sdp
        Content-Length: [len]

        v=0
        o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
        s=-
        c=IN IP[media_ip_type] [media_ip]
        t=0 0
        m=audio [media_port] RTP/AVP 0
        a=rtpmap:0 PCMU/8000

            ]]>
          </send>
          <recv response="100" optional="true"/>
          <recv response="180" optional="true"/>
          <recv response="200" rrs="true" rtd="1"/>
          <send>
            <![CDATA[
        ACK [next_url] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
        [last_To:]
        [routes]
        Call-ID: [call_id]
        CSeq: 1 ACK
        Contact: sip:sipp@[local_ip]:[local_port]
        Max-Forwards: 70
        Content-Length: 0

            ]]>
          </send>
          <pause milliseconds="1000"/>
          <send retrans="500">
            <![CDATA[
        BYE [next_url] SIP/2.0
        Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
        From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
        [last_To:]
        [routes]
        Call-ID: [call_id]
        CSeq: 2 BYE
        Contact: sip:sipp@[local_ip]:[local_port]
        Max-Forwards: 70
        Content-Length: 0

            ]]>
          </send>
          <recv response="200" crlf="true"/>
          <ResponseTimeRepartition value="5, 10, 20, 50, 100, 200, 500, 1000"/>
          <CallLengthRepartition value="500, 1000, 2000, 5000"/>
        </scenario>
        """
}
