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
                arguments: ["up", "--demo", "--fresh", "--data", dir.file("stack").path, "--config", Fixtures.repositoryRoot.appendingPathComponent("regions.yaml").path,
                            "--log-level", "notice"],
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
