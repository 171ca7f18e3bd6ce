import Foundation
import NIOCore
import Testing

@testable import SIPProxy

@Suite struct ProxyCoreTests {
    @Test func inviteIsAnsweredTryingAndForwardedWithViaRecordRouteAndMaxForwards() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let sent = h.transport.take()
        try #require(sent.count == 2)
        #expect(sent[0].firstLine == "SIP/2.0 100 Trying")
        #expect(sent[0].to == h.caller)
        #expect(sent[0].text.header("To") == "<sip:+12125551212@127.0.0.1:5060>")
        let fwd = sent[1]
        #expect(fwd.firstLine == "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0")
        #expect(fwd.to == h.node1)
        let vias = fwd.text.headers("Via")
        #expect(vias.count == 2)
        #expect(vias[0].hasPrefix("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsy"))
        #expect(vias[1] == "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1")
        #expect(fwd.text.header("Record-Route") == "<sip:127.0.0.1:5060;lr>")
        #expect(fwd.text.header("Max-Forwards") == "69")
        // Everything else is byte-for-byte the caller's: body and untouched headers.
        #expect(fwd.text.hasSuffix("Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"))
    }

    @Test func responsesGoUpstreamWithoutOurViaAnd100IsAbsorbed() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 100, "Trying", toTag: nil), from: h.node1)
        #expect(h.transport.take().isEmpty)
        h.receive(ProxyHarness.response(to: fwd, 180, "Ringing"), from: h.node1)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        let up = h.transport.take()
        #expect(up.map(\.firstLine) == ["SIP/2.0 180 Ringing", "SIP/2.0 200 OK"])
        for r in up {
            #expect(r.to == h.caller)
            #expect(r.text.headers("Via") == ["SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1"])
            #expect(r.text.header("Record-Route") == "<sip:127.0.0.1:5060;lr>")
        }
        // A 2xx retransmission from the node after the transaction ended is still relayed.
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
    }

    @Test func inviteWithoutProvisionalFailsOverToNextNode() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let first = h.transport.take()[1]
        #expect(first.to == h.node1)
        h.advance(.milliseconds(1_990))
        // Timer A retransmissions only, to node 1.
        #expect(h.transport.take().allSatisfy { $0.to == h.node1 && $0.firstLine.hasPrefix("INVITE") })
        h.advance(.milliseconds(30))
        let sent = h.transport.take()
        try #require(sent.count == 1)
        #expect(sent[0].to == h.node2)
        #expect(sent[0].text.headers("Via")[0] != first.text.headers("Via")[0])
        // Node 2 answers; the caller sees one call.
        h.receive(ProxyHarness.response(to: sent[0].text, 200, "OK"), from: h.node2)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        // No retransmission towards the abandoned node afterwards.
        h.advance(.seconds(10))
        #expect(h.transport.take().filter { $0.to == h.node1 }.isEmpty)
    }

    @Test(arguments: [408, 500, 502, 503, 504])
    func retryableFailureIsAckedAndTriedOnNextNode(_ status: Int) throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, status, "Failure"), from: h.node1)
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
        #expect(sent[0].to == h.node1)
        #expect(sent[0].text.header("CSeq") == "1 ACK")
        #expect(sent[0].text.header("To")?.contains("tag=node1") == true)
        #expect(sent[0].text.headers("Via") == [fwd.headers("Via")[0]])
        #expect(sent[1].to == h.node2)
    }

    @Test func busyFromNodeReachesCallerAndIsNotRetried() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 486, "Busy Here"), from: h.node1)
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "SIP/2.0 486 Busy Here"])
        #expect(sent[1].to == h.caller)
        // The caller's ACK for the 486 (same branch) is absorbed hop by hop.
        h.receive(
            "ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1\r\n"
                + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>;tag=node1\r\n"
                + "Call-ID: call-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(h.transport.take().isEmpty)
        // Without it, Timer G would have retransmitted the 486.
        h.advance(.seconds(2))
        #expect(h.transport.take().isEmpty)
    }

    @Test func everyNodeFailingAnswers503WithRetryAfter() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        var fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 503, "Unavailable"), from: h.node1)
        fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 500, "Error", toTag: "node2"), from: h.node2)
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "SIP/2.0 503 Service Unavailable"])
        #expect(sent[1].text.header("Retry-After") == "5")
        // Both nodes are now down: the next call is refused at once instead of waiting on them.
        h.receive(ProxyHarness.invite(callID: "call-2", branch: "z9hG4bKc2"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 503 Service Unavailable"])
    }

    @Test func cancelAfterRingingIsAnsweredAndForwardedOnTheInviteBranch() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 180, "Ringing"), from: h.node1)
        _ = h.transport.take()
        h.receive(
            "CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1\r\n"
                + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>\r\n"
                + "Call-ID: call-1\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["SIP/2.0 200 OK", "CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
        #expect(sent[0].to == h.caller)
        #expect(sent[1].to == h.node1)
        #expect(sent[1].text.headers("Via") == [fwd.headers("Via")[0]])
        #expect(sent[1].text.header("CSeq") == "1 CANCEL")
        // The node's 200 to the CANCEL stays here; its 487 goes up, and is ACKed hop by hop.
        h.receive(ProxyHarness.response(to: sent[1].text, 200, "OK"), from: h.node1)
        #expect(h.transport.take().isEmpty)
        h.receive(ProxyHarness.response(to: fwd, 487, "Request Terminated"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "SIP/2.0 487 Request Terminated"])
    }

    @Test func cancelBeforeAnyProvisionalWaitsForOne() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(
            "CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1\r\n"
                + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+12125551212@127.0.0.1:5060>\r\n"
                + "Call-ID: call-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        // §9.1: the CANCEL goes out once the node sends a provisional response, not before.
        h.receive(ProxyHarness.response(to: fwd, 100, "Trying", toTag: nil), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
    }

    @Test func cancelForUnknownTransactionGets481() throws {
        let h = try ProxyHarness()
        h.receive(
            "CANCEL sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKnone\r\n"
                + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: nope\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 481 Call/Transaction Does Not Exist"])
    }

    @Test func retransmittedInviteGetsLastResponseAndIsNotForwardedAgain() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        _ = h.transport.take()
        h.receive(ProxyHarness.invite())
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["SIP/2.0 100 Trying"])
    }

    @Test func inDialogByeFollowsRouteSetWithOurRouteRemoved() throws {
        let h = try ProxyHarness()
        let bye = ProxyHarness.bye
        h.receive(bye)
        let sent = h.transport.take()
        try #require(sent.count == 1)
        #expect(sent[0].to == h.node1)
        #expect(sent[0].firstLine == "BYE sip:node@127.0.0.1:5071 SIP/2.0")
        #expect(sent[0].text.header("Route") == nil)
        #expect(sent[0].text.header("Record-Route") == nil)
        #expect(sent[0].text.header("Max-Forwards") == "69")
        h.receive(ProxyHarness.response(to: sent[0].text, 200, "OK", toTag: nil), from: h.node1)
        let up = h.transport.take()
        #expect(up.map(\.firstLine) == ["SIP/2.0 200 OK"])
        #expect(up[0].text.headers("Via") == ["SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKb1"])
    }

    @Test func ackFor2xxIsForwardedStatelesslyWithAStableBranch() throws {
        let h = try ProxyHarness()
        let ack =
            "ACK sip:node@127.0.0.1:5072 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKa1\r\n"
            + "Route: <sip:127.0.0.1:5060;lr>\r\n"
            + "From: <sip:caller@127.0.0.1:5999>;tag=from1\r\nTo: <sip:+1@127.0.0.1>;tag=node2\r\n"
            + "Call-ID: call-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        h.receive(ack)
        h.receive(ack)
        let sent = h.transport.take()
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0.to == h.node2 && $0.firstLine.hasPrefix("ACK ") })
        #expect(sent[0].text == sent[1].text)
        h.advance(.seconds(5))
        #expect(h.transport.take().isEmpty)
    }

    @Test func maxForwardsZeroIs483ButOptionsIsAnswered() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite(maxForwards: 0))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 483 Too Many Hops"])
        h.receive(
            "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKo1\r\n"
                + "From: <sip:a@x>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n"
        )
        let r = h.transport.take()
        #expect(r.map(\.firstLine) == ["SIP/2.0 200 OK"])
        #expect(r[0].text.header("Allow")?.contains("INVITE") == true)
    }

    @Test func unsupportedProxyRequireIs420WithUnsupported() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite(extra: "Proxy-Require: foo, bar\r\n"))
        let r = h.transport.take()
        #expect(r.map(\.firstLine) == ["SIP/2.0 420 Bad Extension"])
        #expect(r[0].text.header("Unsupported") == "foo, bar")
    }

    @Test func requestThatLoopsBackIs482() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        // The node sends the very same request back to the proxy.
        h.receive(fwd, from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 482 Loop Detected"])
    }

    @Test func untrustedSourceIsForbidden() throws {
        let h = try ProxyHarness()
        let stranger = SIPEndpoint(transport: .udp, address: try SocketAddress(ipAddress: "192.0.2.7", port: 5060))
        h.receive(ProxyHarness.invite().replacingOccurrences(of: "127.0.0.1:5999", with: "192.0.2.7:5060"), from: stranger)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 403 Forbidden"])
    }

    @Test func responseNotForUsIsDropped() throws {
        let h = try ProxyHarness()
        h.receive(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\n"
                + "Call-ID: z\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", from: h.node1)
        #expect(h.transport.take().isEmpty)
    }

    @Test func rportAndReceivedAreFilledInForTheCaller() throws {
        let h = try ProxyHarness()
        let invite = ProxyHarness.invite().replacingOccurrences(
            of: "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1", with: "Via: SIP/2.0/UDP 10.1.1.1:5070;rport;branch=z9hG4bKc1")
        h.receive(invite)
        let sent = h.transport.take()
        #expect(sent[0].to == h.caller)
        #expect(sent[1].text.headers("Via")[1] == "SIP/2.0/UDP 10.1.1.1:5070;rport=5999;branch=z9hG4bKc1;received=127.0.0.1")
    }

    @Test func transactionsAreForgottenAfterTheirTimers() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.core.activeTransactionCount == 2)  // both INVITE transactions, Accepted (RFC 6026 §7.1, §7.2)
        h.advance(.seconds(33))
        #expect(h.core.activeTransactionCount == 0)
    }

    @Test func finalResponseThatLostTheCallersViaIsAnsweredLocally() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        // A broken node answers with only our Via: §16.7 step 3 forbids forwarding it.
        let broken = ProxyHarness.response(to: fwd, 486, "Busy Here").replacingOccurrences(
            of: "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1\r\n", with: "")
        h.receive(broken, from: h.node1)
        let sent = h.transport.take()
        #expect(sent.map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "SIP/2.0 486 Busy Here"])
        #expect(sent[1].to == h.caller)
        #expect(sent[1].text.headers("Via") == ["SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKc1"])
    }

    @Test func finishedCallsAreFreedEvenWhileTheirCancelledTimersWait() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        weak var server = h.core.serverTransactions.values.first
        weak var client = h.core.clientTransactions.values.first
        #expect(server != nil && client != nil)
        // 180 arms Timer C (3 minutes); the 200 cancels it, but its wheel entry stays until then.
        h.receive(ProxyHarness.response(to: fwd, 180, "Ringing"), from: h.node1)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        h.advance(.seconds(1))
        #expect(client != nil, "the INVITE client transaction is Accepted (RFC 6026 §7.2) until Timer M")
        h.advance(.seconds(33))
        #expect(client == nil, "the client transaction ended with Timer M; nothing may keep it alive")
        #expect(server == nil, "the server transaction ended with Timer L; nothing may keep it alive")
    }

    @Test func finishedTransactionsKeepOnlyWhatAnswersRetransmissions() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        let invite = try #require(h.core.serverTransactions.values.first)
        #expect(invite.request != nil)
        h.receive(ProxyHarness.response(to: fwd, 180, "Ringing"), from: h.node1)
        #expect(invite.request != nil && invite.lastResponse != nil, "still proceeding: a retransmitted INVITE gets the 180")
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        _ = h.transport.take()
        // Accepted (RFC 6026): retransmitted INVITEs are absorbed, each 2xx brings its own bytes.
        #expect(invite.request == nil && invite.lastResponse == nil)
        #expect(invite.context.candidates.isEmpty, "no branch starts after a final response")
        let branch = try #require(h.core.clientTransactions.values.first)
        #expect(branch.request.readableBytes == 0 && branch.viaLine.isEmpty, "Accepted: it only passes 2xx retransmissions up")
        h.receive(ProxyHarness.invite())
        #expect(h.transport.take().isEmpty)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        // The BYE's transaction keeps its 200 for retransmitted BYEs (Timer J), not the BYE.
        let bye = ProxyHarness.bye
        h.receive(bye)
        let byeOut = h.transport.take()[0].text
        h.receive(ProxyHarness.response(to: byeOut, 200, "OK", toTag: nil), from: h.node1)
        let ok = h.transport.take()
        #expect(ok.map(\.firstLine) == ["SIP/2.0 200 OK"])
        let byeTransaction = try #require(h.core.serverTransactions.values.first { !$0.key.isInvite })
        #expect(byeTransaction.request == nil && byeTransaction.lastResponse != nil)
        h.receive(bye)
        #expect(h.transport.take().map(\.text) == ok.map(\.text))
        #expect(h.core.internalErrorCount == 0)
    }

    @Test func aRetransmittedFailureIsAckedAgainAfterTheRequestIsReleased() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite(extra: "Route: <sip:127.0.0.1:5060;lr>\r\n"))
        let fwd = h.transport.take()[1].text
        let busy = ProxyHarness.response(to: fwd, 486, "Busy Here")
        h.receive(busy, from: h.node1)
        let first = h.transport.take()
        #expect(first.map(\.firstLine) == ["ACK sip:+12125551212@127.0.0.1:5060 SIP/2.0", "SIP/2.0 486 Busy Here"])
        #expect(first[0].text.header("To") == "<sip:+12125551212@127.0.0.1:5060>;tag=node1")
        #expect(h.core.serverTransactions.values.first?.request == nil)
        #expect(h.core.serverTransactions.values.first?.callID == "call-1", "Timer H may still log it")
        // The node did not get the ACK and sends its 486 again: the same ACK goes back.
        h.receive(busy, from: h.node1)
        let again = h.transport.take()
        #expect(again.map(\.to) == [h.node1])
        #expect(again.map(\.text) == [first[0].text])
        #expect(h.core.internalErrorCount == 0)
    }

    @Test func aBranchGivenUpKeepsTheRequestForItsLateRinging() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let first = h.transport.take()[1].text
        h.advance(.milliseconds(2_020))
        let second = try #require(h.transport.take().last { $0.to == h.node2 })
        h.receive(ProxyHarness.response(to: second.text, 200, "OK", toTag: "node2"), from: h.node2)
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 200 OK"])
        // Node 1 rings after all: it is CANCELled with the INVITE's lines, though the caller
        // has its final answer.
        h.receive(ProxyHarness.response(to: first, 180, "Ringing"), from: h.node1)
        let cancel = h.transport.take()
        #expect(cancel.map(\.firstLine) == ["CANCEL sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
        #expect(cancel.first?.to == h.node1)
        #expect(cancel.first?.text.header("Call-ID") == "call-1")
        #expect(cancel.first?.text.header("CSeq") == "1 CANCEL")
        #expect(cancel.first?.text.headers("Via") == [first.headers("Via")[0]])
        #expect(h.core.internalErrorCount == 0)
    }

    @Test func nodeLoadCountsAnsweredCallsUntilTheirByeAndRefusedOnesNotAtAll() throws {
        let h = try ProxyHarness()
        h.receive(ProxyHarness.invite())
        let fwd = h.transport.take()[1].text
        #expect(h.core.dispatcher.activeCalls["n1"] == 1)
        h.receive(ProxyHarness.response(to: fwd, 200, "OK"), from: h.node1)
        #expect(h.core.dispatcher.activeCalls["n1"] == 1)
        h.receive(
            "BYE sip:node@127.0.0.1:5071 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKb9\r\n"
                + "Route: <sip:127.0.0.1:5060;lr>\r\nFrom: <sip:caller@127.0.0.1:5999>;tag=from1\r\n"
                + "To: <sip:+12125551212@127.0.0.1:5060>;tag=node1\r\nCall-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
        #expect(h.core.dispatcher.activeCalls["n1"] == 0)
        h.receive(ProxyHarness.invite(callID: "call-2", branch: "z9hG4bKc2"))
        let second = h.transport.take().last!
        h.receive(ProxyHarness.response(to: second.text, 486, "Busy Here"), from: second.to)
        #expect(h.core.dispatcher.activeCalls.values.reduce(0, +) == 0)
        #expect(h.core.dispatcher.routedCalls.values.reduce(0, +) == 2)
    }
}

/// `proxy.max_transactions`: the transaction table is bounded.
@Suite("Bounded transaction table")
struct TransactionTableBoundTests {
    static let yaml = ProxyHarness.yaml.replacingOccurrences(
        of: "  trusted: [ \"127.0.0.0/8\" ]", with: "  trusted: [ \"127.0.0.0/8\" ]\n  max_transactions: 3")

    @Test func aFullTableAnswersNewRequests503WithRetryAfterAndHasRoomAgainWhenTransactionsEnd() throws {
        let h = try ProxyHarness(yaml: Self.yaml)
        var forwarded: [String] = []
        for i in 1...3 {
            h.receive(ProxyHarness.invite(callID: "call-\(i)", branch: "z9hG4bKc\(i)"))
            let sent = h.transport.take()
            #expect(sent.map(\.firstLine) == ["SIP/2.0 100 Trying", "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
            forwarded.append(sent[1].text)
        }
        // The fourth new request: refused statelessly, not forwarded.
        h.receive(ProxyHarness.invite(callID: "call-4", branch: "z9hG4bKc4"))
        let refused = h.transport.take()
        #expect(refused.map(\.firstLine) == ["SIP/2.0 503 Service Unavailable"])
        #expect(refused.first?.to == h.caller)
        #expect(refused.first?.text.header("Retry-After") == "5")
        // A retransmission of a request in the table is still absorbed by its transaction.
        h.receive(ProxyHarness.invite(callID: "call-1", branch: "z9hG4bKc1"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 100 Trying"])
        // The nodes answer; the transactions end (Timer H / I) and make room.
        for f in forwarded { h.receive(ProxyHarness.response(to: f, 486, "Busy Here"), from: h.node1) }
        _ = h.transport.take()
        h.advance(.seconds(40))
        _ = h.transport.take()
        h.receive(ProxyHarness.invite(callID: "call-5", branch: "z9hG4bKc5"))
        #expect(h.transport.take().map(\.firstLine) == ["SIP/2.0 100 Trying", "INVITE sip:+12125551212@127.0.0.1:5060 SIP/2.0"])
    }
}
