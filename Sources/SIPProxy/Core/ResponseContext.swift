import Dispatcher
import SIPCore

/// RFC 3261 §16 response context: one per proxied request, linking the server transaction to
/// its branches. Branches are tried one after another (serial forking, §16.7) down `candidates`.
final class ResponseContext {
    let server: ServerTransactionRecord
    let request: SIPMessage
    /// A new request dispatched to nodes (failover applies); false for in-dialog requests.
    let isDispatch: Bool
    /// A dispatched INVITE: it counts on its node's load from INVITE to BYE.
    let countsLoad: Bool
    /// How many leading Route elements the proxy removed (its own), or all for a dispatch.
    let removedRouteCount: Int
    let recordRoute: Bool
    var candidates: [Node]
    var nextCandidate = 0
    var current: ClientTransactionRecord?
    var cancelled = false
    /// A final response went upstream: nothing more may be sent but 2xx retransmissions.
    var finished = false
    /// Counted against its trunk's `max_concurrent` until a failed final response or its BYE.
    var countsOnTrunk = false

    init(server: ServerTransactionRecord, request: SIPMessage, isDispatch: Bool, removedRouteCount: Int, recordRoute: Bool, candidates: [Node]) {
        self.server = server
        self.request = request
        self.isDispatch = isDispatch
        self.countsLoad = isDispatch && request.method == .invite
        self.removedRouteCount = removedRouteCount
        self.recordRoute = recordRoute
        self.candidates = candidates
    }
}
