import Testing
import TestSupport

@testable import SIPProxy

@Suite struct TimerWheelTests {
    /// Timers armed at odd instants with odd delays fire no earlier than their delay and at most
    /// one tick later (the tick they fall in, rounded up), in the order they are due.
    @Test func timersFireAtTheirTickNeverEarly() {
        var rng = SeededRandomNumberGenerator(seed: 64)
        let origin = ContinuousClock.now
        var wheel = TimerWheel<Int>(tick: .milliseconds(10), slotCount: 64, origin: origin)
        var now = origin
        var due: [Int: ContinuousClock.Instant] = [:]
        var fired: [Int: ContinuousClock.Instant] = [:]
        for id in 0..<3_000 {
            // Time moves by a few hundred microseconds at a time, off the tick grid.
            now += .microseconds(Int64.random(in: 0...700, using: &rng))
            let delay = Duration.microseconds(Int64.random(in: 0...40_000_000, using: &rng))
            wheel.schedule(id, after: delay, now: now)
            due[id] = now + delay
            while let payloads = wheel.nextDue(upTo: now) {
                for p in payloads { fired[p] = now }
            }
        }
        while fired.count < due.count {
            now += .milliseconds(3)
            while let payloads = wheel.nextDue(upTo: now) {
                for p in payloads { fired[p] = now }
            }
        }
        for (id, at) in fired {
            #expect(at >= due[id]!, "timer \(id) fired early")
            #expect(at - due[id]! <= .milliseconds(23), "timer \(id) fired late")
        }
        #expect(wheel.count == 0)
    }
}
