import Foundation
import Testing

@testable import Dispatcher

/// Load = the node's ESL channel count + the calls the proxy sent since − those that ended,
/// reconciled on every reading; probe counters and jitter for the admin view.
@Suite struct ChannelReconciliationTests {
    let now = ContinuousClock.now

    @Test func channelsAreTheEslReadingPlusCallsSentSinceAndAReadingResetsTheDelta() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "least-loaded"), localRegion: "east")
        #expect(d.channels("e1") == 0)
        d.channelCountRead(node: "e1", count: 40)
        #expect(d.channels("e1") == 40, "channels the proxy did not send (API calls) count")
        for _ in 0..<5 { d.callStarted(node: "e1") }
        #expect(d.channels("e1") == 45, "a burst counts before the next reading")
        d.callEnded(node: "e1")
        #expect(d.channels("e1") == 44)
        d.channelCountRead(node: "e1", count: 43)
        #expect(d.channels("e1") == 43, "the node's count wins: no drift")
        for _ in 0..<100 { d.callEnded(node: "e1") }
        #expect(d.channels("e1") == 0, "never below zero")
        d.channelCountRead(node: "e1", count: 2)
        #expect(d.channels("e1") == 2)
    }

    @Test func aLostEslConnectionFallsBackToTheProxysOwnCount() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "least-loaded"), localRegion: "east")
        d.callStarted(node: "e1")
        d.channelCountRead(node: "e1", count: 90)
        #expect(d.channels("e1") == 90)
        d.channelCountLost(node: "e1")
        #expect(d.channels("e1") == 1)
        #expect(d.eslChannels["e1"] == nil)
    }

    @Test func leastLoadedFollowsTheEslCounts() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "least-loaded"), localRegion: "east")
        // e1: 50 of 100 (50 %), e2: 60 of 200 (30 %) -> e2 first.
        d.channelCountRead(node: "e1", count: 50)
        d.channelCountRead(node: "e2", count: 60)
        #expect(d.candidates(now: now).map(\.name).prefix(2) == ["e2", "e1"])
        // 41 calls to e2 before the next reading: 101/200 = 50.5 % -> e1 first.
        for _ in 0..<41 { d.callStarted(node: "e2") }
        #expect(d.candidates(now: now).first?.name == "e1")
    }

    @Test func readingsForUnknownNodesAreIgnoredAndReloadKeepsOrDropsThem() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "least-loaded"), localRegion: "east")
        d.channelCountRead(node: "ghost", count: 5)
        #expect(d.eslChannels["ghost"] == nil)
        d.channelCountRead(node: "e1", count: 7)
        d.channelCountRead(node: "w1", count: 3)
        let next = try RegionsConfigLoader.load(
            yaml: """
                dispatch: { policy: least-loaded, probe: { down_after: 4, up_after: 3 } }
                regions:
                  east:
                    nodes:
                      - { name: e1, sip: "127.0.0.1:5080", max_channels: 100 }
                """)
        d.reload(next)
        #expect(d.channels("e1") == 7, "a kept node keeps its reading")
        #expect(d.eslChannels["w1"] == nil, "a removed node is forgotten")
        #expect(d.health["e1"]?.downAfter == 4, "a kept node takes the new probe thresholds")
        #expect(d.health["e1"]?.upAfter == 3)
    }

    @Test func probeCountersSayWhyANodeIsDown() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "round-robin"), localRegion: "east")
        for _ in 0..<3 { d.probeSent(node: "e1") }
        d.probeSucceeded(node: "e1", rtt: .milliseconds(2), now: now)
        d.probeFailed(node: "e1", reason: "no answer to OPTIONS within 500 ms", timedOut: true, now: now)
        d.probeFailed(node: "e1", reason: "answered OPTIONS with 503", now: now)
        let c = try #require(d.probeCounters["e1"])
        #expect(c.sent == 3)
        #expect(c.ok == 1)
        #expect(c.failed == 2)
        #expect(c.timeouts == 1)
        #expect(c.lastError == "answered OPTIONS with 503")
    }

    @Test func jitterIsTheMeanDeviationOfTheRoundTrip() {
        var h = NodeHealth(downAfter: 2, upAfter: 2)
        h.probeSucceeded(rtt: .milliseconds(10), now: now)
        #expect(h.rttJitter == .milliseconds(5))
        for _ in 0..<50 { h.probeSucceeded(rtt: .milliseconds(10), now: now) }
        #expect(h.rttJitter! < .milliseconds(1), "steady round trips: jitter decays")
        h.probeSucceeded(rtt: .milliseconds(50), now: now)
        #expect(h.rttJitter! > .milliseconds(5), "a spike shows")
    }
}

@Suite struct ProvisionalTimeoutTests {
    let now = ContinuousClock.now

    static func config(_ failover: String) throws -> RegionsConfig {
        try RegionsConfigLoader.load(
            yaml: """
                dispatch: { failover: \(failover) }
                regions:
                  east:
                    nodes:
                      - { name: e1, sip: "127.0.0.1:5080" }
                """)
    }

    @Test func theProvisionalTimeoutFollowsTheRoundTripWithinFloorAndCeiling() throws {
        var d = NodeDispatcher(config: try Self.config("{ invite_timeout: 2s, invite_timeout_min: 200ms }"), localRegion: "east")
        #expect(d.provisionalTimeout(for: "e1") == .seconds(2), "no estimate yet: the ceiling")
        d.probeSucceeded(node: "e1", rtt: .microseconds(300), now: now)
        #expect(d.provisionalTimeout(for: "e1") == .milliseconds(200), "a fast node: the floor")
        for _ in 0..<40 { d.probeSucceeded(node: "e1", rtt: .milliseconds(100), now: now) }
        let t = d.provisionalTimeout(for: "e1")
        #expect(t > .milliseconds(290) && t < .milliseconds(400), "a 100 ms node: about 3 round trips: \(t)")
        for _ in 0..<40 { d.probeSucceeded(node: "e1", rtt: .seconds(1), now: now) }
        #expect(d.provisionalTimeout(for: "e1") == .seconds(2), "never above invite_timeout")
    }

    @Test func aFloorAboveTheCeilingIsAConfigError() {
        #expect(throws: (any Error).self) { try Self.config("{ invite_timeout: 1s, invite_timeout_min: 2s }") }
        #expect((try? Self.config("{ invite_timeout: 100ms }"))?.failover.inviteTimeoutMin == .milliseconds(100), "the default floor follows a lower ceiling")
    }
}

@Suite struct ConfigDrainTests {
    @Test func drainInTheFileStartsTheNodeDrainedAndAReloadAppliesAChange() throws {
        func config(_ drain: Bool) throws -> RegionsConfig {
            try RegionsConfigLoader.load(
                yaml: """
                    regions:
                      east:
                        nodes:
                          - { name: e1, sip: "127.0.0.1:5080", drain: \(drain) }
                          - { name: e2, sip: "127.0.0.1:5082" }
                    """)
        }
        var d = NodeDispatcher(config: try config(true), localRegion: "east")
        #expect(d.drained == ["e1"])
        #expect(d.candidates(now: .now).map(\.name) == ["e2"])
        d.reload(try config(false))
        #expect(d.drained.isEmpty, "the file changed: it wins")
        d.setDrained("e2", true)
        d.reload(try config(false))
        #expect(d.drained == ["e2"], "an unchanged file keeps the admin's drain")
    }
}
