import Testing

@testable import SIPCore

/// Every transition of the RFC 3261 §17 machines, driven event by event with the actions asserted.
@Suite struct TransactionStateMachineTests {
    let t = TimerValues.rfc3261

    @Test func inviteClientOverUDPRetransmitsWithDoublingTimerAThenTimesOutOnB() {
        var ict = InviteClientTransaction(reliable: false)
        #expect(ict.start() == [.transmitRequest, .startTimer(.a, .milliseconds(500)), .startTimer(.b, .seconds(32))])
        #expect(ict.timerFired(.a) == [.transmitRequest, .startTimer(.a, .seconds(1))])
        #expect(ict.timerFired(.a) == [.transmitRequest, .startTimer(.a, .seconds(2))])
        #expect(ict.timerFired(.b) == [.cancelTimer(.a), .timedOut, .terminate])
        #expect(ict.state == .terminated)
        #expect(ict.timerFired(.a) == [])
    }

    @Test func inviteClientOverTCPDoesNotRetransmit() {
        var ict = InviteClientTransaction(reliable: true)
        #expect(ict.start() == [.transmitRequest, .startTimer(.b, .seconds(32))])
        #expect(ict.responseReceived(statusCode: 486) == [.cancelTimer(.b), .sendAck, .deliverResponse, .terminate])
    }

    @Test func inviteClientProvisionalThenFailureAcksAndWaitsTimerD() {
        var ict = InviteClientTransaction(reliable: false)
        _ = ict.start()
        #expect(ict.responseReceived(statusCode: 180) == [.cancelTimer(.a), .cancelTimer(.b), .deliverResponse])
        #expect(ict.state == .proceeding)
        #expect(ict.responseReceived(statusCode: 183) == [.deliverResponse])
        #expect(ict.responseReceived(statusCode: 503) == [.sendAck, .deliverResponse, .startTimer(.d, .seconds(32))])
        #expect(ict.state == .completed)
        // A retransmitted final is ACKed again but not passed up (§17.1.1.2).
        #expect(ict.responseReceived(statusCode: 503) == [.sendAck])
        #expect(ict.timerFired(.d) == [.terminate])
    }

    @Test func inviteClient2xxEntersAcceptedAndDeliversRetransmissionsUntilTimerM() {
        var ict = InviteClientTransaction(reliable: false)
        _ = ict.start()
        // RFC 6026 §7.2: Accepted, not Terminated, so 2xx retransmissions still match.
        #expect(ict.responseReceived(statusCode: 200) == [.cancelTimer(.a), .cancelTimer(.b), .deliverResponse, .startTimer(.m, .seconds(32))])
        #expect(ict.state == .accepted)
        #expect(ict.responseReceived(statusCode: 200) == [.deliverResponse])
        #expect(ict.responseReceived(statusCode: 180) == [])
        #expect(ict.responseReceived(statusCode: 486) == [])
        #expect(ict.timerFired(.m) == [.terminate])
        #expect(ict.state == .terminated)
        #expect(ict.responseReceived(statusCode: 200) == [])
    }

    @Test func inviteClientTransportErrorFailsAtOnce() {
        var ict = InviteClientTransaction(reliable: true)
        _ = ict.start()
        #expect(ict.transportFailed() == [.cancelTimer(.a), .cancelTimer(.b), .timedOut, .terminate])
    }

    @Test func nonInviteClientCapsTimerEAtT2AndTimesOutOnF() {
        var nict = NonInviteClientTransaction(reliable: false)
        #expect(nict.start() == [.transmitRequest, .startTimer(.e, .milliseconds(500)), .startTimer(.f, .seconds(32))])
        #expect(nict.timerFired(.e) == [.transmitRequest, .startTimer(.e, .seconds(1))])
        #expect(nict.timerFired(.e) == [.transmitRequest, .startTimer(.e, .seconds(2))])
        #expect(nict.timerFired(.e) == [.transmitRequest, .startTimer(.e, .seconds(4))])
        #expect(nict.timerFired(.e) == [.transmitRequest, .startTimer(.e, .seconds(4))])
        #expect(nict.timerFired(.f) == [.cancelTimer(.e), .timedOut, .terminate])
    }

    @Test func nonInviteClientProceedingRetransmitsAtT2AndCompletesWithTimerK() {
        var nict = NonInviteClientTransaction(reliable: false)
        _ = nict.start()
        #expect(nict.responseReceived(statusCode: 100) == [.deliverResponse])
        #expect(nict.timerFired(.e) == [.transmitRequest, .startTimer(.e, .seconds(4))])
        #expect(nict.responseReceived(statusCode: 200) == [.cancelTimer(.e), .cancelTimer(.f), .deliverResponse, .startTimer(.k, .seconds(5))])
        #expect(nict.responseReceived(statusCode: 200) == [])
        #expect(nict.timerFired(.k) == [.terminate])
    }

    @Test func inviteServerRetransmitsLastResponseAndWaitsForAck() {
        var ist = InviteServerTransaction(reliable: false)
        #expect(ist.responseSent(statusCode: 100) == [.transmitResponse])
        #expect(ist.requestRetransmitted() == [.transmitResponse])
        #expect(ist.responseSent(statusCode: 486) == [.transmitResponse, .startTimer(.g, .milliseconds(500)), .startTimer(.h, .seconds(32))])
        #expect(ist.requestRetransmitted() == [.transmitResponse])
        #expect(ist.timerFired(.g) == [.transmitResponse, .startTimer(.g, .seconds(1))])
        #expect(ist.ackReceived() == [.cancelTimer(.g), .cancelTimer(.h), .startTimer(.i, .seconds(5))])
        #expect(ist.state == .confirmed)
        #expect(ist.requestRetransmitted() == [])
        #expect(ist.timerFired(.i) == [.terminate])
    }

    @Test func inviteServerWithoutAckGivesUpOnTimerH() {
        var ist = InviteServerTransaction(reliable: false)
        _ = ist.responseSent(statusCode: 503)
        #expect(ist.timerFired(.h) == [.cancelTimer(.g), .ackNotReceived, .terminate])
    }

    @Test func inviteServer2xxEntersAcceptedAndAbsorbsRetransmits() {
        var ist = InviteServerTransaction(reliable: false)
        #expect(ist.responseSent(statusCode: 200) == [.transmitResponse, .startTimer(.l, .seconds(32))])
        #expect(ist.state == .accepted)
        #expect(ist.requestRetransmitted() == [])
        #expect(ist.responseSent(statusCode: 200) == [.transmitResponse])
        #expect(ist.responseSent(statusCode: 486) == [])
        #expect(ist.timerFired(.l) == [.terminate])
    }

    @Test func nonInviteServerAnswersRetransmitsUntilTimerJ() {
        var nist = NonInviteServerTransaction(reliable: false)
        #expect(nist.requestRetransmitted() == [])
        #expect(nist.responseSent(statusCode: 180) == [.transmitResponse])
        #expect(nist.requestRetransmitted() == [.transmitResponse])
        #expect(nist.responseSent(statusCode: 200) == [.transmitResponse, .startTimer(.j, .seconds(32))])
        #expect(nist.requestRetransmitted() == [.transmitResponse])
        #expect(nist.responseSent(statusCode: 500) == [])
        #expect(nist.timerFired(.j) == [.terminate])
    }

    /// `retransmitsResponse` lets the proxy free a transaction's last response: it must be true
    /// in every state where a retransmitted request or a timer would send that response again.
    /// Every sequence of up to four events, over both transports and both kinds.
    @Test func aServerTransactionSaysWhenItsLastResponseCanBeFreed() {
        enum Event: CaseIterable { case trying, ringing, ok, busy, retransmit, ack, timer }
        func apply(_ e: Event, _ m: inout ServerTransaction) {
            switch e {
            case .trying: _ = m.responseSent(statusCode: 100)
            case .ringing: _ = m.responseSent(statusCode: 180)
            case .ok: _ = m.responseSent(statusCode: 200)
            case .busy: _ = m.responseSent(statusCode: 486)
            case .retransmit: _ = m.requestRetransmitted()
            case .ack: _ = m.ackReceived()
            case .timer: for timer in TransactionTimer.allCases { _ = m.timerFired(timer) }
            }
        }
        /// Whether anything but a new response (a retransmitted request, any timer) sends the last one.
        func resends(_ m: ServerTransaction) -> Bool {
            var copy = m
            if copy.requestRetransmitted().contains(.transmitResponse) { return true }
            return TransactionTimer.allCases.contains { timer in
                var copy = m
                return copy.timerFired(timer).contains(.transmitResponse)
            }
        }
        var level: [[Event]] = [[]]
        var sequences = level
        for _ in 0..<4 {
            level = level.flatMap { s in Event.allCases.map { s + [$0] } }
            sequences += level
        }
        var checked = 0
        for isInvite in [true, false] {
            for reliable in [true, false] {
                for sequence in sequences {
                    var m = ServerTransaction(isInvite: isInvite, reliable: reliable)
                    for e in sequence { apply(e, &m) }
                    if !m.retransmitsResponse {
                        #expect(!resends(m), "\(isInvite ? "INVITE" : "non-INVITE") after \(sequence) would resend a freed response")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == 4 * (1 + 7 + 49 + 343 + 2401))
        // Where a resend can come, the bytes are kept.
        var invite = ServerTransaction(isInvite: true, reliable: false)
        _ = invite.responseSent(statusCode: 486)
        #expect(invite.retransmitsResponse)
        _ = invite.ackReceived()
        #expect(!invite.retransmitsResponse)
        var accepted = ServerTransaction(isInvite: true, reliable: false)
        _ = accepted.responseSent(statusCode: 180)
        #expect(accepted.retransmitsResponse)
        _ = accepted.responseSent(statusCode: 200)
        #expect(!accepted.retransmitsResponse)
        var bye = ServerTransaction(isInvite: false, reliable: false)
        _ = bye.responseSent(statusCode: 200)
        #expect(bye.retransmitsResponse)
    }

    @Test func nonInviteServerOverTCPTerminatesOnFinal() {
        var nist = NonInviteServerTransaction(reliable: true)
        #expect(nist.responseSent(statusCode: 200) == [.transmitResponse, .terminate])
    }

    @Test func anAbandonedInviteBranchStopsRetransmittingButStillAcksALateFailure() {
        var ict = InviteClientTransaction(reliable: false)
        _ = ict.start()
        #expect(ict.abandon() == [.cancelTimer(.a), .cancelTimer(.b)])
        #expect(ict.state == .abandoned)
        #expect(ict.timerFired(.a) == [] && ict.timerFired(.b) == [], "no retransmission, no timeout")
        #expect(ict.responseReceived(statusCode: 180) == [.deliverResponse], "the TU CANCELs a late ringing")
        #expect(ict.responseReceived(statusCode: 486) == [.sendAck], "a late failure is ACKed, every time")
        #expect(ict.responseReceived(statusCode: 486) == [.sendAck])
        #expect(ict.responseReceived(statusCode: 200) == [.deliverResponse], "the TU reports a late answer")
        #expect(ict.transportFailed() == [])
        // Ringing already: Timer A and B were stopped by the provisional.
        var ringing = InviteClientTransaction(reliable: true)
        _ = ringing.start()
        _ = ringing.responseReceived(statusCode: 180)
        #expect(ringing.abandon() == [])
        #expect(ringing.state == .abandoned)
        // After a final response there is nothing to give up.
        var done = InviteClientTransaction(reliable: false)
        _ = done.start()
        _ = done.responseReceived(statusCode: 200)
        #expect(done.abandon() == [] && done.state == .accepted)
    }

    @Test func anAbandonedNonInviteBranchAbsorbsEverything() {
        var nict = NonInviteClientTransaction(reliable: false)
        _ = nict.start()
        #expect(nict.abandon() == [.cancelTimer(.e), .cancelTimer(.f)])
        #expect(nict.timerFired(.e) == [] && nict.timerFired(.f) == [])
        #expect(nict.responseReceived(statusCode: 200) == [])
        var reliable = NonInviteClientTransaction(reliable: true)
        _ = reliable.start()
        #expect(reliable.abandon() == [.cancelTimer(.f)])
    }

    @Test func aProxysInviteServerTransactionLetsEvery2xxThroughAfterItsFinalResponse() {
        // The proxy answered 487 itself (CANCEL) while the node answered: its 2xx must reach the
        // caller, who ACKs and BYEs it (§16.7 step 10); a second non-2xx is not sent.
        var ist = InviteServerTransaction(reliable: false)
        _ = ist.responseSent(statusCode: 487)
        #expect(ist.responseSent(statusCode: 200) == [.transmitResponse])
        #expect(ist.responseSent(statusCode: 486) == [])
        _ = ist.ackReceived()
        #expect(ist.responseSent(statusCode: 200) == [.transmitResponse], "also once confirmed")
        // A non-INVITE transaction has one final response, whatever comes after it (§17.2.2).
        var nist = NonInviteServerTransaction(reliable: false)
        _ = nist.responseSent(statusCode: 408)
        #expect(nist.responseSent(statusCode: 200) == [])
    }

    @Test func theEnumsDriveEitherKind() {
        var server = ServerTransaction(isInvite: false, reliable: true)
        #expect(!server.isInvite && !server.hasFinalResponse)
        #expect(server.ackReceived() == [], "a non-INVITE transaction has no ACK")
        #expect(server.responseSent(statusCode: 200) == [.transmitResponse, .terminate])
        #expect(server.hasFinalResponse)
        var client = ClientTransaction(isInvite: true, reliable: false)
        #expect(client.isInvite && !client.isAbandoned)
        #expect(client.start() == [.transmitRequest, .startTimer(.a, .milliseconds(500)), .startTimer(.b, .seconds(32))])
        _ = client.abandon()
        #expect(client.isAbandoned)
    }
}

@Suite struct TransactionActionsTests {
    @Test func actionsBehaveAsAnArrayOfThemInlineAndBeyond() {
        let all: [TransactionAction] = [
            .transmitRequest, .cancelTimer(.a), .startTimer(.b, .seconds(32)), .deliverResponse, .sendAck, .terminate, .timedOut, .ackNotReceived,
        ]
        for n in 0...all.count {
            var actions: TransactionActions = []
            for a in all.prefix(n) { actions.append(a) }
            #expect(Array(actions) == Array(all.prefix(n)))
            #expect(actions.count == n)
            var joined: TransactionActions = [.transmitResponse]
            joined += actions
            #expect(Array(joined) == [.transmitResponse] + Array(all.prefix(n)))
            var copy = TransactionActions()
            for a in actions { copy.append(a) }
            #expect(copy == actions && copy.hashValue == actions.hashValue)
        }
    }
}
