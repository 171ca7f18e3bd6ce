/// Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6).
public struct NonInviteClientTransaction: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case initial
        case trying(retransmitInterval: Duration)
        case proceeding
        case completed
        /// The TU gave the request up before a final response (it failed over to another node):
        /// nothing is retransmitted and late responses are absorbed.
        case abandoned
        case terminated
    }

    public private(set) var state: State = .initial
    public let reliable: Bool
    public let timers: TimerValues

    public init(reliable: Bool, timers: TimerValues = .rfc3261) {
        self.reliable = reliable
        self.timers = timers
    }

    public mutating func start() -> TransactionActions {
        guard case .initial = state else { return [] }
        state = .trying(retransmitInterval: timers.t1)
        var actions: TransactionActions = [.transmitRequest]
        if !reliable { actions.append(.startTimer(.e, timers.t1)) }
        actions.append(.startTimer(.f, timers.transactionTimeout))
        return actions
    }

    public mutating func responseReceived(statusCode: Int) -> TransactionActions {
        switch state {
        case .trying, .proceeding:
            if statusCode < 200 {
                state = .proceeding
                return [.deliverResponse]
            }
            state = .completed
            var actions: TransactionActions = []
            if !reliable { actions.append(.cancelTimer(.e)) }
            actions += [.cancelTimer(.f), .deliverResponse]
            if reliable {
                state = .terminated
                actions.append(.terminate)
            } else {
                actions.append(.startTimer(.k, timers.t4))
            }
            return actions
        case .initial, .completed, .abandoned, .terminated:
            return []
        }
    }

    /// The TU gives the request up: Timers E and F stop (see `State.abandoned`).
    public mutating func abandon() -> TransactionActions {
        switch state {
        case .initial:
            state = .abandoned
            return []
        case .trying, .proceeding:
            state = .abandoned
            return reliable ? [.cancelTimer(.f)] : [.cancelTimer(.e), .cancelTimer(.f)]
        case .completed, .abandoned, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        switch (state, timer) {
        case (.trying(let interval), .e):
            let next = min(interval * 2, timers.t2)
            state = .trying(retransmitInterval: next)
            return [.transmitRequest, .startTimer(.e, next)]
        case (.proceeding, .e):
            return [.transmitRequest, .startTimer(.e, timers.t2)]
        case (.trying, .f), (.proceeding, .f):
            state = .terminated
            return [.cancelTimer(.e), .timedOut, .terminate]
        case (.completed, .k):
            state = .terminated
            return [.terminate]
        default:
            return []
        }
    }

    public mutating func transportFailed() -> TransactionActions {
        switch state {
        case .trying, .proceeding:
            state = .terminated
            return [.cancelTimer(.e), .cancelTimer(.f), .timedOut, .terminate]
        default:
            return []
        }
    }
}
