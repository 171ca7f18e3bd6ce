import Foundation
import Testing
import TestSupport

extension Integration {
    /// SIP over TLS in the real proxy, with a throwaway CA made at test time and Python's ssl as
    /// the TLS peer (issue 16).
    @Suite("SIP over TLS", .serialized, .timeLimit(.minutes(2)))
    struct TLSTests {
        static func tlsYAML(_ pki: URL, file: String = "server", extra: String = "") -> String {
            "  tls: { certificate: \(pki.path)/\(file).pem, key: \(pki.path)/\(file).key\(extra) }"
        }

        @Test("a whole call over TLS reaches a UDP node: 100/180/200, ACK and BYE along a double Record-Route (udp, then tls on its own port)")
        func aCallOverTLS() async throws {
            let dir = try TemporaryDirectory()
            let pki = try SIPTLS.makePKI(in: dir)
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let tlsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir, proxyYAML: Self.tlsYAML(pki), extraListen: ["tls://127.0.0.1:\(tlsPort)"])
            let call = try await SIPTLS.run("call", port: tlsPort, pki: pki)
            await node.stop()
            let invites = node.invitesReceived
            proxy.stop()

            #expect(call["handshake"] as? String == "ok", "\(call)")
            #expect(call["invite"] as? [Int] == [100, 180, 200], "\(call)\n\(proxy.logTail())")
            #expect(call["bye"] as? Int == 200, "the BYE went along the route set and was answered: \(call)")
            let rr = (call["record_route"] as? [String])?.joined(separator: ",") ?? ""
            #expect(
                rr == "<sip:127.0.0.1:\(proxy.port);lr>, <sip:127.0.0.1:\(tlsPort);transport=tls;lr>",
                "one Record-Route per side, the TLS one with its own port: \(rr)")
            #expect(invites == 1)
        }

        @Test(
            "mutual TLS per trunk: a certificate from the trunk's CA with its subject is let in; none, another subject, another CA or an expired one is refused"
        )
        func mutualTLSPerTrunk() async throws {
            let dir = try TemporaryDirectory()
            let pki = try SIPTLS.makePKI(in: dir)
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let tlsPort = try FreePort.next()
            let metricsPort = try FreePort.next()
            let trunks = """
                trunks:
                  - { name: carrier-a, sources: [ "127.0.0.1/32" ], tls_ca: \(pki.path)/ca.pem, tls_subject: sip.carrier-a.example }
                """
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir, metricsPort: metricsPort, proxyYAML: Self.tlsYAML(pki) + "\n" + trunks,
                extraListen: ["tls://127.0.0.1:\(tlsPort)"])
            let good = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "carrier-a")
            let none = try await SIPTLS.run("call", port: tlsPort, pki: pki)
            let otherSubject = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "carrier-b")
            let otherCA = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "rogue")
            let expired = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "expired")
            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            await node.stop()
            let invites = node.invitesReceived
            proxy.stop()

            #expect(good["invite"] as? [Int] == [100, 180, 200] && good["bye"] as? Int == 200, "\(good)\n\(proxy.logTail())")
            for (name, r) in [("no certificate", none), ("carrier-b's subject", otherSubject), ("another CA", otherCA), ("expired", expired)] {
                #expect((r["invite"] as? [Int] ?? []).isEmpty && r["closed"] as? Bool != false, "\(name): refused before any request: \(r)")
            }
            #expect("\(otherCA["error"] ?? "")".contains("UNKNOWN_CA"), "\(otherCA)")
            #expect("\(expired["error"] ?? "")".contains("EXPIRED"), "\(expired)")
            #expect(metrics.contains("sip_tls_connections_refused_total{reason=\"subject\"} 1"), "\(metrics)")
            #expect(metrics.contains("sip_tls_handshakes_total{result=\"failed\"} 3"), "no cert, another CA, expired: \(metrics)")
            #expect(invites == 1, "only the good call reached the node")
        }

        @Test("a client certificate names its trunk: without it a source that is no trunk gets 403, with it the call counts for the trunk")
        func aCertificateNamesItsTrunk() async throws {
            let dir = try TemporaryDirectory()
            let pki = try SIPTLS.makePKI(in: dir)
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let tlsPort = try FreePort.next()
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir, metricsPort: metricsPort,
                proxyYAML: Self.tlsYAML(pki, extra: ", client_ca: \(pki.path)/ca.pem")
                    + "\ntrunks:\n  - { name: carrier-b, tls_subject: sip.carrier-b.example, calls_per_second: 50 }",
                extraListen: ["tls://127.0.0.1:\(tlsPort)"], trusted: [], readyStatuses: [200, 403])
            let anonymous = try await SIPTLS.run("call", port: tlsPort, pki: pki)
            let wrong = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "carrier-a")
            let named = try await SIPTLS.run("call", port: tlsPort, pki: pki, certificate: "carrier-b")
            let metrics = try SwitchyardProxy.httpGet(port: metricsPort, path: "/metrics").body
            await node.stop()
            proxy.stop()

            #expect(anonymous["invite"] as? [Int] == [403], "\(anonymous)")
            #expect(wrong["invite"] as? [Int] == [403], "a valid certificate of no trunk is no trunk: \(wrong)")
            #expect(named["invite"] as? [Int] == [100, 180, 200] && named["bye"] as? Int == 200, "\(named)\n\(proxy.logTail())")
            #expect(metrics.contains("sip_trunk_calls_total{trunk=\"carrier-b\"} 1"), "\(metrics)")
        }

        @Test("the certificate is read again on reload; an expired one is refused on reload (the old stays) and at start")
        func certificateReloadAndExpiry() async throws {
            let dir = try TemporaryDirectory()
            let pki = try SIPTLS.makePKI(in: dir)
            let fm = FileManager.default
            func install(_ name: String) throws {
                for ext in ["pem", "key"] {
                    let target = pki.appendingPathComponent("live.\(ext)")
                    try? fm.removeItem(at: target)
                    try fm.copyItem(at: pki.appendingPathComponent("\(name).\(ext)"), to: target)
                }
            }
            try install("server")
            let tlsPort = try FreePort.next()
            let metricsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: try FreePort.next())], in: dir, metricsPort: metricsPort, proxyYAML: Self.tlsYAML(pki, file: "live"),
                extraListen: ["tls://127.0.0.1:\(tlsPort)"])
            let before = try await SIPTLS.run("options", port: tlsPort, pki: pki)
            try install("node")
            let reloaded = try SwitchyardProxy.httpPost(port: metricsPort, path: "/reload")
            let after = try await SIPTLS.run("options", port: tlsPort, pki: pki)
            try install("server-expired")
            let refused = try SwitchyardProxy.httpPost(port: metricsPort, path: "/reload")
            let afterRefused = try await SIPTLS.run("options", port: tlsPort, pki: pki)
            proxy.stop()

            #expect(before["peer_subject"] as? String == "commonName=proxy.test", "\(before)")
            #expect(reloaded.status.contains("200"), "\(reloaded)")
            #expect(after["peer_subject"] as? String == "commonName=node.test", "new connections get the new certificate: \(after)")
            #expect(!refused.status.contains("200") && refused.body.contains("expired"), "\(refused)")
            #expect(afterRefused["peer_subject"] as? String == "commonName=node.test", "the running certificate stays: \(afterRefused)")

            // At start: the proxy does not come up with an expired certificate, and says why.
            var startError = ""
            do {
                let p = try await SwitchyardProxy.start(
                    nodes: [.init(name: "node1", sip: try FreePort.next())], in: dir, proxyYAML: Self.tlsYAML(pki, file: "server-expired"),
                    extraListen: ["tls://127.0.0.1:\(try FreePort.next())"])
                p.stop()
            } catch {
                startError = "\(error)"
            }
            #expect(startError.contains("expired"), "\(startError)")
        }

        @Test("a node reached over TLS: a UDP caller's call goes to it with our TLS Via, the node's certificate checked against node_ca")
        func aNodeOverTLS() async throws {
            let dir = try TemporaryDirectory()
            let pki = try SIPTLS.makePKI(in: dir)
            let (node, nodePort) = try SIPTLS.startNode(in: dir, pki: pki, calls: 1, seconds: 40)
            try await Task.sleep(for: .milliseconds(300))
            let tlsPort = try FreePort.next()
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: nodePort, transport: "tls")], in: dir,
                proxyYAML: Self.tlsYAML(pki, extra: ", node_ca: \(pki.path)/ca.pem"), extraListen: ["tls://127.0.0.1:\(tlsPort)"])
            let result = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 50), targetPort: proxy.port, transport: .udp, calls: 1, rate: 1, in: dir)
            _ = await node.waitForExit(timeout: .seconds(5))
            proxy.stop()
            let seen = node.stdout()

            #expect(result.successfulCalls == 1, "\(result)\n\(proxy.logTail())\n\(node.stderr())")
            #expect(seen.contains("\"via_transport\": \"SIP/2.0/TLS\""), "\(seen)")
            #expect(
                seen.contains("<sip:127.0.0.1:\(tlsPort);transport=tls;lr>") && seen.contains("<sip:127.0.0.1:\(proxy.port);lr>"),
                "a Record-Route for each side: \(seen)")
        }
    }
}
