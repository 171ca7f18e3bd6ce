/// INVITE client transaction, RFC 3261 §17.1.1 (Figure 5).
public struct InviteClientTransaction: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case initial
        /// Timer A's current interval is carried so each retransmit doubles it.
        case calling(retransmitInterval: Duration)
        case proceeding
        case completed
        /// RFC 6026 §7.2: after a 2xx, retransmissions of it (and 2xx from other forks) are
        /// still delivered to the TU until Timer M; anything else is absorbed.
        case accepted
        /// The TU gave the branch up before a final response (RFC 3261 §16.7 step 2... §16.8:
        /// no provisional in time, Timer C, its node lost). Nothing is retransmitted; a late
        /// final response is still ACKed (§17.1.1.3) and a late 1xx or 2xx is delivered, so the
        /// TU can CANCEL or report it. The TU forgets the transaction after 64·T1.
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

    /// The TU hands the INVITE to the transaction: send it, arm A (unreliable) and B.
    public mutating func start() -> TransactionActions {
        guard case .initial = state else { return [] }
        state = .calling(retransmitInterval: timers.t1)
        var actions: TransactionActions = [.transmitRequest]
        if !reliable { actions.append(.startTimer(.a, timers.t1)) }
        actions.append(.startTimer(.b, timers.transactionTimeout))
        return actions
    }

    public mutating func responseReceived(statusCode: Int) -> TransactionActions {
        switch state {
        case .calling, .proceeding:
            let wasCalling: Bool = { if case .calling = state { return true } else { return false } }()
            var actions: TransactionActions = []
            if wasCalling {
                if !reliable { actions.append(.cancelTimer(.a)) }
                actions.append(.cancelTimer(.b))
            }
            switch statusCode {
            case 100..<200:
                state = .proceeding
                actions.append(.deliverResponse)
            case 200..<300:
                // RFC 6026 §7.2 (updating §17.1.1.2): Accepted, so 2xx retransmissions still
                // match this transaction; the TU (or the UAC core) ACKs them end to end.
                state = .accepted
                actions += [.deliverResponse, .startTimer(.m, timers.transactionTimeout)]
            default:
                state = .completed
                actions += [.sendAck, .deliverResponse]
                if reliable {
                    state = .terminated
                    actions.append(.terminate)
                } else {
                    actions.append(.startTimer(.d, .seconds(32)))
                }
            }
            return actions
        case .completed:
            // A retransmitted final response: ACK it again, do not pass it up (§17.1.1.2).
            return statusCode >= 300 ? [.sendAck] : []
        case .accepted:
            // RFC 6026 §7.2: a 2xx goes to the TU; a 1xx or a non-2xx final is discarded.
            return (200..<300).contains(statusCode) ? [.deliverResponse] : []
        case .abandoned:
            return statusCode >= 300 ? [.sendAck] : [.deliverResponse]
        case .initial, .terminated:
            return []
        }
    }

    /// The TU gives the branch up: retransmissions and Timer B stop (see `State.abandoned`).
    /// Only a branch without a final response can be given up.
    public mutating func abandon() -> TransactionActions {
        switch state {
        case .initial, .proceeding:
            state = .abandoned
            return []
        case .calling:
            state = .abandoned
            return reliable ? [.cancelTimer(.b)] : [.cancelTimer(.a), .cancelTimer(.b)]
        case .completed, .accepted, .abandoned, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        switch (state, timer) {
        case (.calling(let interval), .a):
            let next = interval * 2
            state = .calling(retransmitInterval: next)
            return [.transmitRequest, .startTimer(.a, next)]
        case (.calling, .b):
            state = .terminated
            return [.cancelTimer(.a), .timedOut, .terminate]
        case (.completed, .d), (.accepted, .m):
            state = .terminated
            return [.terminate]
        default:
            return []
        }
    }

    /// A send failed (TCP refused or reset, ICMP unreachable): §17.1.4 says inform the TU at once.
    public mutating func transportFailed() -> TransactionActions {
        switch state {
        case .calling, .proceeding:
            state = .terminated
            return [.cancelTimer(.a), .cancelTimer(.b), .timedOut, .terminate]
        default:
            return []
        }
    }
}
