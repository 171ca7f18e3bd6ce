/// A hashed timer wheel: O(1) schedule, lazy cancellation (the payload carries a generation its
/// owner checks when it fires). One wheel per event loop replaces thousands of NIO scheduled
/// tasks, whose cancellation would cost a heap search each.
struct TimerWheel<Payload> {
    struct Entry {
        let dueTick: UInt64
        let payload: Payload
    }

    let tick: Duration
    private var slots: [[Entry]]
    private(set) var currentTick: UInt64 = 0
    let origin: ContinuousClock.Instant
    private(set) var count = 0
    /// The tick in attoseconds: instants become ticks by one integer division (`Duration / Duration`
    /// goes through Double, ~300 instructions a timer on the message path).
    private let tickAttoseconds: Int128
    /// The last instant asked about and its offset from `origin`: every timer of one event is
    /// scheduled at the same `now`.
    private var lastNow: ContinuousClock.Instant
    private var lastNowAttoseconds: Int128 = 0

    init(tick: Duration = .milliseconds(10), slotCount: Int = 1024, origin: ContinuousClock.Instant) {
        precondition(slotCount > 0 && tick > .zero)
        self.tick = tick
        self.tickAttoseconds = tick.attoseconds
        self.slots = Array(repeating: [], count: slotCount)
        self.origin = origin
        self.lastNow = origin
    }

    private mutating func attoseconds(since instant: ContinuousClock.Instant) -> Int128 {
        if instant != lastNow {
            lastNow = instant
            lastNowAttoseconds = (instant - origin).attoseconds
        }
        return lastNowAttoseconds
    }

    /// Whole ticks from `origin` to an offset in attoseconds (0 before it).
    private func ticks(attoseconds: Int128) -> UInt64 {
        attoseconds > 0 ? UInt64(attoseconds / tickAttoseconds) : 0
    }

    /// Schedules `payload` to fire `delay` after `now` (rounded up to the next tick).
    mutating func schedule(_ payload: Payload, after delay: Duration, now: ContinuousClock.Instant) {
        let due = max(currentTick + 1, ticks(attoseconds: attoseconds(since: now) + delay.attoseconds) + 1)
        slots[Int(due % UInt64(slots.count))].append(Entry(dueTick: due, payload: payload))
        count += 1
    }

    /// Advances tick by tick towards `now` and returns the payloads due at the first tick that
    /// has any, or nil once `now` is reached. The caller fires them between calls, so firing may
    /// schedule new timers (they land in later ticks).
    mutating func nextDue(upTo now: ContinuousClock.Instant) -> [Payload]? {
        let target = ticks(attoseconds: attoseconds(since: now))
        while currentTick < target {
            currentTick += 1
            let index = Int(currentTick % UInt64(slots.count))
            guard !slots[index].isEmpty else { continue }
            // In place: the entries that stay are moved, not copied (each holds a weak
            // reference, and copying one is an atomic side-table increment).
            var due: [Payload] = []
            let nowTick = currentTick
            slots[index].removeAll { e in
                guard e.dueTick <= nowTick else { return false }
                due.append(e.payload)
                return true
            }
            count -= due.count
            if !due.isEmpty { return due }
        }
        return nil
    }
}
