import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension UpCommand {
    /// The processes `up` started, in start order, with their logs under `root/logs`; stopped in
    /// reverse order (SIGTERM, then SIGKILL after 10 s). Patroni double-forks its postmaster, so
    /// a Patroni member's PostgreSQL is stopped by its pid file as well.
    final class Stack: @unchecked Sendable {
        // @unchecked: `processes` is appended by the main thread while starting and read by the
        // signal watcher only after start-up (`lock` guards both).
        let root: URL
        let logLevel: String
        var apiKey = ""
        /// The demo account's Twilio credentials (AccountSid, AuthToken), when they could be read.
        var twilio: (sid: String, token: String)?
        private let lock = NSLock()
        private var processes: [(name: String, process: Process)] = []
        /// How each was started, for `restart`.
        private var specs: [String: (executable: String, arguments: [String], asPostgres: Bool, namespace: String?)] = [:]
        private var stopped = false
        private var stopHooks: [@Sendable () -> Void] = []
        private let stopDone = DispatchSemaphore(value: 0)

        init(root: URL, logLevel: String) {
            self.root = root
            self.logLevel = logLevel
        }

        func say(_ text: String) {
            FileHandle.standardError.write(Data("up: \(text)\n".utf8))
        }

        static func postgresBin() throws -> String {
            let base = "/usr/lib/postgresql"
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
            guard let v = versions.last else { throw ValidationError("PostgreSQL is not installed (scripts/bootstrap installs it)") }
            return "\(base)/\(v)/bin"
        }

        func chownToPostgres(_ url: URL) throws {
            guard let pw = getpwnam("postgres") else { throw ValidationError("no postgres user (install the postgresql package)") }
            chown(url.path, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }

        /// Starts `executable` with its output in logs/NAME.log.
        /// Starts a process (as the postgres user when `asPostgres`; inside network namespace
        /// `namespace` when given, by `ip netns exec`, which execs: the pid stays the process's).
        func start(_ name: String, _ executable: String, _ arguments: [String], asPostgres: Bool = false, namespace: String? = nil) throws {
            let log = root.appendingPathComponent("logs/\(name).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            let p = Process()
            var argv: [String]
            if asPostgres {
                argv = ["/usr/sbin/runuser", "-u", "postgres", "--", executable] + arguments
                chmod(log.path, 0o666)
            } else {
                argv = [executable.hasPrefix("/") ? executable : Self.which(executable) ?? executable] + arguments
            }
            if let namespace { argv = ["/usr/sbin/ip", "netns", "exec", namespace] + argv }
            p.executableURL = URL(fileURLWithPath: argv[0])
            p.arguments = Array(argv.dropFirst())
            p.standardOutput = handle
            p.standardError = handle
            p.standardInput = FileHandle.nullDevice
            try p.run()
            lock.withLock {
                processes.removeAll { $0.name == name }
                processes.append((name, p))
                specs[name] = (executable, arguments, asPostgres, namespace)
            }
        }

        /// SIGKILL (a crash) of the named processes; a Patroni member's postmaster goes with it.
        func kill(_ names: [String]) {
            let victims = lock.withLock { processes.filter { names.contains($0.name) } }
            for (name, p) in victims where p.isRunning {
                // runuser's child (Patroni, etcd) dies with it: the whole tree, children first.
                for child in Self.descendants(of: p.processIdentifier) { Glibc.kill(child, SIGKILL) }
                Glibc.kill(p.processIdentifier, SIGKILL)
                if let member = Layout.patroni.first(where: { $0.name == name }) { killPostmaster(member.name, signal: SIGKILL) }
            }
            let deadline = Date().addingTimeInterval(5)
            while victims.contains(where: { $0.process.isRunning }), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        }

        /// Sends `sig` to each named process (SIGSTOP: it hangs, sockets open, nothing answered;
        /// SIGCONT: it goes on), its descendants too.
        func deliverSignal(_ sig: Int32, to names: [String]) {
            let targets = lock.withLock { processes.filter { names.contains($0.name) } }
            for (_, p) in targets where p.isRunning {
                for child in Self.descendants(of: p.processIdentifier) { Glibc.kill(child, sig) }
                Glibc.kill(p.processIdentifier, sig)
            }
        }

        /// Every descendant of `root` (children, their children, ...), from /proc.
        static func descendants(of root: pid_t) -> [pid_t] {
            var children: [pid_t: [pid_t]] = [:]
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .isoLatin1),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 1, let ppid = pid_t(fields[1]) { children[ppid, default: []].append(pid) }
            }
            var found: [pid_t] = []
            var pending = children[root] ?? []
            while let pid = pending.popLast() {
                found.append(pid)
                pending += children[pid] ?? []
            }
            return found
        }

        /// Starts killed processes again, as they were started, in the order given.
        func restart(_ names: [String]) throws {
            for name in names {
                guard let spec = lock.withLock({ specs[name] }) else { continue }
                try start(name, spec.executable, spec.arguments, asPostgres: spec.asPostgres, namespace: spec.namespace)
            }
        }

        func isRunning(_ name: String) -> Bool {
            lock.withLock { processes.first { $0.name == name }?.process.isRunning ?? false }
        }

        /// The postmaster of a Patroni member, by its pid file.
        func killPostmaster(_ member: String, signal sig: Int32) {
            let pidFile = root.appendingPathComponent("postgres/\(member)/postmaster.pid")
            guard let text = try? String(contentsOf: pidFile, encoding: .utf8), let first = text.split(separator: "\n").first,
                let pid = pid_t(first.trimmingCharacters(in: .whitespaces)), pid > 1, Glibc.kill(pid, 0) == 0
            else { return }
            Glibc.kill(pid, sig)
            let deadline = Date().addingTimeInterval(10)
            while Glibc.kill(pid, 0) == 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if Glibc.kill(pid, 0) == 0 { Glibc.kill(pid, SIGKILL) }
        }

        /// Runs a command to its end and returns its standard output; throws when it fails.
        @discardableResult
        func runToEnd(_ name: String, _ executable: String, _ arguments: [String]) throws -> String {
            let result = runCapturing(executable, arguments)
            guard result.status == 0 else { throw ValidationError("\(name) failed (exit \(result.status)): \(result.output.suffix(800))") }
            return result.output
        }

        func runCapturing(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : Self.which(executable) ?? executable)
            p.arguments = arguments
            p.currentDirectoryURL = root.appendingPathComponent("logs")
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.standardError
            p.standardInput = FileHandle.nullDevice
            do { try p.run() } catch { return (127, "\(error)") }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }

        static func which(_ name: String) -> String? {
            for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
                let path = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
            return nil
        }

        func waitFor(_ what: String, timeout: Double, _ condition: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if condition() { return }
                if let dead = firstExited() {
                    // The log's last lines say why; the folder may be gone by the time anyone looks.
                    let log = root.appendingPathComponent("logs/\(dead).log")
                    let lines = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n", omittingEmptySubsequences: false).suffix(15) ?? []
                    throw CommandFailure(
                        "\(dead) exited while waiting for \(what) (see \(log.path)); its last lines:\n" + lines.joined(separator: "\n"))
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            throw ValidationError("\(what): not ready within \(Int(timeout)) s (logs in \(root.path)/logs)")
        }

        func waitForTCP(_ port: Int, _ what: String, host: String = "127.0.0.1") throws {
            try waitFor("\(what) on \(host):\(port)", timeout: 20) { Self.connect(port, host: host).map { close($0) } != nil }
        }

        /// An OPTIONS over UDP gets an answer.
        func waitForUDPAnswer(_ port: Int, _ what: String, host: String = "127.0.0.1", local: String = "127.0.0.1") throws {
            try waitFor("\(what) answering SIP on \(host):\(port)", timeout: 20) { Self.sipOptions(port, host: host, local: local) }
        }

        private func firstExited() -> String? {
            lock.withLock { processes.first { !$0.process.isRunning }?.name }
        }

        /// Blocks until one of the processes exits (or stopAll ran); returns its name.
        func waitForAnyExit() -> String {
            while true {
                if lock.withLock({ stopped }) { return "a stop signal" }
                if let dead = firstExited() { return dead }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }

        /// Stops everything once; a second caller (the signal handler and the main thread can
        /// both get here) waits until the first has finished, so the process never exits with
        /// children half-stopped.
        func stopAll() {
            let (all, first): ([(name: String, process: Process)], Bool) = lock.withLock {
                defer { stopped = true }
                return stopped ? ([], false) : (processes.reversed(), true)
            }
            guard first else {
                stopDone.wait()
                stopDone.signal()
                return
            }
            defer { stopDone.signal() }
            for (name, p) in all where p.isRunning {
                Glibc.kill(p.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(10)
                while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                if p.isRunning {
                    say("\(name) did not stop within 10 s of SIGTERM; killing it")
                    for child in Self.descendants(of: p.processIdentifier) { Glibc.kill(child, SIGKILL) }
                    Glibc.kill(p.processIdentifier, SIGKILL)
                }
            }
            // Patroni's postmasters (double-forked): by their pid files, fast shutdown.
            for member in Layout.patroni { killPostmaster(member.name, signal: SIGINT) }
            Thread.sleep(forTimeInterval: 0.5)
            for hook in lock.withLock({ stopHooks }) { hook() }
            say("stopped everything it started")
        }

        /// Runs after every process is stopped (the network namespaces go last).
        func onStop(_ hook: @escaping @Sendable () -> Void) {
            lock.withLock { stopHooks.append(hook) }
        }

        /// SIGINT/SIGTERM: stop everything, then exit (130/143 as a shell would).
        static func installSignalHandlers(_ stack: Stack) {
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            for sig in [SIGINT, SIGTERM] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    stack.stopAll()
                    Glibc.exit(128 + sig)
                }
                source.resume()
                retained.append(source)
            }
        }
        nonisolated(unsafe) private static var retained: [any DispatchSourceSignal] = []

        // MARK: Tiny blocking clients (start-up checks only)

        /// Throws when any of `tcp`/`udp` ports on 127.0.0.1 is taken (another `up`, a stray
        /// process): starting anyway would mix two stacks.
        static func requireFree(tcp: [Int], udp: [Int]) throws {
            var taken: [String] = []
            for (ports, type) in [(tcp, SOCK_STREAM), (udp, SOCK_DGRAM)] {
                for port in ports {
                    let fd = socket(AF_INET, Int32(type.rawValue), 0)
                    guard fd >= 0 else { continue }
                    defer { close(fd) }
                    var one: Int32 = 1
                    if type == SOCK_STREAM { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
                    var addr = sockaddr_in()
                    addr.sin_family = sa_family_t(AF_INET)
                    addr.sin_port = in_port_t(UInt16(port)).bigEndian
                    addr.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
                    let rc = withUnsafePointer(to: &addr) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                    if rc != 0 { taken.append("\(type == SOCK_STREAM ? "tcp" : "udp") 127.0.0.1:\(port)") }
                }
            }
            guard taken.isEmpty else {
                throw ValidationError("already in use: \(taken.joined(separator: ", ")) (is another switchyard up or drill running? `ss -ltnup` shows who)")
            }
        }

        static func ipv4(_ host: String) -> in_addr_t {
            var a = in_addr()
            return inet_pton(AF_INET, host, &a) == 1 ? a.s_addr : in_addr_t(0x7F00_0001).bigEndian
        }

        static func connect(_ port: Int, host: String = "127.0.0.1") -> Int32? {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port)).bigEndian
            addr.sin_addr.s_addr = ipv4(host)
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else {
                close(fd)
                return nil
            }
            return fd
        }

        static func httpGet(host: String = "127.0.0.1", port: Int, path: String) -> (status: String, body: String)? {
            httpRequest(host: host, port: port, method: "GET", path: path)
        }

        static func httpRequest(
            host: String = "127.0.0.1", port: Int, method: String, path: String, body: String = "", headers: [String: String] = [:]
        ) -> (status: String, body: String)? {
            guard let fd = connect(port, host: host) else { return nil }
            defer { close(fd) }
            var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
            for (k, v) in headers { request += "\(k): \(v)\r\n" }
            if !body.isEmpty { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
            request += "\r\n" + body
            _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                data += buffer[0..<n]
            }
            let text = String(decoding: data, as: UTF8.self)
            guard let split = text.range(of: "\r\n\r\n") else { return nil }
            let status = String(text[..<split.lowerBound]).components(separatedBy: "\r\n")[0]
            var content = String(text[split.upperBound...])
            if text[..<split.lowerBound].lowercased().contains("transfer-encoding: chunked") { content = dechunk(content) }
            return (status, content)
        }

        static func dechunk(_ text: String) -> String {
            var out = ""
            var rest = Substring(text)
            while let line = rest.range(of: "\r\n") {
                guard let size = Int(rest[..<line.lowerBound].trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
                let start = line.upperBound
                let end = rest.utf8.index(start, offsetBy: size, limitedBy: rest.utf8.endIndex) ?? rest.endIndex
                out += rest[start..<end]
                rest = rest[end...].dropFirst(2)
            }
            return out
        }

        /// The pid of a started process, if it runs.
        func pid(of name: String) -> pid_t? {
            lock.withLock { processes.last { $0.name == name && $0.process.isRunning }?.process.processIdentifier }
        }

        /// One `api` command over ESL (a blocking client for the drill's samplers): the reply body.
        static func eslAPI(host: String = "127.0.0.1", port: Int, password: String = "ClueCon", _ command: String) -> String? {
            guard let fd = connect(port, host: host) else { return nil }
            defer { close(fd) }
            var pending = ""
            func frame() -> String? {
                var buffer = [UInt8](repeating: 0, count: 16_384)
                while true {
                    if let split = pending.range(of: "\n\n") {
                        let head = String(pending[..<split.lowerBound])
                        let length =
                            head.split(separator: "\n").first { $0.hasPrefix("Content-Length:") }
                            .flatMap { Int($0.dropFirst("Content-Length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                        let body = pending[split.upperBound...]
                        if body.utf8.count >= length {
                            let text = String(body.utf8.prefix(length)) ?? ""
                            pending = String(body.utf8.dropFirst(length)) ?? ""
                            return head + "\n\n" + text
                        }
                    }
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { return nil }
                    pending += String(decoding: buffer[0..<n], as: UTF8.self)
                }
            }
            func send(_ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }
            guard frame()?.contains("auth/request") == true else { return nil }
            send("auth \(password)\n\n")
            guard frame()?.contains("+OK") == true else { return nil }
            send("api \(command)\n\n")
            guard let reply = frame(), let split = reply.range(of: "\n\n") else { return nil }
            send("exit\n\n")
            return String(reply[split.upperBound...])
        }

        /// An OPTIONS to `host:port` from `local` (this namespace's address toward it); true on any answer.
        static func sipOptions(_ port: Int, host: String = "127.0.0.1", local from: String = "127.0.0.1") -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var tv = timeval(tv_sec: 0, tv_usec: 300_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = ipv4(from)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &local) { l in
                l.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { return false }
            let localPort = Int(UInt16(bigEndian: local.sin_port))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port)).bigEndian
            addr.sin_addr.s_addr = ipv4(host)
            let msg =
                "OPTIONS sip:\(host):\(port) SIP/2.0\r\nVia: SIP/2.0/UDP \(from):\(localPort);rport;branch=z9hG4bKup\(port)\r\nMax-Forwards: 70\r\n"
                + "From: <sip:up@\(from)>;tag=up\r\nTo: <sip:\(host):\(port)>\r\nCall-ID: up-\(port)\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            let sent = msg.withCString { p in
                withUnsafePointer(to: &addr) { a in
                    a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, p, strlen(p), 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            guard sent > 0 else { return false }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0
        }
    }
}
