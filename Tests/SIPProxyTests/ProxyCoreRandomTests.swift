import NIOCore
import Testing
import TestSupport

@testable import SIPProxy

/// Calls driven by random event sequences (seeded, so a failure is replayed by its seed): node
/// answers of every kind in any order, retransmissions from both sides, the caller's CANCEL and
/// ACK, in-dialog BYEs, and time passing through the INVITE timeout (failover), Timer C and the
/// transaction timers. Whatever happens, no path may need a request the core already released,
/// and once every timer has run out the tables are empty.
@Suite struct ProxyCoreRandomTests {
    @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
    func noPathNeedsAReleasedRequestAndEverythingEnds(seed: UInt64) throws {
        var rng = SeededRandomNumberGenerator(seed: seed)
        // Timer C short enough to fire within a call's random steps.
        let h = try ProxyHarness(timerC: .seconds(4))
        let codes = [100, 180, 183, 200, 200, 486, 503, 408, 500]
        for call in 0..<500 {
            let callID = "rnd-\(seed)-\(call)"
            let branch = "z9hG4bKrnd\(seed)x\(call)"
            let invite = ProxyHarness.invite(callID: callID, branch: branch)
            /// The INVITE as each node last got it, and the last response each node sent.
            var forwarded: [Int: String] = [:]
            var lastResponse: [Int: String] = [:]
            var answeredBy: Int?
            func collect() {
                for sent in h.transport.take() where sent.firstLine.hasPrefix("INVITE ") {
                    forwarded[sent.to == h.node1 ? 1 : 2] = sent.text
                }
            }
            func node(_ n: Int) -> SIPEndpoint { n == 1 ? h.node1 : h.node2 }
            h.receive(invite)
            collect()
            for step in 0..<Int.random(in: 3...14, using: &rng) {
                switch Int.random(in: 0..<8, using: &rng) {
                case 0, 1:
                    guard let n = forwarded.keys.randomElement(using: &rng), let request = forwarded[n] else { continue }
                    let code = codes.randomElement(using: &rng)!
                    let response = ProxyHarness.response(to: request, code, "Random", toTag: code == 100 ? nil : "n\(n)")
                    lastResponse[n] = response
                    if code >= 200, code < 300 { answeredBy = n }
                    h.receive(response, from: node(n))
                case 2:
                    guard let n = lastResponse.keys.randomElement(using: &rng) else { continue }
                    h.receive(lastResponse[n]!, from: node(n))
                case 3:
                    h.receive(
                        "CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)\r\n"
                            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>\r\n"
                            + "Call-ID: \(callID)\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                case 4:
                    h.receive(invite)
                case 5:
                    h.receive(
                        "ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)\r\n"
                            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>;tag=n1\r\n"
                            + "Call-ID: \(callID)\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                case 6:
                    guard let n = answeredBy else { continue }
                    let port = n == 1 ? 5071 : 5072
                    h.receive(
                        "BYE sip:node@127.0.0.1:\(port) SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=\(branch)b\(step)\r\n"
                            + "Route: <sip:127.0.0.1:5060;lr>\r\nFrom: <sip:caller@127.0.0.1:5999>;tag=from1\r\n"
                            + "To: <sip:+12125551212@127.0.0.1:5060>;tag=n\(n)\r\nCall-ID: \(callID)\r\nCSeq: \(2 + step) BYE\r\n"
                            + "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                    if let bye = h.transport.take().first(where: { $0.firstLine.hasPrefix("BYE ") }), Bool.random(using: &rng) {
                        h.receive(ProxyHarness.response(to: bye.text, 200, "OK", toTag: nil), from: node(n))
                    }
                default:
                    h.advance(.milliseconds(Int.random(in: 100...4_500, using: &rng)))
                }
                collect()
                #expect(h.core.internalErrorCount == 0, "seed \(seed), call \(call), step \(step)")
                if h.core.internalErrorCount > 0 { return }
            }
        }
        // Timer C's lingering entries (4 s here), the abandoned branches' cleanup and every
        // 64·T1 timer have run out: nothing is left.
        h.advance(.seconds(70))
        #expect(h.core.activeTransactionCount == 0)
        #expect(h.core.internalErrorCount == 0)
    }
}
