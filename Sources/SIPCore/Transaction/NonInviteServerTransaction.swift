/// Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8).
public struct NonInviteServerTransaction: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case trying, proceeding, completed, terminated
    }

    public private(set) var state: State = .trying
    public let reliable: Bool
    public let timers: TimerValues

    public init(reliable: Bool, timers: TimerValues = .rfc3261) {
        self.reliable = reliable
        self.timers = timers
    }

    public mutating func requestRetransmitted() -> TransactionActions {
        switch state {
        case .proceeding, .completed: [.transmitResponse]
        case .trying, .terminated: []
        }
    }

    public mutating func responseSent(statusCode: Int) -> TransactionActions {
        switch state {
        case .trying, .proceeding:
            if statusCode < 200 {
                state = .proceeding
                return [.transmitResponse]
            }
            if reliable {
                state = .terminated
                return [.transmitResponse, .terminate]
            }
            state = .completed
            return [.transmitResponse, .startTimer(.j, timers.transactionTimeout)]
        case .completed, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        guard case .completed = state, timer == .j else { return [] }
        state = .terminated
        return [.terminate]
    }

    public var hasFinalResponse: Bool {
        switch state {
        case .completed, .terminated: true
        default: false
        }
    }

    /// Whether the most recent response may be sent again (a retransmitted request).
    public var retransmitsResponse: Bool {
        switch state {
        case .proceeding, .completed: true
        case .trying, .terminated: false
        }
    }
}
