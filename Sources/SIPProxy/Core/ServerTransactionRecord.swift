import NIOCore
import SIPCore

/// A request the proxy received and must answer: its server transaction, where responses go,
/// and the request context deciding what to do with its branches.
final class ServerTransactionRecord {
    let key: ServerTransactionKey
    var machine: ServerTransaction
    let request: SIPMessage
    /// Where responses go (RFC 3261 §18.2.2): the connection, or the source address and Via port.
    let responseDestination: SIPEndpoint
    var lastResponse: ByteBuffer?
    var context: RequestContext
    var generations = TimerGenerations()

    init(key: ServerTransactionKey, request: SIPMessage, responseDestination: SIPEndpoint, context: RequestContext, timers: TimerValues) {
        self.key = key
        self.request = request
        self.responseDestination = responseDestination
        self.context = context
        machine = ServerTransaction(isInvite: key.isInvite, reliable: responseDestination.transport.isReliable, timers: timers)
    }
}
