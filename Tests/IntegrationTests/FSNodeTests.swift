import Testing
import TestSupport

extension Integration {
    /// sipp calls into `switchyard fsnode` processes, directly and through the proxy.
    @Suite("The emulated FreeSWITCH node over SIP", .serialized, .timeLimit(.minutes(1)))
    struct FSNodeTests {
        @Test("sipp calls into the node complete with INVITE/ACK/BYE, and the node's channel count returns to zero")
        func callsIntoNode() async throws {
            let dir = try TemporaryDirectory()
            let node = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let calls = 20
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 100), targetPort: node.sipPort, calls: calls, rate: 20, in: dir)
            #expect(result.successfulCalls == calls, "\(result)\n\(node.logTail())")
            #expect(try node.api("show channels count") == "\n0 total.\n")
            #expect(try node.api("status").contains("\(calls) session(s) since startup"))
            node.stop()
        }

        @Test("a CANCEL while the node rings ends the call with 200 (CANCEL) and 487 (INVITE)")
        func cancelWhileRinging() async throws {
            let dir = try TemporaryDirectory()
            let node = try await FSNodeProcess.start(name: "fs-a", arguments: ["--answer-ms", "10000"], in: dir)
            let calls = 5
            let result = try await Sipp.runUAC(.fixture("uac-cancel.xml"), targetPort: node.sipPort, calls: calls, rate: 10, in: dir)
            #expect(result.successfulCalls == calls, "\(result)\n\(node.logTail())")
            #expect(try node.api("show channels count") == "\n0 total.\n", "cancelled channels are gone")
            node.stop()
        }

        @Test("at max_channels the node answers 503, and the calls it took complete")
        func capacityRefusal() async throws {
            let dir = try TemporaryDirectory()
            let node = try await FSNodeProcess.start(name: "fs-a", arguments: ["--max-channels", "2"], in: dir)
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 2000), targetPort: node.sipPort, calls: 5, rate: 20, in: dir)
            #expect(result.successfulCalls == 2, "\(result)")
            #expect(result.failedCalls == 3, "three calls find the node full: \(result)")
            #expect(result.messageCounts.filter { $0.key.hasSuffix("_Unexp") }.values.reduce(0, +) == 3, "the 503s: \(result.messageCounts)")
            #expect(try node.api("status").contains("2 session(s) since startup"), "a refused INVITE makes no channel")
            node.stop()
        }

        @Test("through the proxy: the node hangs up with a BYE that follows the Record-Route back to the caller")
        func nodeByeThroughProxy() async throws {
            let dir = try TemporaryDirectory()
            let a = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let b = try await FSNodeProcess.start(name: "fs-b", in: dir)
            let proxy = try await SwitchyardProxy.start(nodePorts: [a.sipPort, b.sipPort], in: dir)
            let calls = 10
            let result = try await Sipp.runUAC(.fixture("uac-node-bye.xml"), targetPort: proxy.port, calls: calls, rate: 20, in: dir)
            #expect(result.successfulCalls == calls, "\(result)\n\(proxy.logTail())\n\(a.logTail())")
            let taken = try [a, b].map { try $0.api("status") }
            #expect(taken.allSatisfy { $0.contains("5 session(s) since startup") }, "round robin over both nodes: \(taken)")
            proxy.stop()
        }

        @Test("a node stalled at run time over ESL stops getting calls; clearing the fault brings it back")
        func runtimeFaultFailover() async throws {
            let dir = try TemporaryDirectory()
            let a = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let b = try await FSNodeProcess.start(name: "fs-b", in: dir)
            let proxy = try await SwitchyardProxy.start(
                nodePorts: [a.sipPort, b.sipPort], failover: .init(inviteTimeout: "300ms", maxAttempts: 2), in: dir)
            #expect(try a.api("fsnode fault stall").hasPrefix("+OK"))
            // The log line carries the logger's own metadata (set once, formatted only when a line
            // is written) merged with the statement's.
            let faultLine = a.process.stderr().split(separator: "\n").first { $0.contains("fault set") } ?? ""
            #expect(faultLine.contains("fsnode=fs-a") && faultLine.contains("faults=stall"), "\(a.process.outputTail())")
            let calls = 10
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 50), targetPort: proxy.port, calls: calls, rate: 10, in: dir)
            #expect(result.successfulCalls == calls, "every call reaches the healthy node: \(result)\n\(proxy.logTail())")
            #expect(try b.api("status").contains("\(calls) session(s) since startup"))
            #expect(try a.api("fsnode status").contains("faults=stall"))
            #expect(try a.api("fsnode fault clear").hasPrefix("+OK"))
            proxy.stop()
        }
    }
}
