import ESL
import Testing

@Suite("ESL client connection state machine")
struct ESLClientStateMachineTests {
    @Test("banner, auth, then replies matched in order and events passed through")
    func happyPath() {
        var m = ESLClientStateMachine()
        #expect(m.commandSubmitted() == .rejectCommand(ESLError(.notConnected, "not authenticated yet")))
        #expect(m.frameReceived(.authRequest) == .sendAuth)
        #expect(m.state == .authenticating)
        #expect(m.frameReceived(.commandReply("+OK accepted")) == .authenticated)
        #expect(m.commandSubmitted() == .sendCommand)
        #expect(m.commandSubmitted() == .sendCommand)
        #expect(m.state == .ready(inFlight: 2))
        let event = ESLFrame(headers: ["Content-Type": "text/event-plain"], body: "Event-Name: HEARTBEAT\n\n")
        #expect(m.frameReceived(event) == .deliverEvent(event))
        let reply = ESLFrame.apiResponse("+OK\n")
        #expect(m.frameReceived(reply) == .completeCommand(reply))
        #expect(m.frameReceived(.commandReply("-ERR nope")) == .completeCommand(.commandReply("-ERR nope")))
        #expect(m.state == .ready(inFlight: 0))
        #expect(m.frameReceived(ESLFrame(headers: ["Content-Type": "log/data"])) == .none)
    }

    @Test("a wrong password closes with authenticationFailed")
    func badPassword() {
        var m = ESLClientStateMachine()
        _ = m.frameReceived(.authRequest)
        guard case .close(let error) = m.frameReceived(.commandReply("-ERR invalid")) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .authenticationFailed)
        #expect(m.state == .closed)
        #expect(m.commandSubmitted() == .rejectCommand(ESLError(.connectionClosed, "connection is closed")))
    }

    @Test("a reply with nothing in flight is a protocol error that closes the connection")
    func unexpectedReply() {
        var m = ESLClientStateMachine()
        _ = m.frameReceived(.authRequest)
        _ = m.frameReceived(.commandReply("+OK accepted"))
        guard case .close(let error) = m.frameReceived(.commandReply("+OK")) else {
            Issue.record("expected close")
            return
        }
        #expect(error.code == .unexpectedReply)
    }

    @Test("rude rejection, disconnect notice and a dropped socket close exactly once")
    func closes() {
        var m = ESLClientStateMachine()
        guard case .close(let e1) = m.frameReceived(.rudeRejection) else {
            Issue.record("expected close")
            return
        }
        #expect(e1.code == .rejected)
        var n = ESLClientStateMachine()
        _ = n.frameReceived(.authRequest)
        _ = n.frameReceived(.commandReply("+OK accepted"))
        _ = n.commandSubmitted()
        guard case .close(let e2) = n.frameReceived(.disconnectNotice) else {
            Issue.record("expected close")
            return
        }
        #expect(e2.code == .connectionClosed)
        #expect(n.connectionClosed(ESLError(.connectionClosed, "x")) == .none)
        var o = ESLClientStateMachine()
        #expect(o.frameReceived(.commandReply("+OK")) == .close(ESLError(.unexpectedReply, "expected auth/request, got command/reply")))
    }
}
