import Dispatcher
import NIOCore
import SIPCore

/// One branch the proxy sent: its client transaction, the bytes it carries and the node.
final class ClientTransactionRecord {
    let key: ClientTransactionKey
    var invite: InviteClientTransaction?
    var nonInvite: NonInviteClientTransaction?
    /// The forwarded request, kept for retransmission (Timers A and E); released once a final
    /// response arrived (an Accepted INVITE branch lives on for 64·T1 without it).
    private(set) var request: ByteBuffer
    let destination: SIPEndpoint
    let node: Node?
    var context: ResponseContext?
    /// Our Via line (with CRLF), reused in the ACK and CANCEL for this branch (§17.1.1.3, §9.1).
    let viaLine: String
    var generations = TimerGenerations()

    var gotProvisional = false
    /// Given up on (no provisional in time, or Timer C): late responses are ACKed or CANCELled.
    var abandoned = false
    /// The caller cancelled before the node sent a provisional response: CANCEL once one arrives (§9.1).
    var cancelPending = false
    var cancelSent = false

    init(key: ClientTransactionKey, isInvite: Bool, request: ByteBuffer, destination: SIPEndpoint, node: Node?, viaLine: String, timers: TimerValues) {
        self.key = key
        self.request = request
        self.destination = destination
        self.node = node
        self.viaLine = viaLine
        let reliable = destination.transport.isReliable
        if isInvite {
            invite = InviteClientTransaction(reliable: reliable, timers: timers)
        } else {
            nonInvite = NonInviteClientTransaction(reliable: reliable, timers: timers)
        }
    }

    var isInvite: Bool { invite != nil }

    /// Nothing will be retransmitted any more: free the bytes.
    func releaseRequest() {
        request = ByteBuffer()
    }

    func start() -> [TransactionAction] {
        if invite != nil { return invite!.start() }
        return nonInvite!.start()
    }

    func responseReceived(statusCode: Int) -> [TransactionAction] {
        if invite != nil { return invite!.responseReceived(statusCode: statusCode) }
        return nonInvite!.responseReceived(statusCode: statusCode)
    }

    func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        if invite != nil { return invite!.timerFired(timer) }
        return nonInvite!.timerFired(timer)
    }

    func transportFailed() -> [TransactionAction] {
        if invite != nil { return invite!.transportFailed() }
        return nonInvite!.transportFailed()
    }
}
