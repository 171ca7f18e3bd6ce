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

    static func validateTrunks(_ raw: [RegionsFile.TrunkEntry], file: String, _ issues: inout [ConfigIssue]) -> [Trunk] {
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
            let subject = t.tls_subject.map(trimmed)
            if subject?.isEmpty == true { issues.append(ConfigIssue(path: "\(path).tls_subject", message: "must not be empty")) }
            if let ca = t.tls_ca, sources.isEmpty {
                issues.append(
                    ConfigIssue(path: "\(path).tls_ca", message: "'\(ca)': a trunk's own CA needs its sources (it is chosen by the connecting address)"))
            }
            trunks.append(
                Trunk(
                    name: name, sources: sources, tlsSubject: subject, tlsCA: t.tls_ca.map { resolve($0, relativeTo: file) }, callsPerSecond: cps,
                    maxConcurrent: concurrent))
        }
        return trunks
    }
}

extension RegionsConfigLoader {
    /// `proxy.tls`: required by a `tls://` listener or a node reached over TLS.
    static func validateTLS(
        _ raw: RegionsFile.TLS?, file: String, listen: [ListenAddress], nodes: [Node], trunks: [Trunk], _ issues: inout [ConfigIssue]
    ) -> TLSSettings? {
        let needed = listen.contains { $0.transport == .tls } || nodes.contains { $0.transport == .tls }
        guard let raw else {
            if needed {
                issues.append(ConfigIssue(path: "proxy.tls", message: "a tls:// listener or a node with transport tls needs proxy.tls.certificate and key"))
            }
            if let t = trunks.first(where: { $0.tlsCA != nil || $0.tlsSubject != nil }), !needed {
                issues.append(ConfigIssue(path: "trunks", message: "trunk '\(t.name)' has TLS settings but the proxy has no tls:// listener"))
            }
            return nil
        }
        for t in trunks where t.tlsSubject != nil && t.tlsCA == nil && raw.client_ca == nil {
            issues.append(
                ConfigIssue(
                    path: "trunks", message: "trunk '\(t.name)' has a tls_subject but no CA checks it: set its tls_ca or proxy.tls.client_ca"))
        }
        var missing = false
        for (key, value) in [("certificate", raw.certificate), ("key", raw.key)] where value.map(trimmed)?.isEmpty ?? true {
            issues.append(ConfigIssue(path: "proxy.tls.\(key)", message: "missing (a PEM file)"))
            missing = true
        }
        guard !missing, let certificate = raw.certificate, let key = raw.key else { return nil }
        return TLSSettings(
            certificate: resolve(certificate, relativeTo: file), key: resolve(key, relativeTo: file),
            clientCA: raw.client_ca.map { resolve($0, relativeTo: file) }, nodeCA: raw.node_ca.map { resolve($0, relativeTo: file) })
    }

    /// A path from the file, absolute: relative paths are taken from the file's directory.
    static func resolve(_ path: String, relativeTo file: String) -> String {
        let p = trimmed(path)
        guard !p.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return p }
        return String(file[...slash]) + p
    }
}
