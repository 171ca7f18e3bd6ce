import Foundation
import Testing
import TestSupport

extension Integration {
    /// What an operator scrapes: `/metrics` counts what the proxy did, `/healthz` answers.
    @Suite("Metrics endpoint", .serialized, .timeLimit(.minutes(1)))
    struct MetricsTests {
        /// One sipp node per region (fs-e1 in us-east-1, fs-w1 in us-west-2) and a proxy of
        /// us-east-1 with its admin server on `metricsPort`.
        static func twoRegions(
            in dir: TemporaryDirectory, probe: String? = nil
        ) async throws -> (east: SippUAS, west: SippUAS, proxy: SwitchyardProxy, metricsPort: Int) {
            let east = try await Sipp.startUAS(.fixture("uas.xml"), name: "east", in: dir)
            let west = try await Sipp.startUAS(.fixture("uas.xml"), name: "west", in: dir)
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "fs-e1", region: "us-east-1", sip: east.port), .init(name: "fs-w1", region: "us-west-2", sip: west.port)],
                probe: probe, region: "us-east-1", in: dir, metricsPort: metricsPort)
            return (east, west, proxy, metricsPort)
        }

        @Test("/metrics counts routed INVITEs per node and malformed datagrams; /healthz answers")
        func metricsCountWhatTheProxyDid() async throws {
            let dir = try TemporaryDirectory()
            let node1 = try await Sipp.startUAS(.fixture("uas.xml"), name: "node1", in: dir)
            let node2 = try await Sipp.startUAS(.fixture("uas.xml"), name: "node2", in: dir)
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node1.port, node2.port], in: dir, metricsPort: metricsPort)

            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 20), targetPort: proxy.port, transport: .udp, calls: 10, rate: 20, in: dir)
            let garbage = try SIPUDPClient()
            for _ in 0..<3 { try garbage.send("not sip at all\r\n\r\n", to: proxy.port) }

            var metrics = ""
            let counted = await Poll.until(timeout: .seconds(3), interval: .milliseconds(100)) {
                metrics = (try? SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body) ?? ""
                return metrics.contains("sip_malformed_total{action=\"dropped\"} 3")
            }
            let health = try SwitchyardProxy.httpGet(port: metricsPort, path: "/healthz")
            let nodes = try SwitchyardProxy.httpGet(port: metricsPort, path: "/nodes")
            await node1.stop()
            await node2.stop()
            proxy.stop()

            #expect(result.successfulCalls == 10, "\(result)")
            #expect(counted, "three garbage datagrams are counted as dropped:\n\(metrics)")
            #expect(metrics.contains("sip_invites_routed_total{node=\"node1\"} 5"), "\(metrics)")
            #expect(metrics.contains("sip_invites_routed_total{node=\"node2\"} 5"), "\(metrics)")
            #expect(nodes.status == "HTTP/1.1 200 OK")
            let table = try JSONSerialization.jsonObject(with: Data(nodes.body.utf8)) as? [[String: Any]] ?? []
            #expect(table.map { $0["name"] as? String } == ["node1", "node2"], "\(nodes.body)")
            #expect(table.allSatisfy { $0["state"] as? String == "active" && $0["routedCalls"] as? Int == 5 }, "\(nodes.body)")
            #expect(health.status == "HTTP/1.1 200 OK")
            #expect(health.body == "ok\n")
        }

        @Test("/ready is 200 while a node of the proxy's region can take a call, 503 with the reason when none can")
        func readyFollowsTheRegionsNodes() async throws {
            let dir = try TemporaryDirectory()
            let (east, west, proxy, metricsPort) = try await Self.twoRegions(in: dir)
            let ready = try SwitchyardProxy.httpGet(port: metricsPort, path: "/ready")
            #expect(ready.status.contains(" 200"), "\(ready)")
            _ = try SwitchyardProxy.httpPost(port: metricsPort, path: "/nodes/fs-e1/drain")
            // The other region's node still takes calls (failover), but this region cannot: a DNS
            // health check must send the traffic to the other region's proxy.
            let drained = try SwitchyardProxy.httpGet(port: metricsPort, path: "/ready")
            #expect(drained.status.contains(" 503"), "\(drained)")
            #expect(drained.body.contains("no node of us-east-1 is active"), "\(drained.body)")
            _ = try SwitchyardProxy.httpPost(port: metricsPort, path: "/nodes/fs-e1/enable")
            #expect(try SwitchyardProxy.httpGet(port: metricsPort, path: "/ready").status.contains(" 200"))
            // The operator's client: `switchyard nodes` drains, prints the table, enables.
            func nodes(_ args: [String]) async throws -> (status: Int32?, out: String) {
                let p = try ManagedProcess(
                    name: "nodes", executable: try SwitchyardBinary.path(), arguments: ["nodes", "--admin", "127.0.0.1:\(metricsPort)"] + args,
                    directory: dir.url, maxLifetime: .seconds(30))
                _ = await p.waitForExit(timeout: .seconds(20))
                return (p.exitStatus, p.stdout())
            }
            let drainedTable = try await nodes(["--drain", "fs-e1"])
            #expect(drainedTable.status == 0)
            #expect(drainedTable.out.split(separator: "\n").contains { $0.hasPrefix("fs-e1") && $0.contains("drained") }, "\(drainedTable.out)")
            let json = try await nodes(["--enable", "fs-e1", "--json"])
            let rows = (try? JSONSerialization.jsonObject(with: Data(json.out.utf8))) as? [[String: Any]] ?? []
            #expect(rows.first { $0["name"] as? String == "fs-e1" }?["drained"] as? Bool == false, "\(json.out)")
            let unknown = try await nodes(["--drain", "no-such-node"])
            #expect(unknown.status != 0, "an unknown node is an error")
            await east.stop()
            await west.stop()
            proxy.stop()
        }

        @Test("/healthz is 503 with the reason while no node of any region is active, 200 again once one is")
        func healthzNeedsAnActiveNode() async throws {
            let dir = try TemporaryDirectory()
            let (east, west, proxy, metricsPort) = try await Self.twoRegions(
                in: dir, probe: "{ interval: 200ms, timeout: 200ms, down_after: 1, up_after: 1 }")
            func health() throws -> (status: String, body: String) {
                let h = try SwitchyardProxy.httpGet(port: metricsPort, path: "/healthz")
                return (h.status, h.body)
            }
            #expect(try health().status.contains(" 200"))
            _ = try SwitchyardProxy.httpPost(port: metricsPort, path: "/nodes/fs-e1/drain")
            // The other region's node can still take a call: healthy (only /ready says no).
            #expect(try health().status.contains(" 200"), "one active node of another region is enough")
            _ = try SwitchyardProxy.httpPost(port: metricsPort, path: "/nodes/fs-w1/drain")
            let none = try health()
            #expect(none.status.contains(" 503"), "\(none)")
            #expect(none.body == "no node is active (0 of 2)\n", "\(none.body)")
            _ = try SwitchyardProxy.httpPost(port: metricsPort, path: "/nodes/fs-w1/enable")
            #expect(try health().status.contains(" 200"))
            // A node that stops answering its probes counts as not active, the same as a drained one.
            await west.stop()
            let silent = await Poll.until(timeout: .seconds(5), interval: .milliseconds(100)) {
                (try? health())?.status.contains(" 503") == true
            }
            #expect(silent, "503 once the only undrained node stops answering: \((try? health()).map { "\($0)" } ?? "-")\n\(proxy.logTail())")
            #expect((try? health())?.body == "no node is active (0 of 2)\n")
            await east.stop()
            proxy.stop()
        }
    }
}
