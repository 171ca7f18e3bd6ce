public import Foundation

/// A `switchyard fsnode` process (an emulated FreeSWITCH node) on free loopback ports, awaited
/// until its ESL port says `auth/request` and its SIP port answers OPTIONS, stopped at the end.
public final class FSNodeProcess: Sendable {
    public let name: String
    public let sipPort: Int
    public let eslPort: Int
    public let process: ManagedProcess

    private init(name: String, sipPort: Int, eslPort: Int, process: ManagedProcess) {
        self.name = name
        self.sipPort = sipPort
        self.eslPort = eslPort
        self.process = process
    }

    deinit {
        process.terminate()
    }

    /// Starts a node; `arguments` are extra `fsnode` flags (`--answer-ms 5000`, `--fault stall` ...).
    /// `sipPort`/`eslPort` pin the ports (to restart a node where it was).
    public static func start(
        name: String, arguments: [String] = [], sipPort: Int? = nil, eslPort: Int? = nil, in directory: TemporaryDirectory,
        maxLifetime: Duration = .seconds(180)
    ) async throws -> FSNodeProcess {
        let binary = try SwitchyardBinary.path()
        var lastFailure = ""
        for attempt in 0..<3 {
            let sip = try sipPort ?? FreePort.next()
            let esl = try eslPort ?? FreePort.next()
            let process = try ManagedProcess(
                name: attempt == 0 ? name : "\(name)-retry\(attempt)", executable: binary,
                arguments: ["fsnode", "--name", name, "--sip", "127.0.0.1:\(sip)", "--esl", "127.0.0.1:\(esl)", "--log-level", "info"] + arguments,
                directory: directory.url, maxLifetime: maxLifetime)
            let node = FSNodeProcess(name: name, sipPort: sip, eslPort: esl, process: process)
            let client = try SIPUDPClient()
            let ready = await Poll.until(timeout: .seconds(10), interval: .milliseconds(50)) {
                guard process.isRunning else { return false }
                guard (try? node.api("status", timeout: .milliseconds(500)))?.contains("is ready") == true else { return false }
                if arguments.contains("stall") { return true }
                let options = SIPTestMessages.options(toPort: sip, fromPort: client.localPort, tag: "fsnode-ready")
                guard let reply = try? client.request(Array(options.utf8), to: sip, timeout: .milliseconds(200)) else { return false }
                return SIPTestMessages.statusCode(reply) == 200
            }
            if ready { return node }
            let exitedAtStart = !process.isRunning
            process.terminate()
            lastFailure = "fsnode \(name) (sip \(sip), esl \(esl)) never became ready\n\(process.outputTail())"
            guard exitedAtStart, sipPort == nil, eslPort == nil else { break }
        }
        throw TestSupportError(lastFailure)
    }

    /// Runs `api <command>` over a fresh ESL connection (raw frames, independent of the ESL
    /// module under test) and returns the body of the api/response.
    public func api(_ command: String, password: String = "ClueCon", timeout: Duration = .seconds(2)) throws -> String {
        let c = try SIPTCPClient(connectingTo: eslPort)
        func frame() -> String {
            String(decoding: c.read(timeout: timeout) { Self.frameComplete($0) }, as: UTF8.self)
        }
        guard frame().contains("auth/request") else { throw TestSupportError("fsnode \(name): no auth/request") }
        c.write("auth \(password)\n\n")
        guard frame().contains("+OK accepted") else { throw TestSupportError("fsnode \(name): auth refused") }
        c.write("api \(command)\n\n")
        let reply = frame()
        guard let split = reply.range(of: "\n\n") else { throw TestSupportError("fsnode \(name): no reply to api \(command)") }
        c.write("exit\n\n")
        return String(reply[split.upperBound...])
    }

    /// A frame is complete when its header block ended and Content-Length bytes followed.
    static func frameComplete(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\n\n") else { return false }
        let head = text[..<split.lowerBound]
        guard let line = head.split(separator: "\n").first(where: { $0.hasPrefix("Content-Length:") }),
            let length = Int(line.dropFirst("Content-Length:".count).trimmingCharacters(in: .whitespaces))
        else { return true }
        return text[split.upperBound...].utf8.count >= length
    }

    /// SIGKILL: the node dies without a goodbye (a crashed media server).
    public func kill() {
        process.signal(SIGKILL)
    }

    @discardableResult
    public func stop() -> ManagedProcess.Termination? {
        process.terminate(grace: .seconds(3))
    }

    public func logTail(lines: Int = 30) -> String { process.outputTail(lines: lines) }
}
