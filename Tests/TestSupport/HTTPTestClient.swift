import Foundation

/// A minimal HTTP/1.1 client for tests (one request per connection, `Connection: close`), so
/// the API is exercised over a real socket with exactly the bytes a test chooses.
public enum HTTPTestClient {
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: String

        /// The body as a JSON object (empty when it is not one).
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    public static func request(
        port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil, timeout: Duration = .seconds(10)
    ) throws -> Reply {
        let c = try SIPTCPClient(connectingTo: port)
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if let body {
            if headers.keys.first(where: { $0.lowercased() == "content-type" }) == nil { text += "Content-Type: application/json\r\n" }
            text += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            text += "\r\n"
        }
        c.write(text)
        let raw = String(decoding: c.read(timeout: timeout), as: UTF8.self)
        guard let split = raw.range(of: "\r\n\r\n") else { throw TestSupportError("no HTTP response to \(method) \(path): \(raw.prefix(200))") }
        let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = String(raw[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let lineEnd = rest.range(of: "\r\n") {
            guard let size = Int(rest[..<lineEnd.lowerBound].split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            let bytes = Array(rest[start...].utf8.prefix(size))
            out += String(decoding: bytes, as: UTF8.self)
            let after = rest[start...].utf8.index(rest[start...].utf8.startIndex, offsetBy: min(size, rest[start...].utf8.count))
            rest = rest[after...].dropFirst(2)
        }
        return out
    }
}

/// A `switchyard api` process on a free port against the given PostgreSQL and NATS, awaited
/// until `/healthz` answers 200.
public final class SwitchyardAPI: Sendable {
    public let port: Int
    public let process: ManagedProcess

    private init(port: Int, process: ManagedProcess) {
        self.port = port
        self.process = process
    }

    deinit { process.terminate() }

    public static func start(
        database: String, nats: String, in directory: TemporaryDirectory, name: String = "api", arguments: [String] = []
    ) async throws -> SwitchyardAPI {
        let binary = try SwitchyardBinary.path()
        var last = ""
        for attempt in 0..<3 {
            let port = try FreePort.next()
            let process = try ManagedProcess(
                name: attempt == 0 ? name : "\(name)-\(attempt)", executable: binary,
                arguments: ["api", "--listen", "127.0.0.1:\(port)", "--database", database, "--nats", nats, "--pool", "4", "--log-level", "info"] + arguments,
                directory: directory.url, maxLifetime: .seconds(600))
            let ready = await Poll.until(timeout: .seconds(20), interval: .milliseconds(100)) {
                guard process.isRunning else { return false }
                return (try? HTTPTestClient.request(port: port, "GET", "/healthz", timeout: .seconds(1)))?.status == 200
            }
            if ready { return SwitchyardAPI(port: port, process: process) }
            last = "switchyard api on :\(port) never became healthy: \(process.outputTail())"
            process.terminate()
        }
        throw TestSupportError(last)
    }

    /// `switchyard accounts create --quiet`: a new API key.
    public static func createAccount(name: String, database: String, in directory: TemporaryDirectory) async throws -> String {
        let p = try ManagedProcess(
            name: "accounts-\(name)", executable: try SwitchyardBinary.path(),
            arguments: ["accounts", "create", "--name", name, "--database", database, "--quiet"], directory: directory.url, maxLifetime: .seconds(60))
        guard await p.waitForExit(timeout: .seconds(60)), p.exitStatus == 0 else { throw TestSupportError("accounts create failed: \(p.outputTail())") }
        return p.stdout().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func request(_ method: String, _ path: String, key: String?, body: String? = nil, headers: [String: String] = [:]) throws -> HTTPTestClient.Reply {
        var h = headers
        if let key { h["Authorization"] = "Bearer \(key)" }
        return try HTTPTestClient.request(port: port, method, path, headers: h, body: body)
    }

    public func logTail(lines: Int = 30) -> String { process.outputTail(lines: lines) }

    @discardableResult
    public func stop() -> ManagedProcess.Termination? { process.terminate(grace: .seconds(5)) }
}
