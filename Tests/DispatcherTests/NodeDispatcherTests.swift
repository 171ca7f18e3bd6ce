import Testing

@testable import Dispatcher

@Suite struct NodeDispatcherTests {
    static let yaml = """
        dispatch:
          failover: { max_attempts: 3, hold_down: 5s }
        regions:
          east:
            nodes:
              - { name: e1, sip: "127.0.0.1:5080" }
              - { name: e2, sip: "127.0.0.1:5082" }
          west:
            nodes:
              - { name: w1, sip: "127.0.0.1:5180" }
        """

    @Test func localRegionIsRotatedAndOtherRegionsFollow() throws {
        var d = NodeDispatcher(config: try RegionsConfigLoader.load(yaml: Self.yaml), localRegion: "east")
        let t = ContinuousClock.now
        #expect(d.candidates(now: t).map(\.name) == ["e1", "e2", "w1"])
        #expect(d.candidates(now: t).map(\.name) == ["e2", "e1", "w1"])
        #expect(d.candidates(now: t).map(\.name) == ["e1", "e2", "w1"])
    }

    @Test func westProxyPrefersWest() throws {
        var d = NodeDispatcher(config: try RegionsConfigLoader.load(yaml: Self.yaml), localRegion: "west")
        #expect(d.candidates(now: .now).first?.name == "w1")
    }

    @Test func failedNodeIsOutUntilHoldDownEndsAndProbesBringItBack() throws {
        var d = NodeDispatcher(config: try RegionsConfigLoader.load(yaml: Self.yaml), localRegion: "east")
        let t = ContinuousClock.now
        d.reportFailure(node: "e1", now: t)
        #expect(d.candidates(now: t + .seconds(1)).map(\.name) == ["e2", "w1"])
        #expect(d.isHeldDown("e1", now: t + .seconds(4)))
        // Good probes during the hold-down do not bring it back early.
        d.probeSucceeded(node: "e1", rtt: .milliseconds(1), now: t + .seconds(1))
        d.probeSucceeded(node: "e1", rtt: .milliseconds(1), now: t + .seconds(2))
        #expect(d.health["e1"]?.state == .active)
        #expect(!d.candidates(now: t + .seconds(3)).contains { $0.name == "e1" })
        #expect(d.candidates(now: t + .seconds(6)).contains { $0.name == "e1" })
    }

    @Test func noUsableNodeMeansNoCandidate() throws {
        var d = NodeDispatcher(config: try RegionsConfigLoader.load(yaml: Self.yaml), localRegion: "east")
        let t = ContinuousClock.now
        for n in ["e1", "e2", "w1"] { d.reportFailure(node: n, now: t) }
        #expect(d.candidates(now: t + .seconds(1)).isEmpty)
    }

    @Test func candidateListIsCappedAtMaxAttempts() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "max_attempts: 3", with: "max_attempts: 2")
        var d = NodeDispatcher(config: try RegionsConfigLoader.load(yaml: yaml), localRegion: "east")
        #expect(d.candidates(now: .now).count == 2)
    }
}

@Suite struct IPv4ParsingTests {
    @Test(arguments: [("127.0.0.1", UInt32(0x7F00_0001)), ("0.0.0.0", 0), ("255.255.255.255", 0xFFFF_FFFF), ("192.0.2.10", 0xC000_020A)])
    func dottedQuadsParse(_ text: String, _ value: UInt32) {
        #expect(IPv4Network.parseIPv4(text) == value)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "1.2.3.", ".1.2.3", "0001.2.3.4", "a.b.c.d", "::1", "1.2.3.4 "])
    func anythingElseIsRejected(_ text: String) {
        #expect(IPv4Network.parseIPv4(text) == nil)
    }
}
