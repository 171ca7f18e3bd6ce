import ArgumentParser
import Dispatcher
import Foundation
import SIPProxy

/// `switchyard check regions.yaml`: validates the configuration and says what is wrong, where.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a regions.yaml and report every error with the path of its key."
    )

    @Argument(help: "The configuration file.")
    var file: String = "regions.yaml"

    func run() throws {
        let config = try loadRegions(file)
        // The certificate, key and CA files are read as the proxy would read them.
        if let expiry = try checkTLSFiles(config) {
            print("\(file): TLS certificate valid for \(expiry / 86_400) more day(s)")
        }
        let nodes = config.allNodes.count
        print("\(file): ok — \(config.regions.count) region(s), \(nodes) node(s), policy \(config.policy.rawValue)")
        for region in config.regions {
            print("  \(region.name): " + region.nodes.map { "\($0.name) \($0.sip)" }.joined(separator: ", "))
        }
    }
}

/// Loads the TLS material of `config` as the proxy does; prints the problem and exits 1 when it
/// cannot be used. Returns the seconds the proxy certificate has left (nil: no TLS).
func checkTLSFiles(_ config: RegionsConfig) throws -> Int? {
    do {
        return try SIPTLSCheck.secondsLeft(config)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Reads and validates `path`, printing the errors and exiting non-zero when it is invalid.
func loadRegions(_ path: String) throws -> RegionsConfig {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("cannot read \(path)")
    }
    do {
        return try RegionsConfigLoader.load(yaml: text, file: path)
    } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(1)
    }
}
