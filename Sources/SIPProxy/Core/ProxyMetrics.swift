import Metrics

/// The proxy's counters, created once (swift-metrics handles are cheap to increment, not to make).
/// Names are stable: dashboards and alerts depend on them.
final class ProxyMetrics {
    let messagesReceived = Counter(label: "sip_messages_received_total")
    let requestsReceived = Counter(label: "sip_requests_received_total")
    let responsesReceived = Counter(label: "sip_responses_received_total")
    let malformedAnswered = Counter(label: "sip_malformed_total", dimensions: [("action", "answered")])
    let malformedDropped = Counter(label: "sip_malformed_total", dimensions: [("action", "dropped")])
    let retransmissionsAbsorbed = Counter(label: "sip_retransmissions_absorbed_total")
    let responsesDropped = Counter(label: "sip_responses_dropped_total")
    let invitesNoNode = Counter(label: "sip_invites_rejected_no_node_total")
    /// New requests answered 503 because the transaction table was full.
    let transactionTableFull = Counter(label: "sip_requests_rejected_table_full_total")
    let cancels = Counter(label: "sip_cancels_total")
    /// A code path the proxy's own invariants rule out was reached (logged as "internal:"). 0 always.
    let internalErrors = Counter(label: "sip_internal_errors_total")
    /// Messages dropped unparsed because their source is banned for flooding.
    let floodDropped = Counter(label: "sip_flood_dropped_total")
    let floodBans = Counter(label: "sip_flood_bans_total")
    let bannedSources = Gauge(label: "sip_flood_banned_sources")
    let scannerDropped = Counter(label: "sip_scanner_dropped_total")
    let unknownRejected = Counter(label: "sip_unknown_source_total", dimensions: [("action", "rejected")])
    let unknownDropped = Counter(label: "sip_unknown_source_total", dimensions: [("action", "dropped")])
    private var perTrunk: [String: (calls: Counter, active: Gauge)] = [:]
    private var trunkRefusals: [String: Counter] = [:]
    let localReplies = Counter(label: "sip_local_replies_total")
    /// Calls that rang on a node the probes then declared down, moved to the next node.
    let ringingFailedOver = Counter(label: "sip_ringing_calls_failed_over_total")
    let serverTransactions = Gauge(label: "sip_server_transactions")
    let clientTransactions = Gauge(label: "sip_client_transactions")
    private var perNode: [String: (routed: Counter, failed: Counter)] = [:]
    private var probes: [String: Counter] = [:]
    private var stray: [String: Counter] = [:]
    private var nodeStates: [String: Gauge] = [:]
    private var nodeChannels: [String: Gauge] = [:]
    private var nodeRTT: [String: Gauge] = [:]

    /// `sip_probes_total{node, result}`: result is sent, ok or failed.
    func probe(_ node: String, _ result: String) {
        let key = node + "|" + result
        if let c = probes[key] { return c.increment() }
        let c = Counter(label: "sip_probes_total", dimensions: [("node", node), ("result", result)])
        probes[key] = c
        c.increment()
    }

    /// `sip_stray_responses_total{reason}`: responses dropped because no transaction sent them.
    func strayResponse(_ reason: String) {
        if let c = stray[reason] { return c.increment() }
        let c = Counter(label: "sip_stray_responses_total", dimensions: [("reason", reason)])
        stray[reason] = c
        c.increment()
    }

    /// `sip_node_active{node}`: 1 while the node takes calls.
    func nodeState(_ node: String, active: Bool) {
        let g = nodeStates[node] ?? Gauge(label: "sip_node_active", dimensions: [("node", node)])
        nodeStates[node] = g
        g.record(active ? 1 : 0)
    }

    func rtt(_ node: String, _ rtt: Duration) {
        let g = nodeRTT[node] ?? Gauge(label: "sip_node_rtt_seconds", dimensions: [("node", node)])
        nodeRTT[node] = g
        g.record(Double(rtt.components.seconds) + Double(rtt.components.attoseconds) / 1e18)
    }

    func channels(_ node: String, _ count: Int) {
        let g = nodeChannels[node] ?? Gauge(label: "sip_node_channels", dimensions: [("node", node)])
        nodeChannels[node] = g
        g.record(count)
    }

    /// `sip_trunk_calls_total{trunk}` and `sip_trunk_active_calls{trunk}`.
    func trunkCall(_ trunk: String, active: Int) {
        let m =
            perTrunk[trunk]
            ?? (Counter(label: "sip_trunk_calls_total", dimensions: [("trunk", trunk)]), Gauge(label: "sip_trunk_active_calls", dimensions: [("trunk", trunk)]))
        perTrunk[trunk] = m
        m.calls.increment()
        m.active.record(active)
    }

    /// `sip_trunk_refused_total{trunk, limit}`: limit is rate or concurrency.
    func trunkRefused(_ trunk: String, _ limit: String) {
        let key = trunk + "|" + limit
        if let c = trunkRefusals[key] { return c.increment() }
        let c = Counter(label: "sip_trunk_refused_total", dimensions: [("trunk", trunk), ("limit", limit)])
        trunkRefusals[key] = c
        c.increment()
    }

    func routed(_ node: String) {
        counters(node).routed.increment()
    }

    func failedOver(_ node: String) {
        counters(node).failed.increment()
    }

    private func counters(_ node: String) -> (routed: Counter, failed: Counter) {
        if let c = perNode[node] { return c }
        let c = (
            Counter(label: "sip_invites_routed_total", dimensions: [("node", node)]),
            Counter(label: "sip_node_failures_total", dimensions: [("node", node)])
        )
        perNode[node] = c
        return c
    }
}
