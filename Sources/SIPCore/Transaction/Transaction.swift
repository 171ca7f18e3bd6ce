/// A server transaction of either kind (RFC 3261 §17.2), so its driver holds one value, not
/// two optionals.
public enum ServerTransaction: Sendable, Hashable {
    case invite(InviteServerTransaction)
    case nonInvite(NonInviteServerTransaction)

    public init(isInvite: Bool, reliable: Bool, timers: TimerValues = .rfc3261) {
        self = isInvite ? .invite(.init(reliable: reliable, timers: timers)) : .nonInvite(.init(reliable: reliable, timers: timers))
    }

    public var isInvite: Bool {
        if case .invite = self { return true }
        return false
    }

    public var hasFinalResponse: Bool {
        switch self {
        case .invite(let t): t.hasFinalResponse
        case .nonInvite(let t): t.hasFinalResponse
        }
    }

    /// Whether the most recent response may be sent again; when false its bytes can be freed.
    public var retransmitsResponse: Bool {
        switch self {
        case .invite(let t): t.retransmitsResponse
        case .nonInvite(let t): t.retransmitsResponse
        }
    }

    public mutating func requestRetransmitted() -> TransactionActions {
        mutate({ $0.requestRetransmitted() }, { $0.requestRetransmitted() })
    }

    public mutating func responseSent(statusCode: Int) -> TransactionActions {
        mutate({ $0.responseSent(statusCode: statusCode) }, { $0.responseSent(statusCode: statusCode) })
    }

    /// The ACK for a non-2xx final response; a non-INVITE transaction has none.
    public mutating func ackReceived() -> TransactionActions {
        mutate({ $0.ackReceived() }, { _ in [] })
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        mutate({ $0.timerFired(timer) }, { $0.timerFired(timer) })
    }

    /// Runs an event on whichever machine this is and stores the machine back.
    @inline(__always)
    private mutating func mutate(
        _ invite: (inout InviteServerTransaction) -> TransactionActions,
        _ nonInvite: (inout NonInviteServerTransaction) -> TransactionActions
    ) -> TransactionActions {
        switch self {
        case .invite(var t):
            defer { self = .invite(t) }
            return invite(&t)
        case .nonInvite(var t):
            defer { self = .nonInvite(t) }
            return nonInvite(&t)
        }
    }
}

/// A client transaction of either kind (RFC 3261 §17.1).
public enum ClientTransaction: Sendable, Hashable {
    case invite(InviteClientTransaction)
    case nonInvite(NonInviteClientTransaction)

    public init(isInvite: Bool, reliable: Bool, timers: TimerValues = .rfc3261) {
        self = isInvite ? .invite(.init(reliable: reliable, timers: timers)) : .nonInvite(.init(reliable: reliable, timers: timers))
    }

    public var isInvite: Bool {
        if case .invite = self { return true }
        return false
    }

    /// Given up by the TU (see `InviteClientTransaction.State.abandoned`).
    public var isAbandoned: Bool {
        switch self {
        case .invite(let t): t.state == .abandoned
        case .nonInvite(let t): t.state == .abandoned
        }
    }

    public mutating func start() -> TransactionActions {
        mutate({ $0.start() }, { $0.start() })
    }

    public mutating func responseReceived(statusCode: Int) -> TransactionActions {
        mutate({ $0.responseReceived(statusCode: statusCode) }, { $0.responseReceived(statusCode: statusCode) })
    }

    public mutating func timerFired(_ timer: TransactionTimer) -> TransactionActions {
        mutate({ $0.timerFired(timer) }, { $0.timerFired(timer) })
    }

    public mutating func transportFailed() -> TransactionActions {
        mutate({ $0.transportFailed() }, { $0.transportFailed() })
    }

    public mutating func abandon() -> TransactionActions {
        mutate({ $0.abandon() }, { $0.abandon() })
    }

    /// Runs an event on whichever machine this is and stores the machine back.
    @inline(__always)
    private mutating func mutate(
        _ invite: (inout InviteClientTransaction) -> TransactionActions,
        _ nonInvite: (inout NonInviteClientTransaction) -> TransactionActions
    ) -> TransactionActions {
        switch self {
        case .invite(var t):
            defer { self = .invite(t) }
            return invite(&t)
        case .nonInvite(var t):
            defer { self = .nonInvite(t) }
            return nonInvite(&t)
        }
    }
}
