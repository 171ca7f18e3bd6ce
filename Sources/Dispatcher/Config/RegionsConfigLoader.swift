import Yams

/// Turns `regions.yaml` text into a `RegionsConfig`, or a `ConfigError` naming every bad key.
public enum RegionsConfigLoader {
    public static func load(yaml: String, file: String = "regions.yaml") throws(ConfigError) -> RegionsConfig {
        let root: Yams.Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(file: file, issues: [ConfigIssue(path: "", message: "the file is empty")])
            }
            root = node
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError(file: file, issues: [ConfigIssue(path: "", message: "not valid YAML: \(error)")])
        }
        var issues: [ConfigIssue] = []
        checkKeys(root, path: "", pattern: "", issues: &issues)
        let raw: RegionsFile
        do {
            raw = try YAMLDecoder().decode(RegionsFile.self, from: root)
        } catch let e as DecodingError {
            issues.append(issue(from: e))
            throw ConfigError(file: file, issues: issues)
        } catch {
            throw ConfigError(file: file, issues: issues + [ConfigIssue(path: "", message: "\(error)")])
        }
        let config = validate(raw, file: file, issues: &issues)
        guard issues.isEmpty, let config else { throw ConfigError(file: file, issues: issues) }
        return config
    }

    // MARK: - Unknown keys

    private static func checkKeys(_ node: Yams.Node, path: String, pattern: String, issues: inout [ConfigIssue]) {
        switch node {
        case .mapping(let mapping):
            let known = RegionsFile.knownKeys[pattern]
            for (k, v) in mapping {
                guard let key = k.string else {
                    issues.append(ConfigIssue(path: path, message: "keys must be strings"))
                    continue
                }
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                var childPattern = pattern.isEmpty ? key : "\(pattern).\(key)"
                if pattern == "regions" { childPattern = "regions.*" }
                if let known {
                    guard known.contains(key) else {
                        let hint = known.sorted().joined(separator: ", ")
                        issues.append(ConfigIssue(path: childPath, message: "unknown key (expected one of: \(hint))"))
                        continue
                    }
                } else if pattern != "regions" {
                    continue
                }
                checkKeys(v, path: childPath, pattern: childPattern, issues: &issues)
            }
        case .sequence(let seq):
            for (i, item) in seq.enumerated() {
                checkKeys(item, path: "\(path)[\(i)]", pattern: "\(pattern)[]", issues: &issues)
            }
        default:
            return
        }
    }

    private static func issue(from error: DecodingError) -> ConfigIssue {
        func render(_ path: [any CodingKey]) -> String {
            var s = ""
            for k in path {
                if let i = k.intValue {
                    s += "[\(i)]"
                } else {
                    s += s.isEmpty ? k.stringValue : ".\(k.stringValue)"
                }
            }
            return s
        }
        switch error {
        case .typeMismatch(let type, let ctx):
            return ConfigIssue(path: render(ctx.codingPath), message: "expected \(describe(type))")
        case .valueNotFound(let type, let ctx):
            return ConfigIssue(path: render(ctx.codingPath), message: "expected \(describe(type)), found nothing")
        case .keyNotFound(let key, let ctx):
            return ConfigIssue(path: render(ctx.codingPath + [key]), message: "missing")
        case .dataCorrupted(let ctx):
            return ConfigIssue(path: render(ctx.codingPath), message: ctx.debugDescription)
        @unknown default:
            return ConfigIssue(path: "", message: "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is String.Type: "a string"
        case is [String].Type: "a list of strings"
        case is [Int].Type: "a list of integers"
        default: "a \(type)"
        }
    }

    // MARK: - Validation

    private static func validate(_ raw: RegionsFile, file: String, issues: inout [ConfigIssue]) -> RegionsConfig? {
        // proxy
        var listen: [ListenAddress] = []
        let listenTexts = raw.proxy?.listen ?? ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"]
        if listenTexts.isEmpty { issues.append(ConfigIssue(path: "proxy.listen", message: "at least one address is needed")) }
        for (i, text) in listenTexts.enumerated() {
            let path = "proxy.listen[\(i)]"
            let parts = text.split(separator: "://", maxSplits: 1).map(String.init)
            guard parts.count == 2, let transport = ListenAddress.Transport(rawValue: parts[0].lowercased()) else {
                issues.append(ConfigIssue(path: path, message: "'\(text)' is not transport://host:port (transport udp, tcp or tls)"))
                continue
            }
            guard let hp = HostPort(parsing: parts[1]) else {
                issues.append(ConfigIssue(path: path, message: "'\(parts[1])' is not host:port"))
                continue
            }
            listen.append(ListenAddress(transport: transport, address: hp))
        }
        var advertise = listen.first?.address ?? HostPort(host: "127.0.0.1", port: 5060)
        if let a = raw.proxy?.advertise {
            if let hp = HostPort(parsing: a) {
                advertise = hp
            } else {
                issues.append(ConfigIssue(path: "proxy.advertise", message: "'\(a)' is not host:port"))
            }
        }
        var trusted: [IPv4Network] = []
        // With trunks declared, only they (and networks listed here) may send requests.
        let defaultTrusted = (raw.trunks ?? []).isEmpty ? ["127.0.0.0/8"] : []
        for (i, t) in (raw.proxy?.trusted ?? defaultTrusted).enumerated() {
            if let n = IPv4Network(parsing: t) {
                trusted.append(n)
            } else {
                issues.append(ConfigIssue(path: "proxy.trusted[\(i)]", message: "'\(t)' is not an IPv4 address or a.b.c.d/len network"))
            }
        }
        var metrics: HostPort?
        if let m = raw.proxy?.metrics {
            metrics = HostPort(parsing: m)
            if metrics == nil { issues.append(ConfigIssue(path: "proxy.metrics", message: "'\(m)' is not host:port")) }
        }

        var tcp = TCPSettings()
        if let t = raw.proxy?.tcp {
            tcp.idleTimeout = duration(t.idle_timeout, "proxy.tcp.idle_timeout", default: tcp.idleTimeout, &issues)
            tcp.firstMessageTimeout = duration(t.first_message_timeout, "proxy.tcp.first_message_timeout", default: tcp.firstMessageTimeout, &issues)
            tcp.headerTimeout = duration(t.header_timeout, "proxy.tcp.header_timeout", default: tcp.headerTimeout, &issues)
            tcp.maxConnections = positive(t.max_connections, "proxy.tcp.max_connections", default: tcp.maxConnections, &issues)
            tcp.maxConnectionsPerSource = positive(
                t.max_connections_per_source, "proxy.tcp.max_connections_per_source", default: tcp.maxConnectionsPerSource, &issues)
        }
        let maxTransactions = positive(raw.proxy?.max_transactions, "proxy.max_transactions", default: 500_000, &issues)
        var methods = ProxySettings.defaultDispatchMethods
        if let m = raw.proxy?.methods {
            methods = []
            for (i, name) in m.enumerated() {
                // Method names are case-sensitive tokens (RFC 3261 §7.1, §25.1): kept as written.
                let upper = name
                let isToken =
                    !upper.isEmpty
                    && upper.utf8.allSatisfy { b in
                        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || "-.!%*_+`'~".utf8.contains(b)
                    }
                if !isToken {
                    issues.append(ConfigIssue(path: "proxy.methods[\(i)]", message: "'\(name)' is not a SIP method name"))
                } else if ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"].contains(upper) {
                    issues.append(ConfigIssue(path: "proxy.methods[\(i)]", message: "\(upper) is always handled; list only the other methods to dispatch"))
                } else if !methods.contains(upper) {
                    methods.append(upper)
                }
            }
        }

        // dispatch
        var policy = DispatchPolicy.roundRobin
        if let p = raw.dispatch?.policy {
            if let parsed = DispatchPolicy(rawValue: p) {
                policy = parsed
            } else {
                let all = DispatchPolicy.allCases.map(\.rawValue).joined(separator: ", ")
                issues.append(ConfigIssue(path: "dispatch.policy", message: "'\(p)' is not one of: \(all)"))
            }
        }
        var spillAt: Double?
        if let text = raw.dispatch?.spill_at {
            let t = trimmed(text)
            let value = t.hasSuffix("%") ? Double(t.dropLast()).map { $0 / 100 } : Double(t)
            if let value, value > 0, value <= 1 {
                spillAt = value
            } else {
                issues.append(ConfigIssue(path: "dispatch.spill_at", message: "'\(text)' is not a share of capacity like 80% or 0.8"))
            }
        }
        var probe = ProbeSettings()
        if let p = raw.dispatch?.probe {
            probe.interval = duration(p.interval, "dispatch.probe.interval", default: probe.interval, &issues)
            probe.timeout = duration(p.timeout, "dispatch.probe.timeout", default: probe.timeout, &issues)
            probe.downAfter = positive(p.down_after, "dispatch.probe.down_after", default: probe.downAfter, &issues)
            probe.upAfter = positive(p.up_after, "dispatch.probe.up_after", default: probe.upAfter, &issues)
        }
        var failover = FailoverSettings()
        if let f = raw.dispatch?.failover {
            failover.inviteTimeout = duration(f.invite_timeout, "dispatch.failover.invite_timeout", default: failover.inviteTimeout, &issues)
            failover.inviteTimeoutMin = duration(
                f.invite_timeout_min, "dispatch.failover.invite_timeout_min", default: min(failover.inviteTimeoutMin, failover.inviteTimeout), &issues)
            if failover.inviteTimeoutMin > failover.inviteTimeout {
                issues.append(ConfigIssue(path: "dispatch.failover.invite_timeout_min", message: "must not exceed invite_timeout"))
            }
            failover.holdDown = duration(f.hold_down, "dispatch.failover.hold_down", default: failover.holdDown, &issues)
            failover.maxAttempts = positive(f.max_attempts, "dispatch.failover.max_attempts", default: failover.maxAttempts, &issues)
            if let codes = f.retry_on {
                for (i, c) in codes.enumerated() where !(300...699).contains(c) {
                    issues.append(ConfigIssue(path: "dispatch.failover.retry_on[\(i)]", message: "\(c) is not a final failure status (300-699)"))
                }
                failover.retryOn = Set(codes)
            }
        }

        // regions
        var regions: [Region] = []
        var nodeNames: [String: String] = [:]
        var sipAddresses: [HostPort: String] = [:]
        let rawRegions = raw.regions ?? [:]
        if rawRegions.isEmpty { issues.append(ConfigIssue(path: "regions", message: "at least one region with nodes is needed")) }
        for name in rawRegions.keys.sorted() {
            let r = rawRegions[name]!
            let rpath = "regions.\(name)"
            if name.isEmpty || name.contains(where: { $0 == " " || $0 == "." }) {
                issues.append(ConfigIssue(path: rpath, message: "region names are non-empty and have no spaces or dots"))
            }
            var nodes: [Node] = []
            let rawNodes = r.nodes ?? []
            if rawNodes.isEmpty { issues.append(ConfigIssue(path: "\(rpath).nodes", message: "a region needs at least one node")) }
            for (i, n) in rawNodes.enumerated() {
                let npath = "\(rpath).nodes[\(i)]"
                guard let nodeName = n.name, !nodeName.isEmpty else {
                    issues.append(ConfigIssue(path: "\(npath).name", message: "missing"))
                    continue
                }
                if let other = nodeNames[nodeName] {
                    issues.append(ConfigIssue(path: "\(npath).name", message: "'\(nodeName)' is already used at \(other)"))
                }
                nodeNames[nodeName] = npath
                guard let sipText = n.sip else {
                    issues.append(ConfigIssue(path: "\(npath).sip", message: "missing"))
                    continue
                }
                guard let sip = HostPort(parsing: sipText) else {
                    issues.append(ConfigIssue(path: "\(npath).sip", message: "'\(sipText)' is not host:port"))
                    continue
                }
                if IPv4Network.parseIPv4(sip.host) == nil && !sip.host.contains(":") {
                    issues.append(ConfigIssue(path: "\(npath).sip", message: "'\(sip.host)' must be an IP address (the proxy does no DNS on the hot path)"))
                }
                if let other = sipAddresses[sip] {
                    issues.append(ConfigIssue(path: "\(npath).sip", message: "\(sip) is already used at \(other)"))
                }
                sipAddresses[sip] = "\(npath).sip"
                var esl: HostPort?
                if let e = n.esl {
                    esl = HostPort(parsing: e)
                    if esl == nil { issues.append(ConfigIssue(path: "\(npath).esl", message: "'\(e)' is not host:port")) }
                }
                let maxChannels = positive(n.max_channels, "\(npath).max_channels", default: 500, &issues)
                let weight = positive(n.weight, "\(npath).weight", default: 1, &issues)
                var transport = ListenAddress.Transport.udp
                if let t = n.transport {
                    if let parsed = ListenAddress.Transport(rawValue: t.lowercased()) {
                        transport = parsed
                    } else {
                        issues.append(ConfigIssue(path: "\(npath).transport", message: "'\(t)' is not one of: udp, tcp, tls"))
                    }
                }
                nodes.append(
                    Node(
                        name: nodeName, region: name, sip: sip, esl: esl, maxChannels: maxChannels, weight: weight, drain: n.drain ?? false,
                        transport: transport))
            }
            for (i, prefix) in (r.prefer_for ?? []).enumerated() {
                let digits = prefix.hasPrefix("+") ? prefix.dropFirst() : Substring(prefix)
                if digits.isEmpty || !digits.allSatisfy(\.isNumber) {
                    issues.append(ConfigIssue(path: "\(rpath).prefer_for[\(i)]", message: "'\(prefix)' is not a number prefix like +1212"))
                }
            }
            regions.append(Region(name: name, preferFor: r.prefer_for ?? [], nodes: nodes))
        }
        if let region = raw.proxy?.region, rawRegions[region] == nil {
            issues.append(ConfigIssue(path: "proxy.region", message: "'\(region)' is not a region defined under regions"))
        }
        let edge = validateEdge(raw.edge, &issues)
        let trunks = validateTrunks(raw.trunks ?? [], file: file, &issues)
        let tls = validateTLS(raw.proxy?.tls, file: file, listen: listen, nodes: regions.flatMap(\.nodes), trunks: trunks, &issues)
        guard issues.isEmpty else { return nil }
        return RegionsConfig(
            proxy: ProxySettings(
                listen: listen, advertise: advertise, trusted: trusted, metrics: metrics, region: raw.proxy?.region, tcp: tcp, dispatchMethods: methods,
                maxTransactions: maxTransactions, tls: tls),
            policy: policy, probe: probe, failover: failover, regions: regions, spillAt: spillAt, edge: edge, trunks: trunks
        )
    }

    static func positive(_ value: Int?, _ path: String, default d: Int, _ issues: inout [ConfigIssue]) -> Int {
        guard let value else { return d }
        guard value > 0 else {
            issues.append(ConfigIssue(path: path, message: "must be a positive integer, not \(value)"))
            return d
        }
        return value
    }

    static func duration(_ text: String?, _ path: String, default d: Duration, _ issues: inout [ConfigIssue]) -> Duration {
        guard let text else { return d }
        guard let v = parseDuration(text), v > .zero else {
            issues.append(ConfigIssue(path: path, message: "'\(text)' is not a duration like 500ms, 2s or 1m"))
            return d
        }
        return v
    }

    /// `250ms`, `2s`, `1.5s`, `1m`, `4h`.
    public static func parseDuration(_ text: String) -> Duration? {
        let t = trimmed(text)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let number = t.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let v = Double(number) else { return nil }
            return .milliseconds(Int64((v * scale * 1000).rounded()))
        }
        return nil
    }
}
