import Testing
import TestSupport

extension Integration {
    /// Whole calls through a real `switchyard proxy` between sipp callers and sipp nodes, each test on
    /// its own free loopback ports.
    @Suite("Call flows through the proxy", .serialized, .timeLimit(.minutes(1)))
    struct CallFlowTests {
        @Test("calls complete through the proxy with ACK and BYE, round robin over both nodes", arguments: [Sipp.Transport.udp, .tcp])
        func callsCompleteThroughProxyWithAckAndBye(callerTransport: Sipp.Transport) async throws {
            let dir = try TemporaryDirectory()
            let node1 = try await Sipp.startUAS(.fixture("uas.xml"), name: "node1", in: dir)
            let node2 = try await Sipp.startUAS(.fixture("uas.xml"), name: "node2", in: dir)
            let proxy = try await SwitchyardProxy.start(nodePorts: [node1.port, node2.port], in: dir)

            let calls = 50
            let result = try await Sipp.runUAC(
                .benchCaller(holdMilliseconds: 50), targetPort: proxy.port, transport: callerTransport, calls: calls, rate: 25, in: dir
            )
            await node1.stop()
            await node2.stop()
            let proxyExit = proxy.stop()

            let context = "\(result)\n\(proxy.logTail())"
            #expect(result.successfulCalls == calls, "every call completes: \(context)")
            #expect(result.failedCalls == 0, "no call fails: \(context)")
            #expect(result.exitStatus == 0, "sipp exits 0 when all calls succeed: \(context)")
            let split = (node1.invitesReceived, node2.invitesReceived)
            #expect(split.0 + split.1 == calls, "each call's INVITE reaches exactly one node once: \(split)")
            #expect(abs(split.0 - split.1) <= 1, "round robin splits the INVITEs evenly: \(split)")
            #expect(proxyExit == .exited(0), "the proxy exits cleanly on SIGTERM: \(proxy.logTail())")
        }

        @Test("a CANCEL before the answer reaches the node and the call ends as cancelled (487)", arguments: [Sipp.Transport.udp, .tcp])
        func cancelBeforeAnswerReachesNode(callerTransport: Sipp.Transport) async throws {
            let dir = try TemporaryDirectory()
            let node1 = try await Sipp.startUAS(.fixture("uas-ring-long.xml"), name: "node1", in: dir)
            let node2 = try await Sipp.startUAS(.fixture("uas-ring-long.xml"), name: "node2", in: dir)
            let proxy = try await SwitchyardProxy.start(nodePorts: [node1.port, node2.port], in: dir)

            let calls = 10
            let result = try await Sipp.runUAC(
                .fixture("uac-cancel.xml"), targetPort: proxy.port, transport: callerTransport, calls: calls, rate: 10, in: dir
            )
            await node1.stop()
            await node2.stop()
            proxy.stop()

            let context = "\(result)\n\(node1.diagnostics)\n\(proxy.logTail())"
            #expect(result.successfulCalls == calls, "every caller sees 200 for its CANCEL and 487 for its INVITE: \(context)")
            #expect(result.failedCalls == 0, "no call fails: \(context)")
            let counts = [node1.messageCounts, node2.messageCounts]
            #expect(node1.received("CANCEL") + node2.received("CANCEL") == calls, "each CANCEL is forwarded to the ringing node: \(counts)")
            #expect(node1.received("ACK") + node2.received("ACK") == calls, "the proxy ACKs each node's 487: \(counts)")
        }

        @Test("a node's 486 Busy Here reaches the caller, and busy is not failed over", arguments: [Sipp.Transport.udp, .tcp])
        func busyFromNodeReachesCaller(callerTransport: Sipp.Transport) async throws {
            let dir = try TemporaryDirectory()
            let node1 = try await Sipp.startUAS(.fixture("uas-486.xml"), name: "node1", in: dir)
            let node2 = try await Sipp.startUAS(.fixture("uas-486.xml"), name: "node2", in: dir)
            let proxy = try await SwitchyardProxy.start(nodePorts: [node1.port, node2.port], in: dir)

            let calls = 10
            let result = try await Sipp.runUAC(
                .fixture("uac-486.xml"), targetPort: proxy.port, transport: callerTransport, calls: calls, rate: 10, in: dir
            )
            await node1.stop()
            await node2.stop()
            proxy.stop()

            let context = "\(result)\n\(proxy.logTail())"
            #expect(result.successfulCalls == calls, "every caller gets the 486: \(context)")
            #expect(result.failedCalls == 0, "no call fails: \(context)")
            let counts = [node1.messageCounts, node2.messageCounts]
            #expect(
                node1.invitesReceived + node2.invitesReceived == calls, "486 is not in retry_on, so no INVITE goes to a second node: \(counts)"
            )
            #expect(node1.received("ACK") + node2.received("ACK") == calls, "the proxy ACKs each node's 486: \(counts)")
        }
    }
}
