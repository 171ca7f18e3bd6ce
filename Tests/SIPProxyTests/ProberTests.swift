import Dispatcher
import Foundation
import NIOCore
import Testing

@testable import SIPProxy

/// The OPTIONS prober on fake time: deadlines, thresholds, and what dispatch does with them.
@Suite struct ProberTests {
    static let yaml = ProxyHarness.yaml.replacingOccurrences(
        of: "dispatch:\n", with: "dispatch:\n  probe: { interval: 1s, timeout: 300ms, down_after: 2, up_after: 2 }\n")

    /// Answers every pending probe to `node` with `status`.
    func answerProbes(_ h: ProxyHarness, _ probes: [RecordingTransport.Sent], from node: SIPEndpoint, status: Int = 200) {
        for p in probes where p.to == node {
            h.receive(ProxyHarness.response(to: p.text, status, status == 200 ? "OK" : "Unavailable"), from: node)
        }
    }

    @Test func probesGoToEveryNodeEachInterval() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        h.advance(.milliseconds(20))
        let first = h.transport.take()
        #expect(first.map(\.firstLine).sorted() == ["OPTIONS sip:127.0.0.1:5071 SIP/2.0", "OPTIONS sip:127.0.0.1:5072 SIP/2.0"])
        #expect(first.allSatisfy { $0.text.header("Max-Forwards") == "70" && $0.text.header("CSeq")?.hasSuffix(" OPTIONS") == true })
        answerProbes(h, first, from: h.node1)
        answerProbes(h, first, from: h.node2)
        h.advance(.milliseconds(900))
        #expect(h.transport.take().isEmpty)
        h.advance(.milliseconds(120))
        #expect(h.transport.take().count == 2)
    }

    @Test func silentNodeIsTakenOutAfterDownAfterProbesAndComesBackAfterUpAfter() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        // Node 2 stays silent: two probes time out (300 ms each) -> inactive within 1.3 s.
        for _ in 0..<2 {
            h.advance(.milliseconds(20))
            answerProbes(h, h.transport.take(), from: h.node1)
            h.advance(.milliseconds(990))
        }
        h.advance(.milliseconds(320))
        _ = h.transport.take()
        #expect(h.core.dispatcher.health["n2"]?.state == .inactive)
        #expect(h.core.dispatcher.health["n1"]?.state == .active)
        // New calls only go to node 1 now.
        for i in 0..<4 {
            h.receive(ProxyHarness.invite(callID: "c\(i)", branch: "z9hG4bKc\(i)"))
            let sent = h.transport.take().filter { $0.firstLine.hasPrefix("INVITE") }
            #expect(sent.map(\.to) == [h.node1])
        }
        // Node 2 answers again: probing after one answer, active after two.
        h.advance(.milliseconds(700))
        let probes = h.transport.take().filter { $0.firstLine.hasPrefix("OPTIONS") }
        answerProbes(h, probes, from: h.node1)
        answerProbes(h, probes, from: h.node2)
        #expect(h.core.dispatcher.health["n2"]?.state == .probing)
        h.advance(.seconds(1))
        let next = h.transport.take().filter { $0.firstLine.hasPrefix("OPTIONS") }
        answerProbes(h, next, from: h.node1)
        answerProbes(h, next, from: h.node2)
        #expect(h.core.dispatcher.health["n2"]?.state == .active)
    }

    /// Both nodes answer the first probes, then a call comes: its INVITE, the node it went to
    /// and the other node.
    func oneCall(_ h: ProxyHarness) throws -> (invite: RecordingTransport.Sent, node: SIPEndpoint, other: SIPEndpoint) {
        h.advance(.milliseconds(20))
        let probes = h.transport.take()
        answerProbes(h, probes, from: h.node1)
        answerProbes(h, probes, from: h.node2)
        h.receive(ProxyHarness.invite())
        let sent = h.transport.take().filter { $0.firstLine.hasPrefix("INVITE") }
        #expect(sent.count == 1)
        let invite = try #require(sent.first)
        return invite.to == h.node1 ? (invite, h.node1, h.node2) : (invite, h.node2, h.node1)
    }

    /// Time passes by `step`, `answering` answers its probes; what was sent besides probes.
    func probeRound(_ h: ProxyHarness, _ step: Duration, answering node: SIPEndpoint) -> [RecordingTransport.Sent] {
        h.advance(step)
        let round = h.transport.take()
        answerProbes(h, round, from: node)
        return round.filter { !$0.firstLine.hasPrefix("OPTIONS") }
    }

    /// The call was CANCELled on `dead` and offered to `other`, whose 200 reaches the caller.
    func expectMoved(_ h: ProxyHarness, _ moved: [RecordingTransport.Sent], from dead: SIPEndpoint, to other: SIPEndpoint) throws {
        let cancel = moved.filter { $0.firstLine.hasPrefix("CANCEL") }
        let invite = moved.filter { $0.firstLine.hasPrefix("INVITE") }
        #expect(cancel.map(\.to) == [dead], "the ringing branch is cancelled on the dead node: \(moved.map(\.firstLine))")
        #expect(invite.map(\.to) == [other], "and the call is offered to the next node: \(moved.map(\.firstLine))")
        let offered = try #require(invite.first)
        h.receive(ProxyHarness.response(to: offered.text, 200, "OK", toTag: "node2"), from: other)
        #expect(h.transport.take().filter { $0.to == h.caller }.map(\.firstLine) == ["SIP/2.0 200 OK"])
    }

    @Test func aCallRingingOnANodeThatGoesDownMovesToTheNextNode() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        let (sent, ringing, other) = try oneCall(h)
        h.receive(ProxyHarness.response(to: sent.text, 180, "Ringing"), from: ringing)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 180 Ringing"])
        // The ringing node goes silent: two probes time out, it is down, and the call moves.
        var moved = probeRound(h, .milliseconds(1000), answering: other)
        moved += probeRound(h, .milliseconds(1000), answering: other)
        h.advance(.milliseconds(320))
        moved += h.transport.take().filter { !$0.firstLine.hasPrefix("OPTIONS") }
        #expect(h.core.dispatcher.health[ringing == h.node1 ? "n1" : "n2"]?.state == .inactive)
        #expect(!moved.contains { $0.to == h.caller && !$0.firstLine.hasPrefix("SIP/2.0 1") }, "the caller gets no final answer yet")
        try expectMoved(h, moved, from: ringing, to: other)
    }

    /// The drill's lost call: the node died between its 100 Trying and its 180, and an INVITE
    /// that went unanswered there took it down first, so no probe changed its state. The
    /// probe that then times out still moves the call.
    @Test func aCallRingingOnANodeAlreadyTakenDownByAFailedInviteMovesWhenItsProbeTimesOut() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        let (sent, dead, other) = try oneCall(h)
        let deadName = dead == h.node1 ? "n1" : "n2"
        h.receive(ProxyHarness.response(to: sent.text, 100, "Trying"), from: dead)
        #expect(h.transport.take().isEmpty, "100 is not forwarded")
        // Another call's INVITE got nothing from the node in time: down at once.
        let node = try #require(h.core.dispatcher.config.allNodes.first { $0.name == deadName })
        h.core.nodeFailedCall(node, reason: "invite timeout")
        #expect(h.core.dispatcher.health[deadName]?.state == .inactive)
        // The next probe of the silent node times out: the call rings nowhere, so it moves.
        var moved = probeRound(h, .milliseconds(1000), answering: other)
        h.advance(.milliseconds(320))
        moved += h.transport.take().filter { !$0.firstLine.hasPrefix("OPTIONS") }
        try expectMoved(h, moved, from: dead, to: other)
        // Later probes of the dead node find nothing more to move (the CANCEL retransmits).
        h.advance(.milliseconds(1320))
        let later = h.transport.take().filter { $0.firstLine.hasPrefix("INVITE") || $0.to == h.caller }
        #expect(later.isEmpty, "\(later.map(\.firstLine))")
    }

    @Test func probeAnswered503CountsAsFailed() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        for _ in 0..<2 {
            h.advance(.milliseconds(20))
            let probes = h.transport.take()
            answerProbes(h, probes, from: h.node1)
            answerProbes(h, probes, from: h.node2, status: 503)
            h.advance(.milliseconds(990))
        }
        #expect(h.core.dispatcher.health["n2"]?.state == .inactive)
        #expect(h.core.dispatcher.health["n2"]?.lastReason == "answered OPTIONS with 503")
    }

    @Test func nodeThatFailsAnInviteIsDownAtOnceWithoutWaitingForAProbe() throws {
        let h = try ProxyHarness(yaml: Self.yaml, probing: true)
        h.advance(.milliseconds(20))
        let probes = h.transport.take()
        answerProbes(h, probes, from: h.node1)
        answerProbes(h, probes, from: h.node2)
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take().filter { $0.firstLine.hasPrefix("INVITE") }[0]
        h.receive(ProxyHarness.response(to: fwd.text, 503, "Unavailable"), from: fwd.to)
        #expect(h.core.dispatcher.health[fwd.to == h.node1 ? "n1" : "n2"]?.state == .inactive)
    }
}

@Suite struct RetryAfterTests {
    @Test func aNodes503RetryAfterKeepsItOutThatLong() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        let busy = ProxyHarness.response(to: fwd, 503, "Overloaded").replacingOccurrences(
            of: "Content-Length: 0", with: "Retry-After: 60\r\nContent-Length: 0")
        h.receive(busy, from: h.node1)
        _ = h.transport.take()
        #expect(h.core.dispatcher.isHeldDown("n1", now: h.now + .seconds(59)))
        #expect(!h.core.dispatcher.isHeldDown("n1", now: h.now + .seconds(61)))
    }
}

@Suite struct ProxyReloadTests {
    @Test func reloadedNodeTakesCallsAndTransactionsInFlightFinish() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        let regions = try RegionsConfigLoader.load(yaml: ProxyHarness.yaml.replacingOccurrences(of: "5071", with: "5073"))
        let diff = h.core.reload(regions)
        #expect(diff.replaced == ["n1"])
        // The INVITE already on the old node 1 still completes.
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        // New calls go to the node's new address.
        var targets: Set<Int> = []
        for i in 0..<2 {
            h.receive(ProxyHarness.invite(callID: "r\(i)", branch: "z9hG4bKr\(i)"))
            targets.insert(h.transport.take().last!.to.address.port!)
        }
        #expect(targets == [5073, 5072])
    }

    @Test func aReloadThatChangesTheAdvertisedAddressKeepsTheRunningOneEverywhere() throws {
        let h = try ProxyHarness()
        let moved = ProxyHarness.yaml.replacingOccurrences(of: "trusted:", with: "advertise: \"192.0.2.7:5060\"\n  trusted:")
        _ = h.core.reload(try RegionsConfigLoader.load(yaml: moved))
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        #expect(fwd.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;branch="), "\(fwd)")
        #expect(fwd.contains("Record-Route: <sip:127.0.0.1:5060;lr>"), "\(fwd)")
        #expect(!fwd.contains("192.0.2.7"))
        // Responses to our running Via are still ours.
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
    }
}
