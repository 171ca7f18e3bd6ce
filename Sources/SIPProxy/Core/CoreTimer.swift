import SIPCore

/// Timers the proxy core runs: the RFC 3261 transaction timers plus its own per-branch ones.
enum CoreTimer: Hashable {
    case transaction(TransactionTimer)
    /// No provisional response from the node within `failover.inviteTimeout`: try the next node.
    case inviteTimeout
    /// RFC 3261 §16.6 step 11 / §16.8: an INVITE branch rang too long.
    case timerC
    /// Forget an abandoned branch once late responses can no longer arrive.
    case cleanup

    static let slotCount = TransactionTimer.allCases.count + 3

    var index: Int {
        switch self {
        case .transaction(let t): t.rawValue
        case .inviteTimeout: TransactionTimer.allCases.count
        case .timerC: TransactionTimer.allCases.count + 1
        case .cleanup: TransactionTimer.allCases.count + 2
        }
    }
}

/// What sits in the timer wheel: the record, which timer, and the generation it was armed with.
/// A timer is cancelled by bumping the record's generation, so the stale entry does nothing.
/// The record is held weakly: a cancelled Timer C (3 minutes) must not keep a finished call's
/// messages alive (measured: 6.7 KB per call, growing without bound under load, before this).
enum TimerPayload {
    case server(Weak<ServerTransactionRecord>, CoreTimer, UInt32)
    case client(Weak<ClientTransactionRecord>, CoreTimer, UInt32)
}

/// A weak reference, so an enum payload can hold one.
struct Weak<Object: AnyObject> {
    weak var object: Object?

    init(_ object: Object) { self.object = object }
}

/// Generation counters, one per `CoreTimer`, kept inline in the record (an array was one more
/// allocation for every transaction).
struct TimerGenerations {
    private var values: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Two 32-bit counters a word.
    static let capacity = 16

    init() {
        precondition(CoreTimer.slotCount <= Self.capacity, "TimerGenerations holds \(Self.capacity) timers")
    }

    subscript(_ timer: CoreTimer) -> UInt32 {
        withUnsafeBytes(of: values) { $0.load(fromByteOffset: timer.index * 4, as: UInt32.self) }
    }

    /// Invalidates any armed instance of `timer` and returns the new generation.
    mutating func bump(_ timer: CoreTimer) -> UInt32 {
        withUnsafeMutableBytes(of: &values) { raw in
            let next = raw.load(fromByteOffset: timer.index * 4, as: UInt32.self) &+ 1
            raw.storeBytes(of: next, toByteOffset: timer.index * 4, as: UInt32.self)
            return next
        }
    }
}
