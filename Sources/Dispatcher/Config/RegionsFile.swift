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
    }
    struct Region: Decodable, Sendable {
        var prefer_for: [String]?
        var nodes: [Node]?
    }

    var proxy: Proxy?
    var dispatch: Dispatch?
    var regions: [String: Region]?

    /// Keys each mapping may hold, by path pattern (`*` = any region name, `[]` = a list item).
    static let knownKeys: [String: Set<String>] = [
        "": ["proxy", "dispatch", "regions"],
        "proxy": ["listen", "advertise", "trusted", "metrics", "region", "tcp", "methods", "max_transactions"],
        "proxy.tcp": ["idle_timeout", "first_message_timeout", "header_timeout", "max_connections", "max_connections_per_source"],
        "dispatch": ["policy", "probe", "failover", "spill_at"],
        "dispatch.probe": ["interval", "timeout", "down_after", "up_after"],
        "dispatch.failover": ["invite_timeout", "invite_timeout_min", "retry_on", "max_attempts", "hold_down"],
        "regions.*": ["prefer_for", "nodes"],
        "regions.*.nodes[]": ["name", "sip", "esl", "max_channels", "weight", "drain"],
    ]
}
