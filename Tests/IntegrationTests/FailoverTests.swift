import Testing
import TestSupport

extension Integration {
    /// Serial failover (RFC 3261 §16.7): a node that does not answer within invite_timeout, or
    /// answers with a retry_on code, costs the caller time but not the call.
    @Suite("Failover to the next node", .serialized, .timeLimit(.minutes(1)))
    struct FailoverTests {
        /// How the dead node looks from the proxy.
        enum DeadNode: String, CaseIterable, Sendable {
            /// A bound UDP socket that never answers: a hung or unreachable host.
            case blackhole
            /// Nothing bound: the kernel answers ICMP port unreachable.
            case closedPort
        }

        @Test("a dead node is failed over after invite_timeout and no call fails", arguments: DeadNode.allCases)
        func deadBackendIsFailedOverWithNoFailedCall(deadNode: DeadNode) async throws {
            let dir = try TemporaryDirectory()
            let live = try await Sipp.startUAS(.fixture("uas.xml"), name: "live", in: dir)
            let deadPort = try FreePort.next()
            let blackhole = deadNode == .blackhole ? try SIPUDPClient(port: deadPort) : nil
            let proxy = try await SwitchyardProxy.start(
                nodePorts: [deadPort, live.port], failover: .init(inviteTimeout: "1s", maxAttempts: 2, holdDown: "5s"), in: dir
            )

            let calls = 20
            let result = try await Sipp.runUAC(
                .benchCaller(holdMilliseconds: 50), targetPort: proxy.port, calls: calls, rate: 10, in: dir
            )
            await live.stop()
            proxy.stop()

            let context = "\(result)\n\(proxy.logTail())"
            #expect(result.successfulCalls == calls, "every call completes on the live node: \(context)")
            #expect(result.failedCalls == 0, "no call fails: \(context)")
            #expect(live.invitesReceived == calls, "the live node ends up with every call: \(live.messageCounts)")
            if let blackhole {
                let invites = blackhole.drain().filter { SIPTestMessages.firstLine($0).hasPrefix("INVITE ") }
                #expect(!invites.isEmpty, "round robin did send INVITEs to the dead node first, so the calls were failed over")
            }
        }

        @Test("a node's 503 is retried on the next node and the call completes there")
        func serviceUnavailableFromNodeIsRetriedOnNextNode() async throws {
            let dir = try TemporaryDirectory()
            let overloaded = try await Sipp.startUAS(.fixture("uas-503.xml"), name: "overloaded", in: dir)
            let healthy = try await Sipp.startUAS(.fixture("uas.xml"), name: "healthy", in: dir)
            let proxy = try await SwitchyardProxy.start(
                nodePorts: [overloaded.port, healthy.port], failover: .init(retryOn: [503], maxAttempts: 2, holdDown: "5s"), in: dir
            )

            let calls = 10
            let result = try await Sipp.runUAC(
                .benchCaller(holdMilliseconds: 50), targetPort: proxy.port, calls: calls, rate: 10, in: dir
            )
            await overloaded.stop()
            await healthy.stop()
            proxy.stop()

            let context = "\(result)\n\(proxy.logTail())"
            #expect(result.successfulCalls == calls, "every call completes on the healthy node: \(context)")
            #expect(result.failedCalls == 0, "no call fails, the caller never sees the 503: \(context)")
            #expect(healthy.invitesReceived == calls, "the healthy node ends up with every call: \(healthy.messageCounts)")
            let tried = overloaded.invitesReceived
            #expect(tried >= 1, "round robin tried the overloaded node first at least once: \(overloaded.messageCounts)")
            #expect(overloaded.received("ACK") == tried, "the proxy ACKs every 503 it absorbs: \(overloaded.messageCounts)")
        }
    }
}
