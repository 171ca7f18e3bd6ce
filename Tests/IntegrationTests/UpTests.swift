import Foundation
import Testing
import TestSupport

extension Integration {
    /// `switchyard up`, the two-region deployment, end to end.
    @Suite("switchyard up", .serialized, .timeLimit(.minutes(4)))
    struct UpTests {
        @Test("up --demo: both regions come up; a call through each proxy and each API completes with one CDR; nothing is left running")
        func upDemo() async throws {
            let dir = try TemporaryDirectory()
            chmod(dir.path, 0o755)  // PostgreSQL runs as the postgres user below it
            let process = try ManagedProcess(
                name: "switchyard-up", executable: try SwitchyardBinary.path(),
                arguments: [
                    "up", "--demo", "--fresh", "--data", dir.file("stack").path, "--config",
                    Fixtures.repositoryRoot.appendingPathComponent("regions.yaml").path,
                    "--log-level", "notice",
                ],
                directory: dir.url, maxLifetime: .seconds(230))
            let ended = await process.waitForExit(timeout: .seconds(220))
            let output = process.outputTail(lines: 40)
            #expect(ended, "up --demo finished\n\(output)")
            #expect(process.exitStatus == 0, "up --demo succeeded\n\(output)")
            let stderr = process.stderr()
            #expect(stderr.contains("demo us-east-1: 5 SIP calls through 127.0.0.1:5060: sipp exit 0"))
            #expect(stderr.contains("demo us-west-2: 5 SIP calls through 127.0.0.1:5160: sipp exit 0"))
            #expect(stderr.components(separatedBy: "ended completed, CDR written").count == 3, "one API call per region completed with its CDR")
            // Nothing of the stack survives it.
            let leftover = Self.processes(under: dir.url.path)
            #expect(leftover.isEmpty, "no process left behind: \(leftover)")
        }

        @Test(
            "up --netns --demo: each region in its own network namespace behind a 35 ms WAN link; calls through both regions complete; namespaces and routes are removed after",
            .enabled(if: geteuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun"), "needs root and /dev/net/tun"))
        func upNetnsDemo() async throws {
            let dir = try TemporaryDirectory()
            chmod(dir.path, 0o755)
            let process = try ManagedProcess(
                name: "switchyard-up-netns", executable: try SwitchyardBinary.path(),
                arguments: [
                    "up", "--netns", "--demo", "--fresh", "--data", dir.file("stack").path,
                    "--config", Fixtures.repositoryRoot.appendingPathComponent("regions.yaml").path, "--log-level", "notice",
                ],
                directory: dir.url, maxLifetime: .seconds(230))
            let ended = await process.waitForExit(timeout: .seconds(220))
            let output = process.outputTail(lines: 40)
            #expect(ended && process.exitStatus == 0, "up --netns --demo succeeded\n\(output)")
            let stderr = process.stderr()
            #expect(stderr.contains("demo us-east-1: 5 SIP calls through 10.77.0.1:5060: sipp exit 0"), "\(output)")
            #expect(stderr.contains("demo us-west-2: 5 SIP calls through 10.77.0.2:5160: sipp exit 0"))
            #expect(stderr.components(separatedBy: "ended completed, CDR written").count == 3)
            #expect(stderr.contains("35 ms each-way link"))
            #expect(Self.processes(under: dir.url.path).isEmpty, "no process left behind")
            let namespaces = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            #expect(!namespaces.contains("/run/netns/sy-us-"), "the namespaces are removed")
            #expect(!FileManager.default.fileExists(atPath: "/run/netns/sy-us-east-1"))
        }

        /// Command lines of running processes that mention `path`.
        static func processes(under path: String) -> [String] {
            let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { Int($0) != nil }
            return pids.compactMap { pid in
                guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
                let line = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
                return line.contains(path) ? line : nil
            }
        }
    }
}
