/// The raw shape of `regions.yaml`, as decoded. Every field is optional here so that a missing
/// key becomes a validation message with its path, not a decoding failure.
struct RegionsFile: Decodable, Sendable {
    struct Proxy: Decodable, Sendable {
        var listen: [String]?
        var advertise: String?
        var trusted: [String]?
        var metrics: String?
        var region: String?
        var tcp: TCP?
        var methods: [String]?
        var max_transactions: Int?
        var tls: TLS?
    }
    struct TLS: Decodable, Sendable {
        var certificate: String?
        var key: String?
        var client_ca: String?
        var node_ca: String?
    }
    struct TCP: Decodable, Sendable {
        var idle_timeout: String?
        var first_message_timeout: String?
        var header_timeout: String?
        var max_connections: Int?
        var max_connections_per_source: Int?
    }
    struct Probe: Decodable, Sendable {
        var interval: String?
        var timeout: String?
        var down_after: Int?
        var up_after: Int?
    }
    struct Failover: Decodable, Sendable {
        var invite_timeout: String?
        var invite_timeout_min: String?
        var retry_on: [Int]?
        var max_attempts: Int?
        var hold_down: String?
    }
    struct Dispatch: Decodable, Sendable {
        var policy: String?
        var spill_at: String?
        var probe: Probe?
        var failover: Failover?
    }
    struct Node: Decodable, Sendable {
        var name: String?
        var sip: String?
        var esl: String?
        var max_channels: Int?
        var weight: Int?
        var drain: Bool?
        var transport: String?
    }
    struct Region: Decodable, Sendable {
        var prefer_for: [String]?
        var nodes: [Node]?
    }

    struct Flood: Decodable, Sendable {
        var enabled: Bool?
        var requests: Int?
        var window: String?
        var ban: String?
        var max_sources: Int?
        var apply_to_trunks: Bool?
    }
    struct Scanners: Decodable, Sendable {
        var drop: Bool?
        var user_agents: [String]?
    }
    struct Edge: Decodable, Sendable {
        var unknown_source: String?
        var server_header: String?
        var max_call_duration: String?
        var flood: Flood?
        var scanners: Scanners?
    }
    struct TrunkEntry: Decodable, Sendable {
        var name: String?
        var sources: [String]?
        var tls_subject: String?
        var tls_ca: String?
        var calls_per_second: Int?
        var max_concurrent: Int?
    }

    var proxy: Proxy?
    var dispatch: Dispatch?
    var regions: [String: Region]?
    var edge: Edge?
    var trunks: [TrunkEntry]?

    /// Keys each mapping may hold, by path pattern (`*` = any region name, `[]` = a list item).
    static let knownKeys: [String: Set<String>] = [
        "": ["proxy", "dispatch", "regions", "edge", "trunks"],
        "edge": ["unknown_source", "server_header", "max_call_duration", "flood", "scanners"],
        "edge.flood": ["enabled", "requests", "window", "ban", "max_sources", "apply_to_trunks"],
        "edge.scanners": ["drop", "user_agents"],
        "trunks[]": ["name", "sources", "tls_subject", "tls_ca", "calls_per_second", "max_concurrent"],
        "proxy": ["listen", "advertise", "trusted", "metrics", "region", "tcp", "methods", "max_transactions", "tls"],
        "proxy.tls": ["certificate", "key", "client_ca", "node_ca"],
        "proxy.tcp": ["idle_timeout", "first_message_timeout", "header_timeout", "max_connections", "max_connections_per_source"],
        "dispatch": ["policy", "probe", "failover", "spill_at"],
        "dispatch.probe": ["interval", "timeout", "down_after", "up_after"],
        "dispatch.failover": ["invite_timeout", "invite_timeout_min", "retry_on", "max_attempts", "hold_down"],
        "regions.*": ["prefer_for", "nodes"],
        "regions.*.nodes[]": ["name", "sip", "esl", "max_channels", "weight", "drain", "transport"],
    ]
}
