/// INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with RFC 6026's Accepted state.
public struct InviteServerTransaction: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case proceeding
        /// RFC 6026: a 2xx was sent; absorb INVITE retransmits until Timer L.
        case accepted
        case completed(retransmitInterval: Duration)
        case confirmed
        case terminated
    }

    public private(set) var state: State = .proceeding
    public let reliable: Bool
    public let timers: TimerValues

    public init(reliable: Bool, timers: TimerValues = .rfc3261) {
        self.reliable = reliable
        self.timers = timers
    }

    /// The same INVITE arrived again.
    public mutating func requestRetransmitted() -> TransactionActions {
        switch state {
        case .proceeding, .completed: [.transmitResponse]
        default: []
        }
    }

    /// The TU sends a response (the caller stores its bytes as "the most recent response").
    public mutating func responseSent(statusCode: Int) -> TransactionActions {
        guard case .proceeding = state else {
            // After a final response only a 2xx still passes, in any state: a proxy forwards
            // every 2xx to an INVITE (RFC 3261 §16.7 step 10; RFC 6026 §8.5), even after its own
            // 487 or 408 or another branch's 2xx, since each creates a dialog the caller must ACK.
            return (200..<300).contains(statusCode) ? [.transmitResponse] : []
        }
        switch statusCode {
        case 100..<200:
            return [.transmitResponse]
        case 200..<300:
            state = .accepted
            return [.transmitResponse, .startTimer(.l, timers.transactionTimeout)]
        default:
            state = .completed(retransmitInterval: timers.t1)
            var actions: TransactionActions = [.transmitResponse]
            if !reliable { actions.append(.startTimer(.g, timers.t1)) }
            actions.append(.startTimer(.h, timers.transactionTimeout))
            return actions
        }
    }

    /// The ACK for a non-2xx final response (same branch as the INVITE).
    public mutating func ackReceived() -> TransactionActions {
        guard case .completed = state else { return [] }
        state = .confirmed
        var actions: TransactionActions = []
        if !reliable { actions.append(.cancelTimer(.g)) }
        actions.append(.cancelTimer(.h))
        if reliable {
            state = .terminated
            actions.append(.terminate)
        } else {
            actions.append(.startTimer(.i, timers.t4))
        }
        return actions
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        switch (state, timer) {
        case (.completed(let interval), .g):
            let next = min(interval * 2, timers.t2)
            state = .completed(retransmitInterval: next)
            return [.transmitResponse, .startTimer(.g, next)]
        case (.completed, .h):
            state = .terminated
            return [.cancelTimer(.g), .ackNotReceived, .terminate]
        case (.confirmed, .i), (.accepted, .l):
            state = .terminated
            return [.terminate]
        default:
            return []
        }
    }

    /// Whether a final response was already sent.
    public var hasFinalResponse: Bool {
        if case .proceeding = state { return false }
        return true
    }

    /// Whether the most recent response may be sent again (a retransmitted INVITE, Timer G).
    /// In Accepted the transaction only absorbs retransmissions and each later 2xx brings its
    /// own bytes, so its owner may free the last response's.
    public var retransmitsResponse: Bool {
        switch state {
        case .proceeding, .completed: true
        case .accepted, .confirmed, .terminated: false
        }
    }
}
