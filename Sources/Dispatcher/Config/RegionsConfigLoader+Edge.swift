extension RegionsConfigLoader {
    static func validateEdge(_ raw: RegionsFile.Edge?, _ issues: inout [ConfigIssue]) -> EdgeSettings {
        var edge = EdgeSettings()
        guard let raw else { return edge }
        if let u = raw.unknown_source {
            if let action = UnknownSourceAction(rawValue: u) {
                edge.unknownSource = action
            } else {
                issues.append(ConfigIssue(path: "edge.unknown_source", message: "'\(u)' is not one of: reject, drop"))
            }
        }
        if let s = raw.server_header {
            let name = trimmed(s)
            if name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                issues.append(ConfigIssue(path: "edge.server_header", message: "must be one line of printable text"))
            } else {
                edge.serverHeader = name.isEmpty ? nil : name
            }
        }
        edge.maxCallDuration = duration(raw.max_call_duration, "edge.max_call_duration", default: edge.maxCallDuration, &issues)
        if let f = raw.flood {
            edge.flood.enabled = f.enabled ?? true
            edge.flood.requests = positive(f.requests, "edge.flood.requests", default: edge.flood.requests, &issues)
            edge.flood.window = duration(f.window, "edge.flood.window", default: edge.flood.window, &issues)
            edge.flood.ban = duration(f.ban, "edge.flood.ban", default: edge.flood.ban, &issues)
            edge.flood.maxSources = positive(f.max_sources, "edge.flood.max_sources", default: edge.flood.maxSources, &issues)
            edge.flood.applyToTrunks = f.apply_to_trunks ?? false
        }
        if let s = raw.scanners {
            edge.scanners.drop = s.drop ?? true
            if let agents = s.user_agents {
                for (i, a) in agents.enumerated() where trimmed(a).isEmpty {
                    issues.append(ConfigIssue(path: "edge.scanners.user_agents[\(i)]", message: "an empty pattern would match every request"))
                }
                edge.scanners.userAgents = agents.map { trimmed($0).lowercased() }.filter { !$0.isEmpty }
            }
        }
        return edge
    }

    static func validateTrunks(_ raw: [RegionsFile.TrunkEntry], _ issues: inout [ConfigIssue]) -> [Trunk] {
        var trunks: [Trunk] = []
        var names: Set<String> = []
        for (i, t) in raw.enumerated() {
            let path = "trunks[\(i)]"
            guard let name = t.name.map(trimmed), !name.isEmpty else {
                issues.append(ConfigIssue(path: "\(path).name", message: "missing"))
                continue
            }
            if !names.insert(name).inserted {
                issues.append(ConfigIssue(path: "\(path).name", message: "'\(name)' names another trunk too"))
            }
            var sources: [TrunkSource] = []
            for (j, text) in (t.sources ?? []).enumerated() {
                if let s = TrunkSource(parsing: text) {
                    sources.append(s)
                } else {
                    issues.append(ConfigIssue(path: "\(path).sources[\(j)]", message: "'\(text)' is not a.b.c.d[/len][:port]"))
                }
            }
            if (t.sources ?? []).isEmpty && t.tls_subject == nil {
                issues.append(ConfigIssue(path: "\(path).sources", message: "a trunk needs at least one source network or a tls_subject"))
            }
            let cps = t.calls_per_second.map { positive($0, "\(path).calls_per_second", default: 1, &issues) }
            let concurrent = t.max_concurrent.map { positive($0, "\(path).max_concurrent", default: 1, &issues) }
            trunks.append(Trunk(name: name, sources: sources, tlsSubject: t.tls_subject, callsPerSecond: cps, maxConcurrent: concurrent))
        }
        return trunks
    }
}
