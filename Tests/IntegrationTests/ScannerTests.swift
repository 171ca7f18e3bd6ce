import Foundation
import Testing
import TestSupport

extension Integration {
    /// The proxy against a real SIP scanner, sipvicious (from PyPI, installed by scripts/bootstrap
    /// into .venv): svmap must not find it and svwar's INVITE sweep must not reach a node (issue 16).
    @Suite("A real scanner (sipvicious)", .serialized, .timeLimit(.minutes(2)))
    struct ScannerTests {
        static func sipvicious(_ tool: String, _ arguments: [String], in dir: TemporaryDirectory) async throws -> String {
            let binary = Fixtures.repositoryRoot.appendingPathComponent(".venv/bin/sipvicious_\(tool)").path
            guard FileManager.default.isExecutableFile(atPath: binary) else { throw TestSupportError("no \(binary): run scripts/bootstrap") }
            let process = try ManagedProcess(name: tool, executable: binary, arguments: arguments, directory: dir.url, maxLifetime: .seconds(60))
            _ = await process.waitForExit(timeout: .seconds(60))
            return process.stdout() + process.stderr()
        }

        @Test("svmap finds nothing and svwar's INVITE sweep reaches no node (scanner User-Agents dropped)")
        func aScannerFindsNothing() async throws {
            let dir = try TemporaryDirectory()
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let proxy = try await SwitchyardProxy.start(nodes: [.init(name: "node1", sip: node.port)], in: dir)
            let map = try await Self.sipvicious("svmap", ["127.0.0.1", "-p", "\(proxy.port)"], in: dir)
            let war = try await Self.sipvicious("svwar", ["127.0.0.1", "-p", "\(proxy.port)", "-e", "100-150", "-m", "INVITE"], in: dir)
            await node.stop()
            proxy.stop()

            #expect(map.contains("found nothing") && !map.contains("switchyard"), "\(map)")
            #expect(!war.contains("| 1"), "no extension is reported: \(war)")
            #expect(node.invitesReceived == 0, "no INVITE of the sweep reached the node: \(war)")
        }

        @Test("with the scanner filter off and edge.server_header empty, svmap sees a SIP device but not what it is")
        func noFingerprint() async throws {
            let dir = try TemporaryDirectory()
            let node = try await Sipp.startUAS(.fixture("uas.xml"), name: "node", in: dir)
            let proxy = try await SwitchyardProxy.start(
                nodes: [.init(name: "node1", sip: node.port)], in: dir,
                proxyYAML: "edge: { server_header: \"\", scanners: { drop: false }, flood: { enabled: false } }")
            let map = try await Self.sipvicious("svmap", ["127.0.0.1", "-p", "\(proxy.port)"], in: dir)
            await node.stop()
            proxy.stop()

            #expect(map.contains("127.0.0.1:\(proxy.port)") && map.contains("unknown"), "\(map)")
            #expect(!map.lowercased().contains("switchyard"), "\(map)")
        }
    }
}
