import Foundation
import Testing
import TestSupport

extension Integration {
    /// The issue-4 drills against real processes: emulated FreeSWITCH nodes (`switchyard fsnode`),
    /// the proxy, sipp callers. Failures at call setup are told apart from calls already up on a
    /// node that dies (those are lost with it).
    @Suite("Dispatch drills with emulated nodes", .serialized, .timeLimit(.minutes(2)))
    struct DispatchDrillTests {
        /// sipp's `uac.xml` steps: 0 INVITE, 1 100, 2 180, 3 200, 4 ACK, 5 pause, 6 BYE, 7 200.
        static func setupFailures(_ r: SippResult) -> Int {
            r.messageCounts.filter { k, _ in
                ["1_", "2_", "3_"].contains { k.hasPrefix($0) } && (k.hasSuffix("_Unexp") || k.hasSuffix("_Timeout"))
            }.values.reduce(0, +) + (r.messageCounts["0_INVITE_Timeout"] ?? 0)
        }

        static func metric(_ port: Int, _ name: String, node: String) throws -> Int {
            let body = try SwitchyardProxy.httpGet(port: port, path: "/metrics").body
            for line in body.split(separator: "\n") where line.hasPrefix("\(name){") && line.contains("node=\"\(node)\"") {
                return Int(Double(line.split(separator: " ").last ?? "") ?? -1)
            }
            return 0
        }

        static func nodes(_ port: Int) throws -> [String: [String: Any]] {
            let body = try SwitchyardProxy.httpGet(port: port, path: "/nodes").body
            let rows = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]]) ?? []
            return Dictionary(uniqueKeysWithValues: rows.compactMap { r in (r["name"] as? String).map { ($0, r) } })
        }

        static func sessions(_ node: FSNodeProcess) throws -> Int {
            let status = try node.api("status")
            let line = status.split(separator: "\n").first { $0.hasSuffix("session(s) since startup") } ?? ""
            return Int(line.split(separator: " ").first ?? "") ?? -1
        }

        static let fastProbe = "{ interval: 200ms, timeout: 200ms, down_after: 1, up_after: 2 }"

        @Test("least-loaded follows the nodes' ESL channel counts, calls the proxy did not send included")
        func eslChannelCountsDriveLeastLoaded() async throws {
            let dir = try TemporaryDirectory()
            let a = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let b = try await FSNodeProcess.start(name: "fs-b", in: dir)
            // 30 long API-style calls on fs-a, placed over its ESL (the proxy never sees them).
            for _ in 0..<30 {
                #expect(try a.api("originate {fsnode_ring_ms=0,fsnode_talk_ms=60000}sofia/gateway/gw1/+15551234567 &park()").hasPrefix("+OK"))
            }
            let metrics = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [
                    .init(name: "fs-a", sip: a.sipPort, esl: a.eslPort, maxChannels: 100),
                    .init(name: "fs-b", sip: b.sipPort, esl: b.eslPort, maxChannels: 100),
                ],
                policy: "least-loaded", in: dir, metricsPort: metrics)
            let seen = try await Poll.until(timeout: .seconds(5)) { (try? Self.nodes(metrics)["fs-a"]?["eslChannels"] as? Int) == 30 }
            #expect(seen, "the proxy reads fs-a's 30 channels over ESL: \(String(describing: try? Self.nodes(metrics)))")
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 200), targetPort: proxy.port, calls: 20, rate: 20, in: dir)
            #expect(result.successfulCalls == 20, "\(result)")
            #expect(try Self.sessions(b) == 20, "every SIP call goes to the emptier node")
            #expect(try Self.sessions(a) == 30, "none to the node loaded by API calls")
            let rows = try Self.nodes(metrics)
            #expect(rows["fs-a"]?["esl"] as? String == "connected")
            proxy.stop()
        }

        @Test("a node killed under load: no call fails at setup, it gets no INVITE after interval + timeout, and it comes back after a restart")
        func killAndRestartNodeUnderLoad() async throws {
            let dir = try TemporaryDirectory()
            let a = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let b = try await FSNodeProcess.start(name: "fs-b", in: dir)
            let metrics = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "fs-a", sip: a.sipPort, esl: a.eslPort), .init(name: "fs-b", sip: b.sipPort, esl: b.eslPort)],
                probe: Self.fastProbe, failover: .init(inviteTimeout: "500ms", maxAttempts: 2), in: dir, metricsPort: metrics)
            let calls = 150
            let load = Task {
                try await Sipp.runUAC(.benchCaller(holdMilliseconds: 100), targetPort: proxy.port, calls: calls, rate: 50, in: dir)
            }
            try await Task.sleep(for: .seconds(1))
            a.kill()
            // Probe interval + timeout = 400 ms; give the event loop 300 ms more.
            try await Task.sleep(for: .milliseconds(700))
            let routedAfterDetection = try Self.metric(metrics, "sip_invites_routed_total", node: "fs-a")
            let result = try await load.value
            let routedAtEnd = try Self.metric(metrics, "sip_invites_routed_total", node: "fs-a")
            #expect(Self.setupFailures(result) == 0, "no call fails at setup: \(result)\n\(proxy.logTail())")
            #expect(result.failedCalls <= 10, "only calls already up on the dead node are lost: \(result)")
            #expect(routedAtEnd == routedAfterDetection, "no INVITE to the dead node after detection: \(routedAfterDetection) → \(routedAtEnd)")

            let back = try await FSNodeProcess.start(name: "fs-a", sipPort: a.sipPort, eslPort: a.eslPort, in: dir)
            // Back when probes say so and its hold-down after the failed INVITEs (5 s) has passed.
            let active = try await Poll.until(timeout: .seconds(10)) {
                let row = try? Self.nodes(metrics)["fs-a"]
                return row?["state"] as? String == "active" && row?["heldDown"] as? Bool == false
            }
            #expect(active, "the restarted node is probed back to active: \(String(describing: try? Self.nodes(metrics)["fs-a"]))")
            let again = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 50), targetPort: proxy.port, calls: 10, rate: 20, in: dir)
            #expect(again.successfulCalls == 10, "\(again)")
            #expect(try Self.sessions(back) > 0, "the restarted node takes calls again")
            proxy.stop()
        }

        @Test("the whole local region stops under load: calls move to the other region, none fails at setup")
        func regionFailover() async throws {
            let dir = try TemporaryDirectory()
            let e1 = try await FSNodeProcess.start(name: "fs-e1", in: dir)
            let e2 = try await FSNodeProcess.start(name: "fs-e2", in: dir)
            let w1 = try await FSNodeProcess.start(name: "fs-w1", in: dir)
            let metrics = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [
                    .init(name: "fs-e1", region: "us-east-1", sip: e1.sipPort, esl: e1.eslPort),
                    .init(name: "fs-e2", region: "us-east-1", sip: e2.sipPort, esl: e2.eslPort),
                    .init(name: "fs-w1", region: "us-west-2", sip: w1.sipPort, esl: w1.eslPort),
                ],
                probe: Self.fastProbe, region: "us-east-1", failover: .init(inviteTimeout: "500ms", maxAttempts: 3), in: dir, metricsPort: metrics)
            let calls = 100
            let load = Task {
                try await Sipp.runUAC(.benchCaller(holdMilliseconds: 100), targetPort: proxy.port, calls: calls, rate: 50, in: dir)
            }
            try await Task.sleep(for: .milliseconds(700))
            #expect(try Self.sessions(w1) == 0, "the other region is idle while the local one is up")
            e1.kill()
            e2.kill()
            let result = try await load.value
            #expect(Self.setupFailures(result) == 0, "no call fails at setup: \(result)\n\(proxy.logTail())")
            #expect(result.failedCalls <= 10, "only calls already up in the dead region are lost: \(result)")
            #expect(try Self.sessions(w1) >= calls / 3, "the other region takes the calls")
            proxy.stop()
        }

        @Test("a drained node finishes its dialogs while new calls avoid it")
        func drainLetsDialogsFinish() async throws {
            let dir = try TemporaryDirectory()
            let a = try await FSNodeProcess.start(name: "fs-a", in: dir)
            let b = try await FSNodeProcess.start(name: "fs-b", in: dir)
            let metrics = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "fs-a", sip: a.sipPort, esl: a.eslPort), .init(name: "fs-b", sip: b.sipPort, esl: b.eslPort)],
                in: dir, metricsPort: metrics)
            let long = Task {
                try await Sipp.runUAC(.benchCaller(holdMilliseconds: 3000), name: "long", targetPort: proxy.port, calls: 10, rate: 20, in: dir)
            }
            let up = try await Poll.until(timeout: .seconds(5)) { (try? a.api("show channels count")) == "\n5 total.\n" }
            #expect(up, "five long calls are up on fs-a")
            #expect(try SwitchyardProxy.httpPost(port: metrics, path: "/nodes/fs-a/drain").status.contains("200"))
            let before = try Self.sessions(a)
            let fresh = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 50), name: "fresh", targetPort: proxy.port, calls: 10, rate: 20, in: dir)
            #expect(fresh.successfulCalls == 10, "\(fresh)")
            #expect(try Self.sessions(a) == before, "no new call reaches the drained node")
            let finished = try await long.value
            #expect(finished.successfulCalls == 10, "the drained node's dialogs finish (BYE and 200 through the proxy): \(finished)")
            #expect(try a.api("show channels count") == "\n0 total.\n")
            proxy.stop()
        }
    }
}
