import ArgumentParser
import Dispatcher
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `switchyard drill --hold N`: the capacity drill. Brings the two-region stack up with every
/// node's `max_channels` raised to hold its share, ramps SIP calls into both regions' proxies
/// (sipp, half each) until N are up at once, holds them, and reports the spread over the nodes,
/// setup failures, and each proxy's RSS and CPU (RSS per concurrent call, CPU per call).
extension DrillCommand {
    func runHold(_ target: Int) throws {
        let regions = try loadRegions(config)
        let root = URL(fileURLWithPath: data, isDirectory: true).standardizedFileURL
        if fresh, FileManager.default.fileExists(atPath: root.path) { try FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("logs"), withIntermediateDirectories: true)
        // The same deployment with room for the calls: max_channels at 125 % of an even share.
        let nodes = Layout.regions.flatMap { regions.region(named: $0)?.nodes ?? [] }
        guard !nodes.isEmpty else { throw ValidationError("no nodes in \(config)") }
        let perNode = (target * 5 / 4 + nodes.count - 1) / nodes.count
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let raised = try NSRegularExpression(pattern: "max_channels: *[0-9]+")
            .stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "max_channels: \(perNode)")
        let holdConfig = root.appendingPathComponent("hold-regions.yaml")
        try raised.write(to: holdConfig, atomically: true, encoding: .utf8)
        let up = try UpCommand.parse(upArguments(config: holdConfig.path))
        let binary = UpCommand.selfExecutable()
        let stack = UpCommand.Stack(root: root, logLevel: logLevel)
        UpCommand.Stack.installSignalHandlers(stack)
        defer { stack.stopAll() }
        try up.startAll(stack, regions: try loadRegions(holdConfig.path), binary: binary, root: root)

        // Each call: INVITE, 200, ACK, held for ramp + hold seconds, BYE.
        let ramp = max(1, holdRamp)
        let holdMs = Int((ramp + holdSeconds) * 1000)
        let scenario = UpCommand.uacScenario.replacingOccurrences(of: "<pause milliseconds=\"1000\"/>", with: "<pause milliseconds=\"\(holdMs)\"/>")
        let scenarioURL = root.appendingPathComponent("hold-uac.xml")
        try scenario.write(to: scenarioURL, atomically: true, encoding: .utf8)
        let perRegion = target / Layout.regions.count
        let rate = max(1, Int((Double(perRegion) / ramp).rounded(.up)))
        stack.say(
            "drill --hold: \(target) concurrent calls (\(perRegion) per region at \(rate) calls/s for \(Int(ramp)) s, each held \(holdMs / 1000) s), nodes at max_channels \(perNode)"
        )

        let proxies = Layout.regions.map { "proxy-\($0)" }
        func rss(_ name: String) -> Int {
            guard let pid = stack.pid(of: name), let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0  // kB
        }
        func cpuTicks(_ name: String) -> Int {
            guard let pid = stack.pid(of: name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .isoLatin1),
                let close = stat.lastIndex(of: ")")
            else { return 0 }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)  // utime + stime
        }
        func channels() -> [String: Int] {
            var out: [String: Int] = [:]
            for node in nodes {
                let r = Layout.regions.firstIndex(of: node.region) ?? 0
                let host = Layout.net.isNamespaced ? Layout.net.regionHost[r] : (node.esl?.host ?? "127.0.0.1")
                guard let port = node.esl?.port, let reply = UpCommand.Stack.eslAPI(host: host, port: port, "fsnode status") else { continue }
                for word in reply.split(separator: " ") where word.hasPrefix("channels=") { out[node.name] = Int(word.dropFirst("channels=".count)) }
            }
            return out
        }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let rssBase = proxies.map(rss)
        let cpuBase = proxies.map(cpuTicks)

        var sipps: [(region: String, process: Process, dir: URL)] = []
        for (r, region) in Layout.regions.enumerated() {
            let dir = root.appendingPathComponent("drill/hold-\(region)")
            let p = try Self.startCaller(
                region: r, in: dir, scenario: scenarioURL, localPort: 26160 + r,
                [
                    "-r", String(rate), "-m", String(perRegion), "-l", String(perRegion + 100), "-timeout", "\(Int(ramp * 2 + holdSeconds + 60))s",
                    "-recv_timeout", "10000",
                ])
            sipps.append((region, p, dir))
        }

        // Sample until the callers are done (bounded).
        let start = Date()
        var peak = 0
        var spreadAtPeak: [String: Int] = [:]
        var rssPeak = rssBase
        var samples: [(t: Double, total: Int)] = []
        let deadline = start.addingTimeInterval(ramp * 2 + holdSeconds + 90)
        while sipps.contains(where: { $0.process.isRunning }), Date() < deadline {
            let c = channels()
            let total = c.values.reduce(0, +)
            samples.append((Date().timeIntervalSince(start), total))
            if total > peak {
                peak = total
                spreadAtPeak = c
            }
            for (i, name) in proxies.enumerated() { rssPeak[i] = max(rssPeak[i], rss(name)) }
            Thread.sleep(forTimeInterval: 1)
        }
        for s in sipps where s.process.isRunning { Glibc.kill(s.process.processIdentifier, SIGKILL) }
        let cpu = zip(proxies.map(cpuTicks), cpuBase).map { Double($0 - $1) / ticksPerSecond }
        let sip = sipps.map { Self.sippFigures($0.dir) }
        let calls = sip.map(\.created).reduce(0, +)
        let rssGrowthKB = zip(rssPeak, rssBase).map { $0 - $1 }.reduce(0, +)
        var report: [String: Any] = [
            "hold_target": target, "peak_concurrent": peak, "spread_at_peak": spreadAtPeak, "max_channels_per_node": perNode,
            "sip_calls": calls, "sip_ok": sip.map(\.successful).reduce(0, +),
            "sip_setup_failures": sip.map(\.setupFailures).reduce(0, +), "sip_failed_in_call": sip.map(\.failedInCall).reduce(0, +),
            "sip_setup_p99_ms": sip.map(\.p99).max() ?? 0,
            "proxy_rss_base_mb": rssBase.map { Double($0) / 1024 }.map { ($0 * 10).rounded() / 10 },
            "proxy_rss_peak_mb": rssPeak.map { Double($0) / 1024 }.map { ($0 * 10).rounded() / 10 },
            "proxy_cpu_s": cpu.map { ($0 * 100).rounded() / 100 },
        ]
        report["rss_per_concurrent_call_kb"] = peak > 0 ? (Double(rssGrowthKB) / Double(peak) * 100).rounded() / 100 : 0
        report["proxy_cpu_ms_per_call"] = calls > 0 ? (cpu.reduce(0, +) * 1000 / Double(calls) * 1000).rounded() / 1000 : 0
        report["concurrent_over_time"] = samples.map { [($0.t * 10).rounded() / 10, Double($0.total)] }
        let jsonURL = URL(fileURLWithPath: jsonOut ?? root.appendingPathComponent("drill/hold.json").path)
        try FileManager.default.createDirectory(at: jsonURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: jsonURL)
        let lines = report.keys.sorted().filter { $0 != "concurrent_over_time" }.map {
            "  \($0.padding(toLength: 28, withPad: " ", startingAt: 0)) \(report[$0]!)"
        }
        stack.say("hold report (\(jsonURL.path)):\n" + lines.joined(separator: "\n"))
    }
}
