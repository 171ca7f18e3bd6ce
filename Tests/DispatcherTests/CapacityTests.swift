import Testing

@testable import Dispatcher

/// Capacity: full nodes get no call, a preferred region past `spill_at` spills to the other.
@Suite struct CapacityTests {
    static func config(spill: String? = "80%") throws -> RegionsConfig {
        try RegionsConfigLoader.load(
            yaml: """
                dispatch:
                  policy: least-loaded
                  failover: { max_attempts: 5 }
                \(spill.map { "  spill_at: \"\($0)\"" } ?? "")
                regions:
                  east:
                    nodes:
                      - { name: e1, sip: "127.0.0.1:5080", max_channels: 10 }
                      - { name: e2, sip: "127.0.0.1:5082", max_channels: 10 }
                  west:
                    nodes:
                      - { name: w1, sip: "127.0.0.1:5180", max_channels: 10 }
                """)
    }

    let now = ContinuousClock.now

    @Test func aNodeAtMaxChannelsGetsNoNewCall() throws {
        var d = NodeDispatcher(config: try Self.config(spill: nil), localRegion: "east")
        d.channelCountRead(node: "e1", count: 10)
        #expect(d.candidates(now: now).map(\.name) == ["e2", "w1"])
    }

    @Test func aPreferredRegionPastSpillAtSendsNewCallsToTheOtherFirst() throws {
        var d = NodeDispatcher(config: try Self.config(), localRegion: "east")
        d.channelCountRead(node: "e1", count: 7)
        d.channelCountRead(node: "e2", count: 8)  // 15 of 20: 75 %, below 80 %
        #expect(d.candidates(now: now).first?.region == "east")
        d.channelCountRead(node: "e2", count: 9)  // 16 of 20: 80 %
        #expect(d.candidates(now: now).map(\.name) == ["w1", "e1", "e2"], "west first, east still as failover")
    }

    @Test func everyNodeFullLeavesNoCandidate() throws {
        var d = NodeDispatcher(config: try Self.config(), localRegion: "east")
        for n in ["e1", "e2", "w1"] { d.channelCountRead(node: n, count: 10) }
        #expect(d.candidates(now: now).isEmpty, "the proxy answers 503 with Retry-After at once")
    }

    @Test(arguments: ["0%", "120%", "abc", "1.5"])
    func aBadSpillAtIsReportedWithItsPath(text: String) {
        #expect(throws: ConfigError.self) { try Self.config(spill: text) }
    }
}
