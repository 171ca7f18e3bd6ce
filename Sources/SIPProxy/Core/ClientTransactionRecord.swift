import Dispatcher
import NIOCore
import SIPCore

/// One branch the proxy sent: its client transaction, the bytes it carries, the node, and the
/// request it serves.
final class ClientTransactionRecord {
    let key: ClientTransactionKey
    var machine: ClientTransaction
    /// The forwarded request, kept for retransmission (Timers A and E); released once a final
    /// response arrived (an Accepted INVITE branch lives on for 64·T1 without it).
    private(set) var request: ByteBuffer
    let destination: SIPEndpoint
    let node: Node?
    /// The request this branch serves; its context knows this branch as `attempt`.
    let server: ServerTransactionRecord
    let attempt: Int
    /// Our Via line (with CRLF), reused in the ACK and CANCEL for this branch (§17.1.1.3, §9.1);
    /// released with the request (the ACK is built before, and a branch with a final response
    /// is never CANCELled).
    private(set) var viaLine: String
    var generations = TimerGenerations()
    var cancelSent = false
    /// The ACK for this branch's non-2xx final response, built once: retransmissions of that
    /// response are ACKed with it (§17.1.1.2) after the request it was built from is released.
    var ack: ByteBuffer?

    init(
        key: ClientTransactionKey, isInvite: Bool, request: ByteBuffer, destination: SIPEndpoint, node: Node?, server: ServerTransactionRecord,
        attempt: Int, viaLine: String, timers: TimerValues
    ) {
        self.key = key
        self.request = request
        self.destination = destination
        self.node = node
        self.server = server
        self.attempt = attempt
        self.viaLine = viaLine
        machine = ClientTransaction(isInvite: isInvite, reliable: destination.transport.isReliable, timers: timers)
    }

    var isInvite: Bool { machine.isInvite }

    /// Given up (no provisional in time, Timer C, its node lost): kept only to answer late
    /// responses (CANCEL a late 1xx, ACK a late failure).
    var abandoned: Bool { machine.isAbandoned }

    /// Nothing will be retransmitted or built from this branch any more: free the bytes.
    func releaseRequest() {
        request = ByteBuffer()
        viaLine = ""
    }
}
