import Metrics

/// Counters of the transport layer, made once per label value (swift-metrics handles are cheap to
/// increment, not to create). Names are stable: alerts depend on them.
final class TransportMetrics {
    private var socketErrors: [String: Counter] = [:]
    private var refused: [String: Counter] = [:]
    private var tcpRefused: [String: Counter] = [:]
    private var tcpClosed: [String: Counter] = [:]
    private var rebinds: [String: Counter] = [:]
    private var tlsRefused: [String: Counter] = [:]
    let tlsHandshakesOK = Counter(label: "sip_tls_handshakes_total", dimensions: [("result", "ok")])
    let tlsHandshakesFailed = Counter(label: "sip_tls_handshakes_total", dimensions: [("result", "failed")])
    /// Seconds until the proxy's TLS certificate expires (alert well before 0).
    let tlsCertificateExpiry = Gauge(label: "sip_tls_certificate_expiry_seconds")
    let listenersDown = Gauge(label: "sip_listeners_down")
    let tcpConnections = Gauge(label: "sip_tcp_connections")

    /// `sip_socket_errors_total{transport,errno}`: a send or receive the kernel refused.
    func socketError(_ transport: String, _ errno: String) {
        counter(&socketErrors, transport + "|" + errno, "sip_socket_errors_total", [("transport", transport), ("errno", errno)]).increment()
    }

    /// `sip_sends_refused_total{transport,reason}`: a destination we never send to.
    func sendRefused(_ transport: String, _ reason: String) {
        counter(&refused, transport + "|" + reason, "sip_sends_refused_total", [("transport", transport), ("reason", reason)]).increment()
    }

    /// `sip_tcp_connections_refused_total{reason}`: limit or per-source-limit.
    func tcpRefused(_ reason: String) {
        counter(&tcpRefused, reason, "sip_tcp_connections_refused_total", [("reason", reason)]).increment()
    }

    /// `sip_tcp_connections_closed_total{reason}`: header-timeout, first-message-timeout, idle, framing.
    func tcpClosed(_ reason: String) {
        counter(&tcpClosed, reason, "sip_tcp_connections_closed_total", [("reason", reason)]).increment()
    }

    /// `sip_tls_connections_refused_total{reason}`: no-certificate or subject (a trunk's
    /// `tls_subject` not matched after the handshake).
    func tlsRefused(_ reason: String) {
        counter(&tlsRefused, reason, "sip_tls_connections_refused_total", [("reason", reason)]).increment()
    }

    /// `sip_listener_rebinds_total{listen}`: a listener that closed and was bound again.
    func rebind(_ listen: String) {
        counter(&rebinds, listen, "sip_listener_rebinds_total", [("listen", listen)]).increment()
    }

    private func counter(_ table: inout [String: Counter], _ key: String, _ label: String, _ dimensions: [(String, String)]) -> Counter {
        if let c = table[key] { return c }
        let c = Counter(label: label, dimensions: dimensions)
        table[key] = c
        return c
    }
}
