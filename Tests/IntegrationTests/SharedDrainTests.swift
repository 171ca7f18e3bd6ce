import Foundation
import Testing
import TestSupport

extension Integration {
    /// Drain state shared through a NATS key-value bucket: one proxy's admin, every proxy obeys.
    @Suite("Shared drain state", .serialized, .timeLimit(.minutes(1)))
    struct SharedDrainTests {
        static func drained(_ node: String, metricsPort: Int) -> Bool? {
            guard let body = try? SwitchyardProxy.httpGet(port: metricsPort, path: "/nodes").body,
                let rows = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]],
                let row = rows.first(where: { $0["name"] as? String == node })
            else { return nil }
            return row["drained"] as? Bool
        }

        @Test("a drain given to one region's proxy is obeyed by the other's within a second, and so is the enable")
        func drainThroughOneProxyReachesTheOther() async throws {
            let dir = try TemporaryDirectory()
            let nats = try await NATSServer.start(in: dir)
            let node1 = try SIPUDPClient()
            let node2 = try SIPUDPClient()
            let nodes: [SwitchyardProxy.TestNode] = [
                .init(name: "fs-e1", region: "us-east-1", sip: node1.localPort), .init(name: "fs-w1", region: "us-west-2", sip: node2.localPort),
            ]
            let eastMetrics = try FreePort.next()
            let westMetrics = try FreePort.next()
            let east = try await SwitchyardProxy.start(
                nodes: nodes, region: "us-east-1", in: try TemporaryDirectory(), metricsPort: eastMetrics, extraArguments: ["--nats", nats.url])
            let west = try await SwitchyardProxy.start(
                nodes: nodes, region: "us-west-2", in: try TemporaryDirectory(), metricsPort: westMetrics, extraArguments: ["--nats", nats.url])
            // The admin answers 503 ("applied to this proxy only") until the bucket is reachable.
            var answer = (status: "", body: "")
            let accepted = await Poll.until(timeout: .seconds(10), interval: .milliseconds(100)) {
                answer = (try? SwitchyardProxy.httpPost(port: eastMetrics, path: "/nodes/fs-e1/drain")) ?? ("", "")
                return answer.status.contains("200")
            }
            #expect(accepted, "the drain is written to the shared bucket: \(answer)\n\(east.logTail())")
            let start = ContinuousClock.now
            let seen = await Poll.until(timeout: .seconds(1), interval: .milliseconds(10)) { Self.drained("fs-e1", metricsPort: westMetrics) == true }
            #expect(seen, "the west proxy sees the drain within 1 s (\(ContinuousClock.now - start))\n\(west.logTail())")
            #expect(Self.drained("fs-e1", metricsPort: eastMetrics) == true)

            _ = try SwitchyardProxy.httpPost(port: westMetrics, path: "/nodes/fs-e1/enable")
            let enabled = await Poll.until(timeout: .seconds(1), interval: .milliseconds(10)) { Self.drained("fs-e1", metricsPort: eastMetrics) == false }
            #expect(enabled, "an enable given to the west proxy reaches the east one")

            // A proxy that starts later reads the current state first.
            _ = try SwitchyardProxy.httpPost(port: eastMetrics, path: "/nodes/fs-w1/drain")
            let lateMetrics = try FreePort.next()
            let late = try await SwitchyardProxy.start(
                nodes: nodes, region: "us-west-2", in: try TemporaryDirectory(), metricsPort: lateMetrics, extraArguments: ["--nats", nats.url])
            let inherited = await Poll.until(timeout: .seconds(5), interval: .milliseconds(50)) { Self.drained("fs-w1", metricsPort: lateMetrics) == true }
            #expect(inherited, "a proxy started later inherits the drain\n\(late.logTail())")
            #expect(east.stop() == .exited(0))
            #expect(west.stop() == .exited(0))
            late.stop()
        }
    }
}
