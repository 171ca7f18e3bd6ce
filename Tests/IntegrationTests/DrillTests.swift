import Foundation
import Testing
import TestSupport

extension Integration {
    /// `switchyard drill --kill region us-east-1`: the whole east region SIGKILLed under load.
    @Suite("switchyard drill", .serialized, .timeLimit(.minutes(5)))
    struct DrillTests {
        @Test(
            "region us-east-1 killed under load: no setup failure in the other region, writes back within 15 s, no CDR doubled, no stream message lost, a picture"
        )
        func regionLossDrill() async throws {
            let dir = try TemporaryDirectory()
            chmod(dir.path, 0o755)  // PostgreSQL runs as the postgres user below it
            let json = dir.file("drill.json")
            let process = try ManagedProcess(
                name: "switchyard-drill", executable: try SwitchyardBinary.path(),
                arguments: [
                    "drill", "--fresh", "--data", dir.file("stack").path, "--config", Fixtures.repositoryRoot.appendingPathComponent("regions.yaml").path,
                    "--kill", "region", "us-east-1", "--at", "8", "--duration", "20", "--sip-rate", "5", "--api-rate", "3", "--json-out", json.path,
                ],
                directory: dir.url, maxLifetime: .seconds(280))
            let ended = await process.waitForExit(timeout: .seconds(270))
            #expect(ended && process.exitStatus == 0, "the drill ran to its report\n\(process.outputTail(lines: 40))")
            let report = try #require(try? JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any], "\(process.outputTail())")
            func number(_ key: String) -> Double { (report[key] as? NSNumber)?.doubleValue ?? -1 }
            #expect(number("sip_setup_failures") == 0, "no SIP call to the surviving region failed at setup: \(report)")
            #expect(number("db_failover_s") > 0 && number("db_failover_s") < 15, "Patroni promoted the west member: \(report)")
            #expect(number("api_write_rto_s") >= 0 && number("api_write_rto_s") < 15, "API writes came back in the surviving region: \(report)")
            #expect(number("cdrs_doubled") == 0, "\(report)")
            #expect(number("stream_messages_lost") == 0, "\(report)")
            #expect(number("sip_calls") > 0 && number("api_creates") > 0)
            let svg = try String(contentsOf: json.deletingPathExtension().appendingPathExtension("svg"), encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("fault"), "the picture is drawn")
            #expect(UpTests.processes(under: dir.url.path).isEmpty, "no process left behind")
        }
    }
}
