import ArgumentParser
import Dispatcher
import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// `switchyard drill`: brings the two-region stack up (as `up` does, reusing its data), runs
/// bounded load into both regions (sipp calls into each proxy, API creates into each API), applies
/// a fault on schedule, optionally restores it, then checks consistency and reports: text, JSON
/// and an SVG picture next to the JSON. It owns the processes, so it can kill and restart them.
struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill", abstract: "Failover drill on the two-region stack: load, a fault (node or region), recovery, consistency.")

    @Option(help: "The regions file.")
    var config = "regions.yaml"

    @Option(help: "Data folder of the stack (as for up).")
    var data = ".switchyard"

    @Flag(help: "Start the stack from scratch.")
    var fresh = false

    @Option(parsing: .upToNextOption, help: "The fault: 'node NAME' or 'region NAME' (SIGKILL of everything it runs).")
    var kill: [String] = []

    @Option(parsing: .upToNextOption, help: "The fault: 'node NAME' hangs (SIGSTOP: its sockets stay open, nothing answers); the restore resumes it (SIGCONT).")
    var stall: [String] = []

    @Option(help: "Seconds of load before the fault.")
    var at: Double = 10

    @Option(help: "Seconds of load in all.")
    var duration: Double = 30

    @Option(help: "Bring the killed processes back this many seconds after the fault.")
    var restoreAfter: Double?

    @Option(help: "SIP calls per second into each region's proxy.")
    var sipRate = 10

    @Option(help: "API creates per second into each region's API.")
    var apiRate = 4

    @Option(help: "Where the JSON report goes (the SVG picture goes beside it).")
    var jsonOut: String?

    @Option(help: "Log level of every process.")
    var logLevel = "notice"

    @Flag(help: "Run the stack with each region in its own network namespace and a delayed WAN link between them (as up --netns).")
    var netns = false

    @Option(help: "With --netns: the WAN link's one-way delay in milliseconds.")
    var wanDelayMs = 35

    /// up's arguments for the same stack.
    func upArguments(config: String) -> [String] {
        var a = ["--config", config, "--data", data, "--log-level", logLevel]
        if fresh { a.append("--fresh") }
        if netns { a += ["--netns", "--wan-delay-ms", String(wanDelayMs)] }
        return a
    }

    @Option(help: "Instead of a fault: hold this many concurrent SIP calls over the four nodes and report spread, failures, proxy RSS and CPU.")
    var hold: Int?

    @Option(help: "With --hold: seconds to ramp up to the target.")
    var holdRamp: Double = 20

    @Option(help: "With --hold: seconds every call stays up once all are placed.")
    var holdSeconds: Double = 20

    typealias Layout = UpCommand.Layout

    struct Create: Sendable {
        let t: Double
        let region: String
        let status: Int
        let id: String?
    }

    /// The fault as given: (verb, kind, name).
    var fault: (verb: String, kind: String, name: String) {
        if stall.count == 2 { return ("stall", stall[0], stall[1]) }
        if kill.count == 2 { return ("kill", kill[0], kill[1]) }
        return ("kill", "region", "us-east-1")
    }

    func validate() throws {
        guard (0...1000).contains(wanDelayMs) else { throw ValidationError("--wan-delay-ms \(wanDelayMs): 0 to 1000") }
    }

    func run() throws {
        if let hold {
            guard hold > 0, kill.isEmpty, stall.isEmpty else { throw ValidationError("--hold N takes no --kill or --stall") }
            try runHold(hold)
            return
        }
        if !stall.isEmpty {
            guard stall.count == 2, stall[0] == "node", kill.isEmpty else { throw ValidationError("--stall node NAME (and no --kill)") }
        } else if !kill.isEmpty {
            guard kill.count == 2, ["node", "region"].contains(kill[0]) else { throw ValidationError("--kill node NAME | --kill region NAME") }
        }
        let fault = self.fault
        let kill = [fault.kind, fault.name]
        let regions = try loadRegions(config)
        let root = URL(fileURLWithPath: data, isDirectory: true).standardizedFileURL
        let up = try UpCommand.parse(upArguments(config: config))
        if fresh, FileManager.default.fileExists(atPath: root.path) { try FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let binary = UpCommand.selfExecutable()
        let stack = UpCommand.Stack(root: root, logLevel: logLevel)
        UpCommand.Stack.installSignalHandlers(stack)
        defer { stack.stopAll() }
        try up.startAll(stack, regions: regions, binary: binary, root: root)
        try UpCommand.uacScenario.write(to: root.appendingPathComponent("uac.xml"), atomically: true, encoding: .utf8)

        let victims = victimNames(regions, kill: kill)
        let deadNodes = kill[0] == "node" ? [kill[1]] : regions.region(named: kill[1])?.nodes.map(\.name) ?? []
        let survivingRegions = kill[0] == "region" ? Layout.regions.filter { $0 != kill[1] } : Layout.regions
        stack.say(
            "drill: \(Int(duration)) s of load (\(sipRate) SIP calls/s and \(apiRate) API creates/s per region), \(fault.verb) \(kill.joined(separator: " ")) at \(Int(at)) s\(restoreAfter.map { ", restore after \(Int($0)) s" } ?? "")"
        )

        let recorder = Recorder()
        let start = Date()
        let streamBefore = streamMessages("calls")
        // SIP load, one sipp per region, each call held 1 s (the scenario's pause).
        var sipps: [(region: String, process: Process, dir: URL)] = []
        for (r, region) in Layout.regions.enumerated() {
            let dir = root.appendingPathComponent("drill/sipp-\(region)")
            let p = try Self.startCaller(
                region: r, in: dir, scenario: root.appendingPathComponent("uac.xml"), localPort: 26060 + r,
                ["-r", String(sipRate), "-m", String(Int(Double(sipRate) * duration)), "-timeout", "\(Int(duration + 30))s", "-recv_timeout", "8000"])
            sipps.append((region, p, dir))
        }
        // API load and the samplers, on their own threads.
        let stop = StopFlag()
        for (r, region) in Layout.regions.enumerated() {
            let key = stack.apiKey
            let rate = apiRate
            Thread.detachNewThread {
                var n = 0
                while !stop.isSet {
                    let began = Date()
                    let body = #"{"to": "+15551234567", "from": "+15557654321", "url": "https://example.com/twiml"}"#
                    let reply = UpCommand.Stack.httpRequest(
                        host: Layout.net.regionHost[r], port: Layout.api[r], method: "POST", path: "/v1/calls", body: body,
                        headers: ["Authorization": "Bearer \(key)", "Idempotency-Key": "drill-\(region)-\(Int(start.timeIntervalSince1970))-\(n)"])
                    let status = reply.flatMap { Int($0.status.split(separator: " ").dropFirst().first ?? "") } ?? 0
                    let id = reply.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8))) as? [String: Any] }?["id"] as? String
                    recorder.add(Create(t: began.timeIntervalSince(start), region: region, status: status, id: status == 201 ? id : nil))
                    n += 1
                    let wait = 1.0 / Double(max(1, rate)) - Date().timeIntervalSince(began)
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                }
            }
        }
        Thread.detachNewThread {
            while !stop.isSet {
                let t = Date().timeIntervalSince(start)
                for (i, port) in Layout.proxyAdmin.enumerated() {
                    guard let body = UpCommand.Stack.httpGet(host: Layout.net.regionHost[i], port: port, path: "/metrics")?.body else { continue }
                    for line in body.split(separator: "\n") where line.hasPrefix("sip_invites_routed_total{node=\"") {
                        let node = line.dropFirst("sip_invites_routed_total{node=\"".count).prefix { $0 != "\"" }
                        if let value = line.split(separator: " ").last.flatMap({ Double($0) }) {
                            recorder.routed(t: t, proxy: port, node: String(node), count: value)
                        }
                    }
                }
                recorder.primary(t: t, name: UpCommand.patroniLeader().map { Layout.patroni[$0].name })
                Thread.sleep(forTimeInterval: 0.25)
            }
        }

        // The fault, and the restore.
        Thread.sleep(until: start.addingTimeInterval(at))
        let faultAt = Date().timeIntervalSince(start)
        if fault.verb == "stall" {
            stack.say("drill: stalling \(victims.joined(separator: ", ")) (SIGSTOP)")
            stack.deliverSignal(SIGSTOP, to: victims)
        } else {
            stack.say("drill: killing \(victims.joined(separator: ", "))")
            stack.kill(victims)
        }
        if let restoreAfter {
            Thread.sleep(until: start.addingTimeInterval(at + restoreAfter))
            stack.say("drill: restoring \(victims.joined(separator: ", "))")
            if fault.verb == "stall" { stack.deliverSignal(SIGCONT, to: victims) } else { try? stack.restart(victims) }
        }
        Thread.sleep(until: start.addingTimeInterval(duration))
        stop.set()
        // A node still stalled is resumed when the load ends (its calls end, the stack can stop it).
        if fault.verb == "stall", restoreAfter == nil { stack.deliverSignal(SIGCONT, to: victims) }
        stack.say("drill: load done; waiting for the callers to finish their calls")
        let sippDeadline = Date().addingTimeInterval(45)
        while sipps.contains(where: { $0.process.isRunning }), Date() < sippDeadline { Thread.sleep(forTimeInterval: 0.1) }
        for s in sipps where s.process.isRunning { Glibc.kill(s.process.processIdentifier, SIGKILL) }
        let loadEnd = Date().timeIntervalSince(start)
        stack.say("drill: checking consistency (every accepted call final, one CDR per completed call)")

        // Consistency: every accepted call reaches a final status; finished calls have one CDR.
        let creates = recorder.creates
        let accepted = creates.compactMap(\.id)
        let database = UpCommand.databaseURL()
        let final: Set<String> = ["completed", "busy", "failed", "no-answer", "canceled"]
        var statuses: [String: String] = [:]
        var cdrCounts: [String: CDRCount] = [:]
        var read = false
        let settleUntil = Date().addingTimeInterval(30)
        repeat {
            // A failed read (the database still settling after a restore) is not an answer.
            if let state = Self.callState(database: database, ids: accepted) {
                (statuses, cdrCounts) = state
                read = true
                if accepted.allSatisfy({ statuses[$0].map(final.contains) ?? false }),
                    accepted.allSatisfy({ statuses[$0] != "completed" || cdrCounts[$0] != nil })
                {
                    break
                }
            }
            Thread.sleep(forTimeInterval: 1)
        } while Date() < settleUntil
        if !read { stack.say("drill: the calls could not be read back from PostgreSQL: consistency figures are -1") }
        let streamAfter = streamMessages("calls")

        // The figures.
        let sip = sipps.map { s in (s.region, Self.sippFigures(s.dir)) }
        let killedRegion = kill[0] == "region" ? kill[1] : nil
        let surviving = sip.filter { $0.0 != killedRegion }
        let afterFault = creates.filter { $0.t >= faultAt }
        let firstFailure = afterFault.first { $0.status != 201 }?.t
        let recovery = firstFailure.flatMap { f in afterFault.first { $0.t > f && $0.status == 201 && survivingRegions.contains($0.region) }?.t }

        let restoredAt = restoreAfter.map { at + $0 }
        let lastToDead = recorder.lastIncrease(nodes: deadNodes, after: faultAt, before: restoredAt ?? .infinity)
        let primaryAtFault = recorder.primaries.last(where: { $0.t <= faultAt })?.name
        let dbFailover = recorder.primaries.first { $0.t > faultAt && $0.name != nil && $0.name != primaryAtFault }?.t
        var report: [String: Any] = [
            "fault": "\(fault.verb) " + kill.joined(separator: " "), "fault_at_s": round(faultAt * 10) / 10, "duration_s": round(loadEnd),
            "sip_calls": sip.map { $0.1.created }.reduce(0, +),
            "sip_setup_failures": surviving.map { $0.1.setupFailures }.reduce(0, +),
            "sip_setup_failures_killed_region": sip.filter { $0.0 == killedRegion }.map { $0.1.setupFailures }.reduce(0, +),
            "sip_failed_in_call": sip.map { $0.1.failedInCall }.reduce(0, +),
            "sip_setup_p99_ms": surviving.map { $0.1.p99 }.max() ?? 0,
            "api_creates": creates.count, "api_errors": creates.filter { $0.status != 201 }.count,
            "accepted_calls_lost": read ? accepted.filter { !(statuses[$0].map(final.contains) ?? false) }.count : -1,
            "cdrs_missing": read ? accepted.filter { statuses[$0] == "completed" && cdrCounts[$0] == nil }.count : -1,
            "cdrs_doubled": read ? cdrCounts.values.filter { $0.rows > $0.channels }.count : -1,
            "calls_placed_twice": read ? cdrCounts.values.filter { $0.nodes > 1 || $0.channels > 1 }.count : -1,
            "stream_messages_lost": (streamBefore != nil && streamAfter != nil) ? max(0, accepted.count - (streamAfter! - streamBefore!)) : -1,
        ]
        report["last_invite_to_dead_s"] = lastToDead.map { round(($0 - faultAt) * 100) / 100 } ?? 0
        report["api_write_rto_s"] = recovery.flatMap { r in firstFailure.map { round((r - $0) * 100) / 100 } } ?? 0
        report["db_failover_s"] = dbFailover.map { round(($0 - faultAt) * 100) / 100 } ?? 0
        report["db_primary_at_fault"] = primaryAtFault ?? "none"
        if restoreAfter != nil {
            // Rejoined without an operator: the restored member streams again (sync standby) and
            // every nats-server holds the same count of the calls stream.
            var rejoined = false
            let until = Date().addingTimeInterval(45)
            while Date() < until, !rejoined {
                let sync = Layout.patroni.enumerated().contains {
                    (UpCommand.Stack.httpGet(host: Layout.net.regionHost[$0.offset], port: $0.element.rest, path: "/sync")?.status.contains(" 200")) ?? false
                }
                let counts = (0..<Layout.natsHTTP.count).map { self.streamMessages("calls", server: $0) }
                rejoined = sync && counts.allSatisfy { $0 != nil && $0 == counts[0] }
                if !rejoined { Thread.sleep(forTimeInterval: 0.5) }
            }
            report["region_rejoined"] = rejoined
        }
        report["regions"] = Dictionary(
            uniqueKeysWithValues: sip.map { region, f in
                (
                    region,
                    [
                        "sip_calls": f.created, "sip_ok": f.successful, "sip_setup_failures": f.setupFailures, "sip_failed_in_call": f.failedInCall,
                        "sip_setup_p99_ms": f.p99,
                        "api_creates": creates.filter { $0.region == region }.count,
                        "api_errors": creates.filter { $0.region == region && $0.status != 201 }.count,
                    ] as [String: Any]
                )
            })

        let jsonURL = URL(fileURLWithPath: jsonOut ?? root.appendingPathComponent("drill/drill.json").path)
        try FileManager.default.createDirectory(at: jsonURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: jsonURL)
        let svgURL = jsonURL.deletingPathExtension().appendingPathExtension("svg")
        try DrillPicture.svg(
            recorder: recorder, creates: creates, faultAt: faultAt, detectedAt: lastToDead, recoveredAt: recovery, restoredAt: restoredAt,
            end: loadEnd, title: "switchyard drill: \(fault.verb) \(kill.joined(separator: " "))"
        ).write(to: svgURL, atomically: true, encoding: .utf8)
        let text = report.keys.sorted().filter { $0 != "regions" }.map { "  \($0.padding(toLength: 34, withPad: " ", startingAt: 0)) \(report[$0]!)" }
        stack.say("drill report (\(jsonURL.path), picture \(svgURL.path)):\n" + text.joined(separator: "\n"))
    }

    /// A sipp caller into region `r`'s proxy, from the root namespace's address toward it, with
    /// statistics, per-call response times and errors written into `dir` (emptied first).
    static func startCaller(region r: Int, in dir: URL, scenario: URL, localPort: Int, _ load: [String]) throws -> Process {
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: UpCommand.Stack.which("sipp") ?? "/usr/bin/sipp")
        p.currentDirectoryURL = dir
        p.arguments =
            [
                "\(Layout.net.regionHost[r]):\(Layout.proxySIP[r])", "-sf", scenario.path, "-s", "15551234567", "-i", Layout.net.callerHost[r], "-p",
                String(localPort),
            ]
            + load + ["-nostdin", "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", "errors.log"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Everything the fault kills.
    private func victimNames(_ regions: RegionsConfig, kill: [String]) -> [String] {
        if kill[0] == "node" { return [kill[1]] }
        let region = kill[1]
        guard let r = Layout.regions.firstIndex(of: region) else { return [] }
        // In start order, so a restore brings them back as `up` started them.
        return ["nats-\(Layout.natsNames[r])", Layout.patroni[r].name] + (regions.region(named: region)?.nodes.map(\.name) ?? [])
            + ["proxy-\(region)", "api-\(region)", "orchestrator-\(region)", "cdr-\(region)"]
    }

    /// The `calls` stream's message count, as a surviving server reports it.
    private func streamMessages(_ stream: String, server only: Int? = nil) -> Int? {
        for i in only.map({ [$0] }) ?? Array(0..<Layout.natsHTTP.count) {
            guard let body = UpCommand.Stack.httpGet(host: Layout.net.natsHost(i), port: Layout.natsHTTP[i], path: "/jsz?accounts=true&streams=true")?.body,
                let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any],
                let accounts = json["account_details"] as? [[String: Any]]
            else { continue }
            for a in accounts {
                for s in (a["stream_detail"] as? [[String: Any]]) ?? [] where s["name"] as? String == stream {
                    if let state = s["state"] as? [String: Any], let n = state["messages"] as? Int { return n }
                }
            }
        }
        return nil
    }

    /// A call id's CDR rows, distinct channels (node + channel UUID) and distinct nodes.
    struct CDRCount: Sendable {
        var rows = 0, channels = 0, nodes = 0
    }

    static func callState(database: String, ids: [String]) -> ([String: String], [String: CDRCount])? {
        let box = ResultBox()
        let group = DispatchGroup()
        group.enter()
        Task {
            let pool = PostgresPool(conninfo: database, size: 1, reconnectWindow: .seconds(10))
            let list = "{" + ids.joined(separator: ",") + "}"
            do {
                let calls = try await pool.query("SELECT id::text AS id, status FROM calls WHERE id::text = ANY($1::text[])", [list])
                box.statuses = Dictionary(
                    calls.rows.compactMap { r in r["id"].flatMap { id in r["status"].map { (id, $0) } } }, uniquingKeysWith: { a, _ in a })
                let cdrs = try await pool.query(
                    """
                    SELECT call_id, count(*) AS n, count(DISTINCT (node, channel_uuid)) AS channels, count(DISTINCT node) AS nodes
                    FROM cdr WHERE call_id = ANY($1::text[]) GROUP BY call_id
                    """, [list])
                box.cdrs = Dictionary(
                    cdrs.rows.compactMap { r in
                        r["call_id"].map {
                            ($0, CDRCount(rows: r.optionalInt("n") ?? 0, channels: r.optionalInt("channels") ?? 0, nodes: r.optionalInt("nodes") ?? 0))
                        }
                    }, uniquingKeysWith: { a, _ in a })
                box.ok = true
            } catch {
                box.ok = false
                box.error = "\(error)"
            }
            await pool.shutdown()
            group.leave()
        }
        group.wait()
        if !box.ok { FileHandle.standardError.write(Data("up: drill: reading calls back failed: \(box.error)\n".utf8)) }
        return box.ok ? (box.statuses, box.cdrs) : nil
    }

    struct SippFigures {
        var created = 0, successful = 0, setupFailures = 0, failedInCall = 0, p99 = 0
    }

    /// From sipp's statistics (last row) and its per-call response times (-trace_rtt).
    static func sippFigures(_ dir: URL) -> SippFigures {
        var f = SippFigures()
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        if let text = try? String(contentsOf: dir.appendingPathComponent("stat.csv"), encoding: .isoLatin1) {
            let rows = text.split(separator: "\n").map { $0.split(separator: ";", omittingEmptySubsequences: false).map(String.init) }
            if rows.count > 1, let header = rows.first, let last = rows.last {
                let row = Dictionary(zip(header, last), uniquingKeysWith: { a, _ in a })
                f.created = Int(row["TotalCallCreated"] ?? "") ?? 0
                f.successful = Int(row["SuccessfulCall(C)"] ?? "") ?? 0
            }
        }
        var times: [Double] = []
        if let rtt = files.first(where: { $0.hasSuffix("_rtt.csv") }), let text = try? String(contentsOf: dir.appendingPathComponent(rtt), encoding: .isoLatin1)
        {
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: ";")
                if cols.count >= 2, let ms = Double(cols[1]) { times.append(ms) }
            }
        }
        times.sort()
        let answered = times.count
        f.setupFailures = max(0, f.created - answered)
        f.failedInCall = max(0, answered - f.successful)
        f.p99 = times.isEmpty ? 0 : Int(times[min(times.count - 1, Int(Double(times.count) * 0.99))].rounded())
        return f
    }

    final class ResultBox: @unchecked Sendable {
        // @unchecked: written by one task before the group is left, read after the wait.
        var statuses: [String: String] = [:]
        var cdrs: [String: CDRCount] = [:]
        var ok = false
        var error = ""
    }

    final class StopFlag: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }

    /// What the drill saw, from several threads.
    final class Recorder: @unchecked Sendable {
        // @unchecked: every field is guarded by `lock`.
        private let lock = NSLock()
        private var _creates: [Create] = []
        private var _routed: [(t: Double, proxy: Int, node: String, count: Double)] = []
        private var _primaries: [(t: Double, name: String?)] = []

        func add(_ c: Create) { lock.withLock { _creates.append(c) } }
        func routed(t: Double, proxy: Int, node: String, count: Double) { lock.withLock { _routed.append((t, proxy, node, count)) } }
        func primary(t: Double, name: String?) { lock.withLock { _primaries.append((t, name)) } }
        var creates: [Create] { lock.withLock { _creates.sorted { $0.t < $1.t } } }
        var primaries: [(t: Double, name: String?)] { lock.withLock { _primaries } }
        var routedSamples: [(t: Double, proxy: Int, node: String, count: Double)] { lock.withLock { _routed } }

        /// The last sample time at which a surviving proxy's count of INVITEs routed to one of
        /// `nodes` went up, after `after`.
        func lastIncrease(nodes: [String], after: Double, before: Double = .infinity) -> Double? {
            let samples = routedSamples
            var last: Double?
            for node in nodes {
                var previous: [Int: Double] = [:]
                for s in samples where s.node == node {
                    if let p = previous[s.proxy], s.count > p, s.t > after, s.t < before { last = max(last ?? 0, s.t) }
                    previous[s.proxy] = s.count
                }
            }
            return last
        }
    }
}
