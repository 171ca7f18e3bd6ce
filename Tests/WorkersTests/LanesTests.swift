import Synchronization
import Testing

@testable import Workers

@Suite("Lanes: serial per key, parallel across keys")
struct LanesTests {
    @Test("every element is handled once, in submission order per key, and finish lets run return after the last")
    func orderPerKey() async {
        let lanes = Lanes<(key: String, n: Int)>(count: 8)
        let seen = Mutex<[String: [Int]]>([:])
        let runner = Task { await lanes.run { e in seen.withLock { $0[e.key, default: []].append(e.n) } } }
        for n in 0..<2000 {
            let key = "call-\(n % 37)"
            lanes.submit((key, n), key: key)
            if n % 100 == 0 { await Task.yield() }
        }
        lanes.finish()
        await runner.value
        let got = seen.withLock { $0 }
        #expect(got.values.map(\.count).reduce(0, +) == 2000)
        for (key, ns) in got {
            #expect(ns == ns.sorted(), "\(key) out of order")
            #expect(ns.allSatisfy { "call-\($0 % 37)" == key })
        }
    }

    @Test("a parked next is woken by yield and by finish; queued elements outlive finish, later ones are dropped")
    func queue() async {
        let q = LaneQueue<Int>()
        let first = Task { await q.next() }
        try? await Task.sleep(for: .milliseconds(20))  // parked
        q.yield(1)
        #expect(await first.value == 1)
        q.yield(2)
        q.yield(3)
        q.finish()
        q.yield(4)
        #expect(await q.next() == 2)
        #expect(await q.next() == 3)
        #expect(await q.next() == nil)
        let q2 = LaneQueue<Int>()
        let parked = Task { await q2.next() }
        try? await Task.sleep(for: .milliseconds(20))
        q2.finish()
        #expect(await parked.value == nil)
    }

    @Test("cancelling run finishes the lanes: what they hold is still handled")
    func cancelDrains() async {
        let lanes = Lanes<Int>(count: 2)
        let handled = Mutex(0)
        let gate = Mutex(true)
        let runner = Task {
            await lanes.run { _ in
                while gate.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
                handled.withLock { $0 += 1 }
            }
        }
        for n in 0..<50 { lanes.submit(n, key: "k\(n)") }
        try? await Task.sleep(for: .milliseconds(20))
        runner.cancel()
        gate.withLock { $0 = false }
        await runner.value
        #expect(handled.withLock { $0 } == 50)
    }
}
