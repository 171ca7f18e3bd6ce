import Dispatcher
import Foundation
import Logging
import SIPProxy
import ServiceLifecycle
import UnixSignals

/// Re-reads `regions.yaml` on SIGHUP (and for `POST /reload`): a file that does not validate is
/// reported and ignored, the running configuration stays.
struct ConfigReloader: Service {
    let path: String
    let handle: ProxyHandle
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await reload()
        }
    }

    /// Loads, validates and applies the file. Returns the diff, or the reason it was refused.
    func reload() async -> Result<NodeDispatcher.ReloadDiff, any Error> {
        do {
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw CommandFailure("cannot read \(path)")
            }
            let regions = try RegionsConfigLoader.load(yaml: text, file: path)
            guard let applied = handle.reload(regions) else { throw CommandFailure("proxy not running") }
            return .success(try await applied.get())
        } catch {
            logger.error("reload refused; the running configuration stays", metadata: ["file": "\(path)", "error": "\(error)"])
            return .failure(error)
        }
    }
}
