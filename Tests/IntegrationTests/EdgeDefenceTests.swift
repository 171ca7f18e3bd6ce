import Foundation
import Testing
import TestSupport

extension Integration {
    /// The proxy binary against what an attacker sends: datagrams whose answer or next hop is a
    /// broadcast, unspecified or kernel-refused address, forged responses, slow TCP peers.
    @Suite("Edge defence", .serialized, .timeLimit(.minutes(2)))
    struct EdgeDefenceTests {
        static func request(
            _ method: String, uri: String, viaHost: String = "127.0.0.1", viaPort: Int, route: String? = nil, toTag: String? = "dlg1", n: Int
        )
            -> String
        {
            "\(method) \(uri) SIP/2.0\r\n"
                + "Via: SIP/2.0/UDP \(viaHost):\(viaPort);rport;branch=z9hG4bKedge\(method)\(n)\r\n"
                + (route.map { "Route: \($0)\r\n" } ?? "")
                + "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=f\(n)\r\nTo: <sip:b@127.0.0.1>\(toTag.map { ";tag=\($0)" } ?? "")\r\n"
                + "Call-ID: edge-\(method)-\(n)\r\nCSeq: \(n + 1) \(method)\r\nContent-Length: 0\r\n\r\n"
        }

        /// A response carrying the proxy's own Via (with a branch it never sent) above `secondVia`.
        static func strayResponse(proxyPort: Int, secondVia: String, n: Int) -> String {
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:\(proxyPort);branch=z9hG4bKsy00000000abcd.00000000000\(n)\r\n"
                + "Via: \(secondVia)\r\nFrom: <sip:a@127.0.0.1>;tag=f\r\nTo: <sip:b@127.0.0.1>;tag=forged\r\n"
                + "Call-ID: stray-\(n)\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        }

        /// Every message here makes the proxy answer or forward to a destination no datagram may
        /// go to (broadcast, 0.0.0.0, port 0), or one the kernel refuses (127.255.255.255 is the
        /// loopback network's broadcast address: sendto fails with EACCES).
        static func hostileMessages(proxyPort: Int) -> [String] {
            var messages: [String] = []
            for (n, host) in ["255.255.255.255", "127.255.255.255", "0.0.0.0"].enumerated() {
                messages.append(strayResponse(proxyPort: proxyPort, secondVia: "SIP/2.0/UDP \(host):5060;branch=z9hG4bKup\(n)", n: n))
                messages.append(request("BYE", uri: "sip:b@\(host):5060", viaPort: proxyPort + 1, n: n))
                messages.append(request("INFO", uri: "sip:b@127.0.0.1:5099", viaPort: proxyPort + 1, route: "<sip:\(host);lr>", n: n))
                messages.append(request("ACK", uri: "sip:b@\(host)", viaPort: proxyPort + 1, n: n))
            }
            return messages
        }

        @Test("datagrams aimed at broadcast or refused destinations never close UDP: a full call works after them, over UDP and TCP")
        func hostileDestinationsLeaveUDPServing() async throws {
            let dir = try TemporaryDirectory()
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.port], in: dir, metricsPort: metricsPort)
            let sender = try SIPUDPClient()
            for message in Self.hostileMessages(proxyPort: proxy.port) {
                try sender.send(message, to: proxy.port)
            }
            for message in Self.hostileMessages(proxyPort: proxy.port) {
                let tcp = try SIPTCPClient(connectingTo: proxy.port)
                tcp.write(message)
                _ = tcp.read(timeout: .milliseconds(20))
            }
            let probe = try SIPUDPClient()
            let reply = try proxy.options(over: probe, timeout: .seconds(2))
            #expect(reply.flatMap(SIPTestMessages.statusCode) == 200, "OPTIONS over UDP still answered\n\(proxy.logTail())")
            let calls = 10
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 20), targetPort: proxy.port, calls: calls, rate: 20, in: dir)
            #expect(result.successfulCalls == calls, "a full UDP call flow works after the hostile datagrams: \(result)\n\(proxy.logTail())")

            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            #expect(metrics.contains(#"sip_socket_errors_total{transport="udp",errno="EACCES"}"#), "the kernel's refusal is counted per errno")
            #expect(metrics.contains(#"sip_sends_refused_total{transport="udp",reason="broadcast"}"#), "broadcast destinations are refused")
            #expect(metrics.contains(#"sip_sends_refused_total{transport="udp",reason="unspecified"}"#), "0.0.0.0 is refused")
            #expect(metrics.contains(#"sip_stray_responses_total{reason="no-transaction"}"#), "stray responses are counted")
            let health = try SwitchyardProxy.httpGet(port: metricsPort, path: "/healthz")
            #expect(health.status.contains("200"), "every listener is up: \(health)")
            await node.stop()
            #expect(proxy.stop() == .exited(0), "and the proxy exits cleanly\n\(proxy.logTail())")
        }

        @Test("a forged response with the proxy's Via is not relayed to the address in its second Via")
        func forgedResponseIsNotRelayed() async throws {
            let dir = try TemporaryDirectory()
            let node = try SIPUDPClient()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.localPort], in: dir)
            let victim = try SIPUDPClient()
            let attacker = try SIPUDPClient()
            for n in 0..<3 {
                try attacker.send(
                    Self.strayResponse(proxyPort: proxy.port, secondVia: "SIP/2.0/UDP 127.0.0.1:\(victim.localPort);branch=z9hG4bKv\(n)", n: n),
                    to: proxy.port)
                // And one whose top Via is not the proxy's at all.
                try attacker.send(
                    "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:\(victim.localPort);branch=z9hG4bKv\(n)\r\nFrom: <sip:a@x>;tag=1\r\n"
                        + "To: <sip:b@x>;tag=2\r\nCall-ID: f\(n)\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", to: proxy.port)
            }
            #expect(victim.receive(timeout: .milliseconds(500)) == nil, "nothing reaches the address the forged Via names\n\(proxy.logTail())")
            #expect(proxy.isRunning)
        }

        @Test("slow and silent TCP peers are closed by the header and first-message deadlines; calls over TCP keep working")
        func slowTCPPeersAreClosed() async throws {
            let dir = try TemporaryDirectory()
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir, metricsPort: metricsPort,
                proxyYAML: "  tcp: { header_timeout: 2s, first_message_timeout: 3s, idle_timeout: 5m, max_connections_per_source: 150 }")
            let invite = Array(
                Self.request("INVITE", uri: "sip:+12125551212@127.0.0.1", viaPort: 9, toTag: nil, n: 1).utf8)

            // 100 connections that trickle an INVITE one byte every 250 ms, 20 that send nothing.
            // From 127.0.0.2: the node's address (127.0.0.1 here) is exempt from the per-source limit.
            let trickling = try (0..<100).map { _ in try SIPTCPClient(connectingTo: proxy.port, fromHost: 2) }
            let silent = try (0..<20).map { _ in try SIPTCPClient(connectingTo: proxy.port, fromHost: 2) }
            // One that completes a message, then stays quiet: it is established (5 minute idle).
            let established = try SIPTCPClient(connectingTo: proxy.port)
            established.write(SIPTestMessages.options(toPort: proxy.port, fromPort: established.localPort, transport: "TCP"))
            #expect(SIPTestMessages.statusCode(established.readSIPMessage(timeout: .seconds(2))) == 200)

            // Legitimate TCP calls meanwhile (their own connection).
            async let calls = Sipp.runUAC(
                .benchCaller(holdMilliseconds: 20), name: "tcp-calls", targetPort: proxy.port, transport: .tcp, calls: 20, rate: 10, in: dir)
            let start = ContinuousClock.now
            var sent = 0
            while ContinuousClock.now - start < .seconds(4), sent < invite.count {
                for c in trickling { c.write([invite[sent]]) }
                sent += 1
                try await Task.sleep(for: .milliseconds(250))
            }
            let result = try await calls
            #expect(result.successfulCalls == 20, "TCP calls complete while slow peers hold connections: \(result)")

            let closed = await Poll.until(timeout: .seconds(3), interval: .milliseconds(100)) {
                trickling.allSatisfy(\.isClosedByPeer) && silent.allSatisfy(\.isClosedByPeer)
            }
            let open = trickling.filter { !$0.isClosedByPeer }.count + silent.filter { !$0.isClosedByPeer }.count
            #expect(closed, "every slow or silent connection is closed (\(open) of 120 still open \(ContinuousClock.now - start) after the first byte)")
            #expect(!established.isClosedByPeer, "an established connection keeps the long idle timeout")
            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            #expect(metrics.contains(#"sip_tcp_connections_closed_total{reason="header-timeout"}"#))
            #expect(metrics.contains(#"sip_tcp_connections_closed_total{reason="first-message-timeout"}"#))
            await node.stop()
            #expect(proxy.stop() == .exited(0))
        }

        @Test("connections over the per-source limit are refused at once and counted")
        func connectionsOverThePerSourceLimitAreRefused() async throws {
            let dir = try TemporaryDirectory()
            let node = try SIPUDPClient()
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.localPort)], in: dir, metricsPort: metricsPort,
                proxyYAML: "  tcp: { max_connections_per_source: 10 }")
            // From 127.0.0.2: the node's address (127.0.0.1 here) is exempt from the limit.
            let clients = try (0..<15).map { _ in try SIPTCPClient(connectingTo: proxy.port, fromHost: 2) }
            let settled = await Poll.until(timeout: .seconds(2), interval: .milliseconds(50)) {
                clients.filter(\.isClosedByPeer).count == 5
            }
            #expect(settled, "exactly 5 of 15 connections are refused (\(clients.filter(\.isClosedByPeer).count))")
            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            #expect(
                metrics.contains(#"sip_tcp_connections_refused_total{reason="per-source-limit"} 5"#),
                "\(metrics.split(separator: "\n").filter { $0.contains("tcp") })")
            #expect(proxy.isRunning)
        }
    }
}
