public import Foundation

/// A `switchyard orchestrator` or `switchyard cdr` process for a test, awaited until it says it
/// is running.
public final class SwitchyardWorker: Sendable {
    public let process: ManagedProcess

    private init(process: ManagedProcess) { self.process = process }

    deinit { process.terminate() }

    /// `kind`: "orchestrator" or "cdr". `arguments` are extra flags; `environment` extra variables.
    public static func start(
        _ kind: String, name: String? = nil, config: URL, database: String, nats: String, arguments: [String] = [], environment: [String: String] = [:],
        in directory: TemporaryDirectory
    ) async throws -> SwitchyardWorker {
        let process = try ManagedProcess(
            name: name ?? kind, executable: try SwitchyardBinary.path(),
            arguments: [kind, "--config", config.path, "--database", database, "--nats", nats, "--log-level", "info"] + arguments,
            environment: environment, directory: directory.url, maxLifetime: .seconds(600))
        let marker = kind == "cdr" ? "CDR writer running" : "orchestrator running"
        let ready = await Poll.until(timeout: .seconds(20), interval: .milliseconds(100)) {
            process.stderr().contains(marker) || !process.isRunning
        }
        guard ready, process.isRunning else { throw TestSupportError("switchyard \(kind) did not start: \(process.outputTail())") }
        return SwitchyardWorker(process: process)
    }

    public func kill() { process.signal(SIGKILL) }

    @discardableResult
    public func stop() -> ManagedProcess.Termination? { process.terminate(grace: .seconds(5)) }

    public func logTail(lines: Int = 40) -> String { process.outputTail(lines: lines) }

    /// Lines of its log containing `text`.
    public func logLines(containing text: String) -> [String] {
        process.stderr().split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }
}

/// A local HTTP receiver for status callbacks: a Python http.server that appends each POST body,
/// or each GET's query (its signature marked `GET:`), one per line, to a file.
public final class CallbackReceiver: Sendable {
    public let port: Int
    public let file: URL
    public let process: ManagedProcess

    private init(port: Int, file: URL, process: ManagedProcess) {
        self.port = port
        self.file = file
        self.process = process
    }

    deinit { process.terminate() }

    public var url: String { "http://127.0.0.1:\(port)/status" }

    public static func start(in directory: TemporaryDirectory) async throws -> CallbackReceiver {
        let port = try FreePort.next()
        let file = directory.file("callbacks.txt")
        FileManager.default.createFile(atPath: file.path, contents: nil)
        let script = """
            import http.server, sys
            out = sys.argv[2]
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    n = int(self.headers.get('Content-Length', 0))
                    body = self.rfile.read(n).decode()
                    with open(out, 'a') as f:
                        f.write(self.headers.get('X-Twilio-Signature', '') + '\\t' + body + '\\n')
                    self.send_response(204)
                    self.end_headers()
                def do_GET(self):
                    # StatusCallbackMethod=GET: the fields are the query; marked for the validator.
                    query = self.path.partition('?')[2]
                    with open(out, 'a') as f:
                        f.write('GET:' + self.headers.get('X-Twilio-Signature', '') + '\\t' + query + '\\n')
                    self.send_response(204)
                    self.end_headers()
                def log_message(self, *a):
                    pass
            http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
            """
        let process = try ManagedProcess(
            name: "callbacks", executable: "python3", arguments: ["-c", script, String(port), file.path], directory: directory.url, maxLifetime: .seconds(600))
        let ready = await Poll.until(timeout: .seconds(10)) { (try? SIPTCPClient(connectingTo: port)) != nil }
        guard ready else { throw TestSupportError("callback receiver did not start: \(process.outputTail())") }
        return CallbackReceiver(port: port, file: file, process: process)
    }

    /// Every callback received so far, as form fields.
    public var received: [[String: String]] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { whole in
            let line = whole.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).last ?? ""
            var fields: [String: String] = [:]
            for pair in line.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
                }
                if kv.count == 2 { fields[kv[0]] = kv[1] }
            }
            return fields
        }
    }

    /// Checks every received callback's `X-Twilio-Signature` with the official `twilio` Python
    /// package's `RequestValidator` (installed in `.venv` by scripts/bootstrap). Returns the
    /// number of callbacks that validate, and how many there were.
    public func validateSignatures(secret: String) throws -> (valid: Int, total: Int) {
        let python = Fixtures.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else { throw TestSupportError("no \(python): run scripts/bootstrap") }
        let script = """
            import sys, urllib.parse
            from twilio.request_validator import RequestValidator
            v = RequestValidator(sys.argv[1]); ok = total = 0
            for line in open(sys.argv[2]):
                sig, _, body = line.rstrip('\\n').partition('\\t')
                total += 1
                if sig.startswith('GET:'):
                    # Twilio signs a GET's whole URL, query included, with no body fields.
                    ok += v.validate(sys.argv[3] + '?' + body, {}, sig[4:])
                else:
                    ok += v.validate(sys.argv[3], dict(urllib.parse.parse_qsl(body, keep_blank_values=True)), sig)
            print(ok, total)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, secret, file.path, url]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        let words = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
        guard words.count == 2, let ok = Int(words[0]), let total = Int(words[1].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSupportError("validator said \(words)")
        }
        return (ok, total)
    }
}
