/// RFC 3261 §17 timers. Transaction state machines never read a clock: they ask for a timer with
/// `.startTimer` and are told when it fired, so tests move time by calling `timerFired`.
public enum TransactionTimer: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// INVITE client: request retransmit (UDP). B: INVITE client timeout. D: wait for response retransmits.
    case a, b, d
    /// INVITE client (RFC 6026 §7.2): M, how long the Accepted state lets 2xx retransmissions through.
    case m
    /// non-INVITE client: E retransmit (UDP), F timeout, K wait for response retransmits.
    case e, f, k
    /// INVITE server: G response retransmit (UDP), H wait for ACK, I absorb ACK retransmits, L (RFC 6026) absorb INVITE retransmits after 2xx.
    case g, h, i, l
    /// non-INVITE server: J absorb request retransmits.
    case j

    public var description: String { "Timer \(String(describing: self).uppercased())" }
}

/// The RFC 3261 timer base values (Table 4).
public struct TimerValues: Sendable, Hashable {
    /// RTT estimate, 500 ms by default.
    public let t1: Duration
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    public let t2: Duration
    /// Maximum time a message stays in the network, 5 s.
    public let t4: Duration

    /// 64·T1: Timers B, F, H, J, L, M (computed once: Duration arithmetic is 128-bit).
    public let transactionTimeout: Duration

    public init(t1: Duration = .milliseconds(500), t2: Duration = .seconds(4), t4: Duration = .seconds(5)) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.transactionTimeout = t1 * 64
    }

    public static let rfc3261 = TimerValues()
}

/// What a transaction state machine asks its driver to do. The driver performs the actions in
/// order; a machine never performs I/O itself.
public enum TransactionAction: Sendable, Hashable {
    /// Send (or resend) the request this client transaction carries.
    case transmitRequest
    /// Send (or resend) the most recent response of this server transaction.
    case transmitResponse
    /// INVITE client: send the ACK for the non-2xx final response just received (§17.1.1.3).
    case sendAck
    /// Pass the response just received to the transaction user (the proxy core).
    case deliverResponse
    /// The transaction timed out (Timer B or F): the TU treats it as a 408 (§16.7 step 2... §16.8).
    case timedOut
    /// INVITE server: the final non-2xx response was never acknowledged (Timer H).
    case ackNotReceived
    case startTimer(TransactionTimer, Duration)
    case cancelTimer(TransactionTimer)
    /// The transaction is over: forget it.
    case terminate
}
