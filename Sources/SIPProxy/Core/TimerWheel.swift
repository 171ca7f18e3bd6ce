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

    init(tick: Duration = .milliseconds(10), slotCount: Int = 1024, origin: ContinuousClock.Instant) {
        precondition(slotCount > 0 && tick > .zero)
        self.tick = tick
        self.slots = Array(repeating: [], count: slotCount)
        self.origin = origin
    }

    private func ticks(_ instant: ContinuousClock.Instant) -> UInt64 {
        let elapsed = instant - origin
        guard elapsed > .zero else { return 0 }
        return UInt64(elapsed / tick)
    }

    /// Schedules `payload` to fire `delay` after `now` (rounded up to the next tick).
    mutating func schedule(_ payload: Payload, after delay: Duration, now: ContinuousClock.Instant) {
        let due = max(currentTick + 1, ticks(now + delay) + 1)
        slots[Int(due % UInt64(slots.count))].append(Entry(dueTick: due, payload: payload))
        count += 1
    }

    /// Advances tick by tick towards `now` and returns the payloads due at the first tick that
    /// has any, or nil once `now` is reached. The caller fires them between calls, so firing may
    /// schedule new timers (they land in later ticks).
    mutating func nextDue(upTo now: ContinuousClock.Instant) -> [Payload]? {
        let target = ticks(now)
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
