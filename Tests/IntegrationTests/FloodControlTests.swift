import Foundation
import Testing
import TestSupport

extension Integration {
    /// Flood control in the real process, over real UDP sockets (issue 16).
    @Suite("Flood control", .serialized, .timeLimit(.minutes(1)))
    struct FloodControlTests {
        @Test("a source flooding the proxy is banned (GET /edge, sip_flood_bans_total), gets nothing while banned, and is let in after the ban")
        func aFloodingSourceIsBanned() async throws {
            let dir = try TemporaryDirectory()
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let metricsPort = try FreePort.next()
            // Every test source is on 127.0.0.1, a trusted network: apply_to_trunks makes them count.
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir, metricsPort: metricsPort,
                proxyYAML: "edge: { flood: { requests: 50, window: 1s, ban: 3s, apply_to_trunks: true } }")

            let flooder = try SIPUDPClient()
            for _ in 0..<500 { try flooder.send(SIPTestMessages.options(toPort: proxy.port, fromPort: flooder.localPort), to: proxy.port) }
            try await Task.sleep(for: .milliseconds(500))
            let answered = flooder.drain().count
            let edge = try SwitchyardProxy.httpGet(port: metricsPort, path: "/edge").body
            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            // Banned by address: another socket on the same address gets nothing either.
            let other = try SIPUDPClient()
            let whileBanned = try proxy.options(over: other, timeout: .milliseconds(500))
            try await Task.sleep(for: .seconds(3))
            let afterBan = try proxy.options(over: other, timeout: .seconds(1))
            await node.stop()
            proxy.stop()

            #expect(answered >= 1 && answered <= 50, "at most the window's 50 requests are answered, not \(answered) of 500")
            #expect(edge.contains("\"address\" : \"127.0.0.1\""), "\(edge)")
            #expect(metrics.contains("sip_flood_bans_total 1"), "\(metrics)")
            #expect(metrics.contains("sip_flood_dropped_total"), "\(metrics)")
            #expect(whileBanned == nil, "a banned address gets no answer")
            #expect(afterBan.map(SIPTestMessages.statusCode) == 200, "the ban ends when the flood does")
        }
    }
}
