import FSEmulator
import Testing

@Suite("originate parsing and the emulator's outcome model")
struct OriginateCommandTests {
    @Test("global and leg variables, dial string, destination and application")
    func parsesVariables() throws {
        let c = try OriginateCommand.parse(
            "{origination_uuid=abc,sip_h_X-Call-ID=c_1,originate_timeout=30,note='a,b'}[leg=1]sofia/gateway/gw1/+15551234567 &park()")
        #expect(c.variables["origination_uuid"] == "abc")
        #expect(c.variables["sip_h_X-Call-ID"] == "c_1")
        #expect(c.variables["note"] == "a,b")
        #expect(c.variables["leg"] == "1")
        #expect(c.timeoutSeconds == 30)
        #expect(c.dialString == "sofia/gateway/gw1/+15551234567")
        #expect(c.destination == "+15551234567")
        #expect(c.application == "&park()")
    }

    @Test("a user@host dial string and the positional timeout")
    func positionalTimeout() throws {
        let c = try OriginateCommand.parse("sofia/external/1000@10.0.0.1 &echo() XML default Bob 1000 15")
        #expect(c.destination == "1000")
        #expect(c.timeoutSeconds == 15)
    }

    @Test(
        "bad originates get FreeSWITCH's -ERR texts",
        arguments: [
            ("{a=1sofia/gateway/gw/1 &park()", "-ERR INVALID_URL"),
            ("foo/bar/1 &park()", "-ERR CHAN_NOT_IMPLEMENTED"),
        ])
    func rejects(input: String, error: String) {
        #expect(throws: OriginateCommand.ParseError.invalid(error)) { try OriginateCommand.parse(input) }
    }

    @Test("the outcome follows the number's last four digits, and fsnode_outcome overrides it")
    func outcomes() {
        #expect(CallOutcome.forDestination("+15551230486") == .busy)
        #expect(CallOutcome.forDestination("+15551230408") == .noAnswer)
        #expect(CallOutcome.forDestination("+15551230503") == .failed)
        #expect(CallOutcome.forDestination("+15551230603") == .rejected)
        #expect(CallOutcome.forDestination("+15551230404") == .unallocated)
        #expect(CallOutcome.forDestination("+15551234567") == .answer)
        #expect(CallOutcome.forDestination("+15551234567", override: "busy") == .busy)
    }
}
