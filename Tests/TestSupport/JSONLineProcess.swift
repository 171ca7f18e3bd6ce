public import Foundation

/// Runs a helper program that prints its result as one JSON object on its last stdout line
/// (the twilio SDK scripts, `scripts/sip-tls.py`), bounded by `timeout`.
enum JSONLineProcess {
    static func run(executable: String, arguments: [String], timeout: Duration, what: String) async throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes while it runs, so a chatty program cannot block on a full pipe.
        let stdout = Task.detached { out.fileHandleForReading.readDataToEndOfFile() }
        let stderr = Task.detached { err.fileHandleForReading.readDataToEndOfFile() }
        let deadline = ContinuousClock.now + timeout
        while p.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if p.isRunning {
            p.terminate()
            throw TestSupportError("\(what) ran over \(timeout)")
        }
        let text = String(decoding: await stdout.value, as: UTF8.self)
        let errText = String(decoding: await stderr.value, as: UTF8.self)
        guard p.terminationStatus == 0, let last = text.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        else {
            throw TestSupportError("\(what) failed (\(p.terminationStatus)): \(text.suffix(2000)) \(errText.suffix(3000))")
        }
        return object
    }
}
