import Testing
import TestSupport

extension Integration {
    /// Garbage, broken and truncated SIP against a running proxy, over UDP and TCP
    /// (Fixtures/sip/malformed and its expectations.json).
    @Suite("Malformed input", .serialized, .timeLimit(.minutes(1)))
    struct MalformedInputTests {
        struct Expectation: Decodable, Sendable {
            var expect: String?
        }

        /// The largest UDP payload over IPv4: bigger fixtures cannot be sent as one datagram.
        static let maxDatagram = 65_507

        @Test("malformed, truncated and random input leaves the proxy serving over UDP and TCP")
        func malformedInputLeavesProxyServing() async throws {
            let dir = try TemporaryDirectory()
            // A node that never answers: input the proxy does take as a valid INVITE goes nowhere real.
            let node = try SIPUDPClient()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.localPort], failover: .init(inviteTimeout: "1s"), in: dir)
            let sender = try SIPUDPClient()
            let probe = try SIPUDPClient()
            var sent = 0

            // Every few datagrams, one OPTIONS round trip: the proxy keeps up and keeps answering.
            func send(_ datagram: [UInt8]) throws {
                guard datagram.count <= Self.maxDatagram else { return }
                try sender.send(datagram, to: proxy.port)
                sent += 1
                if sent % 25 == 0 {
                    let reply = try proxy.options(over: probe, timeout: .seconds(2))
                    #expect(reply.flatMap(SIPTestMessages.statusCode) == 200, "OPTIONS answered after \(sent) bad datagrams\n\(proxy.logTail())")
                }
            }

            let malformed = try Fixtures.files(in: "sip/malformed", withExtension: "sip")
            for file in malformed { try send(try Fixtures.bytes(file)) }

            let invite = try Fixtures.bytes("sip/valid/invite-sdp.sip")
            for length in stride(from: 1, to: invite.count, by: 7) { try send(Array(invite.prefix(length))) }

            var random = SeededRandomNumberGenerator(seed: 0x5317_C4A1)
            for i in 0..<200 {
                if i.isMultiple(of: 2) {
                    try send((0..<Int.random(in: 1...1400, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                } else {
                    // A valid INVITE with a few bytes replaced by SIP-significant or random ones.
                    var mutated = invite
                    let specials: [UInt8] = [0, 9, 10, 13, 32, 44, 58, 59, 60, 62, 255]
                    for _ in 0..<Int.random(in: 1...6, using: &random) {
                        let at = Int.random(in: 0..<mutated.count, using: &random)
                        let special = Bool.random(using: &random)
                        mutated[at] = special ? specials.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                    }
                    if Bool.random(using: &random) { mutated = Array(mutated.prefix(Int.random(in: 1...mutated.count, using: &random))) }
                    try send(mutated)
                }
            }

            // The same malformed files over TCP, one connection each; resets are fine.
            for file in malformed {
                let connection = try SIPTCPClient(connectingTo: proxy.port)
                connection.write(try Fixtures.bytes(file))
                _ = connection.read(timeout: .milliseconds(50))
            }

            #expect(sent > 300, "a few hundred datagrams were sent (\(sent))")
            let udpReply = try proxy.options(over: probe, timeout: .seconds(2))
            #expect(udpReply.flatMap(SIPTestMessages.statusCode) == 200, "OPTIONS over UDP still answered 200\n\(proxy.logTail())")
            let tcpReply = try proxy.optionsOverTCP(timeout: .seconds(2))
            #expect(
                SIPTestMessages.statusCode(tcpReply) == 200,
                "OPTIONS over TCP still answered 200, got '\(SIPTestMessages.firstLine(tcpReply))'\n\(proxy.logTail())"
            )
            #expect(proxy.isRunning, "the proxy process is still alive\n\(proxy.logTail())")
            #expect(proxy.stop() == .exited(0), "and exits cleanly on SIGTERM\n\(proxy.logTail())")
        }

        @Test("each malformed request over UDP gets the response expectations.json names, or none for drop")
        func malformedRequestsGetTheExpectedResponseOverUDP() async throws {
            let dir = try TemporaryDirectory()
            let node = try SIPUDPClient()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.localPort], failover: .init(inviteTimeout: "1s"), in: dir)
            let expectations: [String: Expectation] = try Fixtures.json("sip/expectations.json")

            var disagreements: [String] = []
            for file in try Fixtures.files(in: "sip/malformed", withExtension: "sip") {
                let key = String(file.dropFirst("sip/".count))
                guard let expected = expectations[key]?.expect else {
                    Issue.record("\(key) has no \"expect\" in Fixtures/sip/expectations.json")
                    continue
                }
                let bytes = try Fixtures.bytes(file)
                // Over 65,507 bytes cannot be one UDP datagram (the sender gets EMSGSIZE): only "drop" makes sense.
                guard bytes.count <= Self.maxDatagram else {
                    if expected != "drop" {
                        disagreements.append("\(key): expected \(expected), but \(bytes.count) bytes cannot be sent as one UDP datagram")
                    }
                    continue
                }
                // A fresh socket per file: a late reply to one file cannot be taken for another's.
                let client = try SIPUDPClient()
                let wait: Duration = expected == "drop" ? .milliseconds(300) : .seconds(2)
                let reply = try client.request(bytes, to: proxy.port, timeout: wait)
                let got = reply.map(SIPTestMessages.firstLine)
                let agrees = expected == "drop" ? reply == nil : got?.hasPrefix("SIP/2.0 \(expected) ") == true
                if !agrees {
                    disagreements.append("\(key): expected \(expected), got \(got.map { "'\($0)'" } ?? "no response within \(wait)")")
                }
            }

            // Reported, not weakened: each line is a fixture where either the proxy or
            // expectations.json is wrong; which one is for the owners of the parser to decide.
            #expect(
                disagreements.isEmpty,
                """
                expectations.json and the proxy disagree on \(disagreements.count) malformed fixture(s) \
                (the code or the expectation is wrong):
                \(disagreements.joined(separator: "\n"))
                """
            )
            #expect(proxy.isRunning, "the proxy survived the malformed requests\n\(proxy.logTail())")
        }
    }
}
