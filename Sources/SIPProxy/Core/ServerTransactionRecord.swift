import NIOCore
import SIPCore

/// A request the proxy received and must answer: its server transaction, where responses go,
/// and the request context deciding what to do with its branches.
final class ServerTransactionRecord {
    let key: ServerTransactionKey
    var machine: ServerTransaction
    /// The request, until its final response has left and nothing can need it any more
    /// (`releaseRequestIfDone`). A finished transaction lives on for 32 s (Timers J and L) only
    /// to absorb retransmissions, which its key and last response answer: keeping the parsed
    /// request as well was most of the proxy's memory per call.
    private(set) var request: SIPMessage?
    /// The request's Call-ID once the request is released, kept only where a log may still name
    /// it: an INVITE's failure that waits for its ACK (Timer H). Elsewhere it would cost an
    /// allocation a transaction for a line never written.
    private var releasedCallID = ""
    /// Where responses go (RFC 3261 §18.2.2): the connection, or the source address and Via port.
    let responseDestination: SIPEndpoint
    /// The most recent response, while the transaction may send it again (see
    /// `ServerTransaction.retransmitsResponse`).
    var lastResponse: ByteBuffer?
    var context: RequestContext
    var generations = TimerGenerations()
    /// INVITE branches given up (no provisional in time, Timer C, their node down). A late answer
    /// on one is CANCELled or ACKed with lines of this request, so it is kept while any exists.
    var abandonedBranches = 0

    init(key: ServerTransactionKey, request: SIPMessage, responseDestination: SIPEndpoint, context: RequestContext, timers: TimerValues) {
        self.key = key
        self.request = request
        self.responseDestination = responseDestination
        self.context = context
        machine = ServerTransaction(isInvite: key.isInvite, reliable: responseDestination.transport.isReliable, timers: timers)
    }

    /// For logs: empty for a finished transaction that has no more to log.
    var callID: String { request?.callID ?? releasedCallID }

    /// Frees what the transaction no longer needs after an event: the last response once it
    /// cannot be resent, the request once the final response left and no branch may need it.
    /// A branch that got its final response ACKs retransmissions of it from its own copy of the
    /// ACK (`ClientTransactionRecord.ack`); a branch still waiting is current, and the context
    /// has no current branch once a final response left.
    func releaseWhatIsDone() {
        if lastResponse != nil, !machine.retransmitsResponse { lastResponse = nil }
        if let request, machine.hasFinalResponse, abandonedBranches == 0 {
            if key.isInvite, machine.retransmitsResponse { releasedCallID = request.callID }
            self.request = nil
        }
    }
}
