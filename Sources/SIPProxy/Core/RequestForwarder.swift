import Dispatcher
import NIOCore
import SIPCore

/// Builds the bytes of a forwarded request (RFC 3261 §16.6) by splicing the original:
/// Route elements removed, Max-Forwards decremented, Record-Route and Via inserted, and the
/// client's Via completed with `received`/`rport` (§18.2.1, RFC 3581).
enum RequestForwarder {
    struct Plan {
        var branch: String
        var outbound: SIPEndpoint.Transport
        var inbound: SIPEndpoint.Transport
        /// Leading Route elements to remove; `Int.max` removes every Route header.
        var removeRoutes: Int
        var recordRoute: Bool
    }

    /// The Via line this proxy adds for `plan`, CRLF included.
    static func viaLine(_ plan: Plan, _ advertised: AdvertisedForms) -> String {
        advertised.viaPrefix(plan.outbound) + plan.branch + "\r\n"
    }

    static func forward(_ msg: SIPMessage, source: SIPEndpoint, plan: Plan, viaLine: String, advertised: AdvertisedForms) -> ByteBuffer {
        var editor = MessageEditor()
        // §16.4 / §16.6 step 6: Route elements.
        for r in msg.routeRemovalRanges(count: min(plan.removeRoutes, msg.routes.count)) { editor.delete(r) }
        // §16.6 step 3: Max-Forwards.
        var headerInsert = ""
        if let mf = msg.maxForwards, let range = msg.maxForwardsValueRange {
            editor.replace(range, with: String(mf - 1))
        } else {
            headerInsert += "Max-Forwards: 70\r\n"
        }
        // §18.3: a stream needs Content-Length.
        if !msg.hasContentLength && plan.outbound.isReliable {
            headerInsert += "Content-Length: \(msg.bodyLength)\r\n"
        }
        // §16.6 step 4: Record-Route, topmost; two when the transport changes (as Kamailio's double RR).
        if plan.recordRoute {
            var rr = advertised.recordRoute(plan.outbound)
            if plan.inbound != plan.outbound { rr += advertised.recordRoute(plan.inbound) }
            if let first = msg.firstRecordRouteLineStart {
                editor.insert(rr, at: first)
            } else {
                headerInsert = rr + headerInsert
            }
        }
        // §16.6 step 8: our Via on top.
        editor.insert(headerInsert + viaLine, at: msg.firstViaLineStart)
        addReceived(msg, source: source, editor: &editor)
        return editor.apply(to: msg)
    }

    /// RFC 3261 §18.2.1 `received` and RFC 3581 `rport` on the client's top Via, so responses
    /// (and stateless 2xx retransmissions) find their way back through NAT.
    static func addReceived(_ msg: SIPMessage, source: SIPEndpoint, editor: inout MessageEditor) {
        let via = msg.topVia
        guard via.received == nil else { return }
        let rportEnd = msg.topViaEmptyRPortEnd
        // Formatting the source address costs an inet_ntop: skip it when the Via already names
        // the source (the common case on a trunk) and no rport was asked for.
        if rportEnd == nil, let ip = source.ipv4, IPv4Network.parseIPv4(via.host) == ip { return }
        let sourceIP = source.address.ipAddress ?? via.host
        if let rportEnd {
            editor.insert("=\(source.address.port ?? 0)", at: rportEnd)
        }
        if sourceIP != via.host || rportEnd != nil {
            editor.insert(";received=\(sourceIP)", at: msg.topViaRange.upperBound)
        }
    }
}
