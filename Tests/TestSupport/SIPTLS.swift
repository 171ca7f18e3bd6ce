public import Foundation

/// SIP over TLS for the tests, through `scripts/sip-tls.py` (Python's ssl: Debian's sipp has no
/// TLS), and the throwaway PKI of `scripts/tls-test-ca`.
public enum SIPTLS {
    /// Writes a fresh test CA and certificates into `dir/pki` and returns that folder.
    public static func makePKI(in dir: TemporaryDirectory) throws -> URL {
        let pki = dir.file("pki")
        let script = Fixtures.repositoryRoot.appendingPathComponent("scripts/tls-test-ca").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script, pki.path]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestSupportError("tls-test-ca failed: \(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        }
        return pki
    }

    /// The Python interpreter with the ssl module (the system one).
    static var python: String {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
    }

    static var script: String { Fixtures.repositoryRoot.appendingPathComponent("scripts/sip-tls.py").path }

    /// Runs `sip-tls.py call|options` and returns its JSON line.
    /// `certificate`: the name of a client certificate in `pki` (`carrier-a` → carrier-a.pem/.key).
    public static func run(
        _ mode: String, port: Int, pki: URL, certificate: String? = nil, to: String? = nil, timeout: Duration = .seconds(15)
    ) async throws -> [String: Any] {
        var arguments = [script, mode, "--port", "\(port)", "--ca", pki.appendingPathComponent("ca.pem").path]
        if let certificate {
            arguments += [
                "--cert", pki.appendingPathComponent("\(certificate).pem").path, "--key", pki.appendingPathComponent("\(certificate).key").path,
            ]
        }
        if let to { arguments += ["--to", to] }
        return try await JSONLineProcess.run(executable: python, arguments: arguments, timeout: timeout, what: "sip-tls.py \(mode)")
    }

    /// A TLS node (UAS) on a free port, answering until `calls` calls ended or `seconds` passed.
    /// Its stdout has one JSON line per INVITE.
    public static func startNode(in dir: TemporaryDirectory, pki: URL, calls: Int = 1, seconds: Int = 30) throws -> (ManagedProcess, Int) {
        let port = try FreePort.next()
        let process = try ManagedProcess(
            name: "tls-node", executable: python,
            arguments: [
                script, "node", "--port", "\(port)", "--cert", pki.appendingPathComponent("node.pem").path, "--key",
                pki.appendingPathComponent("node.key").path, "--count", "\(calls)", "--seconds", "\(seconds)",
            ],
            directory: dir.url, maxLifetime: .seconds(seconds + 10))
        return (process, port)
    }
}
