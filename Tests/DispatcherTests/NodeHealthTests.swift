import Testing

@testable import Dispatcher

/// Every transition of the node health machine. (Each event's "changed" result is taken first:
/// `#expect` cannot wrap a mutating call.)
@Suite struct NodeHealthTests {
    let t0 = ContinuousClock.now

    @Test func activeGoesDownOnlyAfterDownAfterFailuresInARow() {
        var h = NodeHealth(downAfter: 2, upAfter: 2)
        #expect(h.state == .active)
        var changed = h.probeFailed(reason: "timeout", now: t0)
        #expect(!changed)
        changed = h.probeSucceeded(rtt: .milliseconds(2), now: t0)
        #expect(!changed)
        changed = h.probeFailed(reason: "timeout", now: t0)
        #expect(!changed, "the success in between reset the count")
        changed = h.probeFailed(reason: "timeout", now: t0 + .seconds(1))
        #expect(changed)
        #expect(h.state == .inactive)
        #expect(h.lastReason == "timeout")
        #expect(h.lastChange == t0 + .seconds(1))
        #expect(!h.acceptsCalls)
    }

    @Test func inactiveRecoversThroughProbing() {
        var h = NodeHealth(downAfter: 1, upAfter: 3)
        h.probeFailed(reason: "x", now: t0)
        var changed = h.probeSucceeded(rtt: .milliseconds(1), now: t0)
        #expect(changed && h.state == .probing)
        #expect(!h.acceptsCalls)
        changed = h.probeSucceeded(rtt: .milliseconds(1), now: t0)
        #expect(!changed && h.state == .probing)
        changed = h.probeSucceeded(rtt: .milliseconds(1), now: t0)
        #expect(changed && h.state == .active)
    }

    @Test func aFailureWhileProbingGoesBackToInactive() {
        var h = NodeHealth(downAfter: 3, upAfter: 2)
        h.callFailed(reason: "INVITE timeout", now: t0)
        h.probeSucceeded(rtt: .milliseconds(1), now: t0)
        #expect(h.state == .probing)
        let changed = h.probeFailed(reason: "refused", now: t0)
        #expect(changed && h.state == .inactive)
    }

    @Test func aFailedCallIsDownAtOnce() {
        var h = NodeHealth(downAfter: 5, upAfter: 2)
        var changed = h.callFailed(reason: "503", now: t0)
        #expect(changed && h.state == .inactive)
        changed = h.callFailed(reason: "503", now: t0)
        #expect(!changed)
    }

    @Test func latencyIsSmoothed() {
        var h = NodeHealth(downAfter: 2, upAfter: 2)
        h.probeSucceeded(rtt: .milliseconds(8), now: t0)
        #expect(h.smoothedRTT == .milliseconds(8))
        h.probeSucceeded(rtt: .milliseconds(16), now: t0)
        #expect(h.lastRTT == .milliseconds(16))
        #expect(h.smoothedRTT == .milliseconds(9))
    }
}
