import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The tests' HTTP/1.1 client: async-http-client (the library the workers' callbacks use), one
/// request per connection (`Connection: close`, so no pooled connection outlives the server a
/// test stopped). Bytes that no client would send (broken framing, raw SIP) go through
/// `SIPTCPClient` instead.
public enum HTTPTestClient {
    public struct Reply: Sendable {
        public var status: Int
        /// `HTTP/1.1 200 OK`.
        public var statusLine: String
        /// Lowercased names; a repeated header's values joined with ", ".
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
        var request = try HTTPClient.Request(url: "http://127.0.0.1:\(port)\(path)", method: HTTPMethod(rawValue: method))
        request.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .string(body)
        }
        let response: HTTPClient.Response
        do {
            response = try HTTPClient.shared.execute(request: request, deadline: .now() + TimeAmount(timeout)).wait()
        } catch {
            throw TestSupportError("\(method) \(path) on :\(port) failed: \(error)")
        }
        var replyHeaders: [String: String] = [:]
        for (name, value) in response.headers {
            let key = name.lowercased()
            replyHeaders[key] = replyHeaders[key].map { "\($0), \(value)" } ?? value
        }
        return Reply(
            status: Int(response.status.code),
            statusLine: "HTTP/\(response.version.major).\(response.version.minor) \(response.status.code) \(response.status.reasonPhrase)",
            headers: replyHeaders, body: response.body.map { String(buffer: $0) } ?? "")
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
