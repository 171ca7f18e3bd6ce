import NIOCore
import SIPCore

/// A request the proxy received and must answer: its server transaction and where responses go.
final class ServerTransactionRecord {
    let key: ServerTransactionKey
    var invite: InviteServerTransaction?
    var nonInvite: NonInviteServerTransaction?
    let request: SIPMessage
    /// Where responses go (RFC 3261 §18.2.2): the connection, or the source address and Via port.
    let responseDestination: SIPEndpoint
    var lastResponse: ByteBuffer?
    var context: ResponseContext?
    var generations = TimerGenerations()

    init(key: ServerTransactionKey, request: SIPMessage, responseDestination: SIPEndpoint, timers: TimerValues) {
        self.key = key
        self.request = request
        self.responseDestination = responseDestination
        let reliable = responseDestination.transport.isReliable
        if key.isInvite {
            invite = InviteServerTransaction(reliable: reliable, timers: timers)
        } else {
            nonInvite = NonInviteServerTransaction(reliable: reliable, timers: timers)
        }
    }

    var hasFinalResponse: Bool { invite?.hasFinalResponse ?? nonInvite?.hasFinalResponse ?? true }

    func responseSent(statusCode: Int) -> [TransactionAction] {
        if invite != nil { return invite!.responseSent(statusCode: statusCode) }
        return nonInvite!.responseSent(statusCode: statusCode)
    }

    func requestRetransmitted() -> [TransactionAction] {
        if invite != nil { return invite!.requestRetransmitted() }
        return nonInvite!.requestRetransmitted()
    }

    func timerFired(_ timer: TransactionTimer) -> [TransactionAction] {
        if invite != nil { return invite!.timerFired(timer) }
        return nonInvite!.timerFired(timer)
    }
}
