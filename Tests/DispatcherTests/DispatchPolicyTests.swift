import Foundation
import Testing

@testable import Dispatcher

/// Each policy's order, region preference and the proxy-side load count.
@Suite struct DispatchPolicyTests {
    static func config(policy: String, extra: String = "", maxAttempts: Int = 5) throws -> RegionsConfig {
        try RegionsConfigLoader.load(
            yaml: """
                dispatch:
                  policy: \(policy)
                  failover: { max_attempts: \(maxAttempts) }
                regions:
                  east:
                    prefer_for: [ "+1212" ]
                    nodes:
                      - { name: e1, sip: "127.0.0.1:5080", max_channels: 100, weight: 3 }
                      - { name: e2, sip: "127.0.0.1:5082", max_channels: 200, weight: 1 }
                  west:
                    prefer_for: [ "+1415" ]
                    nodes:
                      - { name: w1, sip: "127.0.0.1:5180" }
                \(extra)
                """)
    }

    let now = ContinuousClock.now

    @Test func weightedSpreadsCallsInProportionToWeight() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "weighted"), localRegion: "east")
        var firsts: [String: Int] = [:]
        var sequence: [String] = []
        for _ in 0..<8 {
            let first = d.candidates(now: now)[0].name
            firsts[first, default: 0] += 1
            sequence.append(first)
        }
        #expect(firsts == ["e1": 6, "e2": 2])
        // Smooth: the light node is not starved into one burst.
        #expect(sequence.prefix(4).contains("e2"))
    }

    @Test func leastLoadedUsesChannelsOverCapacityAndNeverGoesNegative() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "least-loaded"), localRegion: "east")
        // e1 holds 100 channels, e2 200: 3 calls on e1 (3 %) vs 4 on e2 (2 %) -> e2 first.
        for _ in 0..<3 { d.callStarted(node: "e1") }
        for _ in 0..<4 { d.callStarted(node: "e2") }
        #expect(d.candidates(now: now).map(\.name) == ["e2", "e1", "w1"])
        for _ in 0..<10 { d.callEnded(node: "e1") }
        #expect(d.activeCalls["e1"] == 0)
        #expect(d.candidates(now: now).first?.name == "e1")
        #expect(d.routedCalls["e2"] == 4)
    }

    @Test func latencyOrdersByProbeRoundTrip() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "latency"), localRegion: "east")
        d.probeSucceeded(node: "e1", rtt: .milliseconds(30), now: now)
        d.probeSucceeded(node: "e2", rtt: .milliseconds(3), now: now)
        #expect(d.candidates(now: now).map(\.name) == ["e2", "e1", "w1"])
    }

    @Test func hashCallIDIsStickyAndMovesOnlyTheDeadNodesCalls() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "hash-callid"), localRegion: "east")
        let ids = (0..<200).map { "call-\($0)@carrier" }
        let before = ids.map { d.candidates(callID: $0, now: now)[0].name }
        #expect(ids.map { d.candidates(callID: $0, now: now)[0].name } == before)
        #expect(Set(before) == ["e1", "e2"])
        d.reportFailure(node: "e1", now: now)
        let after = ids.map { d.candidates(callID: $0, now: now)[0].name }
        for (b, a) in zip(before, after) where b == "e2" { #expect(a == "e2") }
        #expect(!after.contains("e1"))
    }

    @Test func calledNumberHomedElsewherePrefersThatRegion() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "round-robin"), localRegion: "east")
        #expect(d.homeRegion(of: "+14155550100") == "west")
        #expect(d.homeRegion(of: "14155550100") == "west")
        #expect(d.homeRegion(of: "+33123456789") == nil)
        #expect(d.candidates(number: "+14155550100", now: now).map(\.name).first == "w1")
        #expect(d.candidates(number: "+12125550100", now: now).first?.region == "east")
        #expect(d.candidates(number: "+33123456789", now: now).first?.region == "east")
    }

    @Test func deadPreferredRegionFailsOverToTheOtherRegion() throws {
        var d = NodeDispatcher(config: try Self.config(policy: "round-robin"), localRegion: "east")
        d.reportFailure(node: "e1", now: now)
        d.reportFailure(node: "e2", now: now)
        #expect(d.candidates(now: now + .seconds(1)).map(\.name) == ["w1"])
    }
}

@Suite struct DrainTests {
    @Test func drainedNodeGetsNoNewCallsUntilEnabled() throws {
        var d = NodeDispatcher(config: try DispatchPolicyTests.config(policy: "round-robin"), localRegion: "east")
        let now = ContinuousClock.now
        let known = d.setDrained("e1", true)
        let unknown = d.setDrained("nope", true)
        #expect(known && !unknown)
        for _ in 0..<4 {
            let names = d.candidates(now: now).map(\.name)
            #expect(!names.contains("e1"))
        }
        #expect(d.health["e1"]?.state == .active, "drain is the operator's state, not health")
        d.setDrained("e1", false)
        let back = d.candidates(now: now).map(\.name)
        #expect(back.contains("e1"))
    }
}

@Suite struct ReloadTests {
    @Test func reloadKeepsWhatStaysAndStartsNewNodesFresh() throws {
        let old = try DispatchPolicyTests.config(policy: "least-loaded")
        var d = NodeDispatcher(config: old, localRegion: "east")
        let now = ContinuousClock.now
        d.probeSucceeded(node: "e1", rtt: .milliseconds(5), now: now)
        d.callStarted(node: "e1")
        d.reportFailure(node: "e2", now: now)
        d.setDrained("w1", true)
        let new = try RegionsConfigLoader.load(
            yaml: """
                dispatch: { policy: round-robin }
                regions:
                  east:
                    nodes:
                      - { name: e1, sip: "127.0.0.1:5080", max_channels: 100 }
                      - { name: e2, sip: "127.0.0.1:6082" }
                      - { name: e3, sip: "127.0.0.1:5084" }
                """)
        let diff = d.reload(new)
        #expect(diff.kept == ["e1"])
        #expect(diff.replaced == ["e2"])
        #expect(diff.added == ["e3"])
        #expect(diff.removed == ["w1"])
        #expect(d.health["e1"]?.smoothedRTT == .milliseconds(5), "kept nodes keep their latency")
        #expect(d.activeCalls["e1"] == 1, "and their load")
        #expect(d.health["e2"]?.state == .active, "a node at a new address starts over")
        #expect(d.health["w1"] == nil && !d.drained.contains("w1"))
        #expect(d.config.policy == .roundRobin)
        let names = Set(d.candidates(now: now).map(\.name))
        #expect(names == ["e1", "e2", "e3"])
    }
}
