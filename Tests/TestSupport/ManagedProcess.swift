public import Foundation
import Synchronization

/// A child process for a test: stdout and stderr go to files in its own directory, and it is
/// always stopped: by `terminate()`, else on deinit, else by an `atexit` hook.
///
/// Spawned with `posix_spawn` rather than Foundation's `Process`: a test runs on a libdispatch
/// worker thread, which blocks SIGTERM, SIGUSR1 and friends, and a spawned child inherits that
/// mask, so it would never see the signals meant to stop it. Here the child starts with an empty
/// signal mask and default handlers. It stays in the test's process group, so a Ctrl-C on
/// `swift test` reaches it too.
///
/// With `maxLifetime`, the child runs under coreutils `timeout --foreground`, so even a test
/// process that crashes (and so runs neither deinit nor atexit) cannot leave it running longer
/// than that. `timeout` forwards SIGTERM, SIGINT and SIGHUP to the child; other signals would only
/// reach the wrapper, so `signal(_:)` refuses them for a wrapped process. SIGKILL goes to the
/// whole process tree, so killing the wrapper never orphans the child.
public final class ManagedProcess: Sendable {
    /// How a process ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        /// Something else in the test process reaped it, so its status is unknown.
        case reapedElsewhere

        public var description: String {
            switch self {
            case .exited(let code): "exit \(code)"
            case .signaled(let signal): "signal \(signal)"
            case .reapedElsewhere: "exited (status unknown)"
            }
        }
    }

    public let name: String
    /// The working directory; the stdout and stderr files live here too.
    public let directory: URL
    public let stdoutURL: URL
    public let stderrURL: URL
    /// The command as launched (without the `timeout` wrapper).
    public let commandLine: [String]
    /// The PID of the launched process (of the `timeout` wrapper when `maxLifetime` was given).
    public let processIdentifier: pid_t

    private let wrapped: Bool
    private let state = Mutex<(stopRequested: Bool, termination: Termination?)>((false, nil))

    /// Launches `executable` (a path, or a name looked up in PATH) with `arguments` in
    /// `directory` (created if missing), the current environment plus `environment`.
    public init(
        name: String,
        executable: String,
        arguments: [String],
        environment: [String: String] = [:],
        directory: URL,
        maxLifetime: Duration? = nil
    ) throws {
        self.name = name
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        stdoutURL = directory.appendingPathComponent("\(name).stdout")
        stderrURL = directory.appendingPathComponent("\(name).stderr")

        let resolved = try Self.resolve(executable)
        commandLine = [resolved] + arguments
        let timeoutTool = "/usr/bin/timeout"
        var argv = commandLine
        if let maxLifetime, FileManager.default.isExecutableFile(atPath: timeoutTool) {
            argv = [timeoutTool, "--foreground", "--kill-after=3s", "\(max(1, maxLifetime.components.seconds))s"] + argv
            wrapped = true
        } else {
            wrapped = false
        }
        let env = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0.key)=\($0.value)" }
        processIdentifier = try Self.spawn(argv: argv, environment: env, directory: directory.path, stdout: stdoutURL.path, stderr: stderrURL.path)
        ProcessRegistry.add(processIdentifier)
    }

    deinit {
        terminate()
    }

    public var isRunning: Bool { termination == nil }

    /// How the process ended, or nil while it runs (reaps it once it has exited).
    public var termination: Termination? {
        state.withLock { state in
            if state.termination == nil {
                var status: Int32 = 0
                let rc = waitpid(processIdentifier, &status, WNOHANG)
                if rc == processIdentifier {
                    // <sys/wait.h> macros, which Swift does not import.
                    let signal = status & 0x7F
                    state.termination = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
                } else if rc < 0 && errno == ECHILD {
                    state.termination = .reapedElsewhere
                }
                if state.termination != nil { ProcessRegistry.remove(processIdentifier) }
            }
            return state.termination
        }
    }

    /// The exit code, or 128 + signal number when a signal ended it (as a shell reports it).
    public var exitStatus: Int32? {
        switch termination {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        case .reapedElsewhere, nil: nil
        }
    }

    /// Sends `signal` (for example SIGUSR1 to make sipp finish smoothly).
    public func signal(_ signal: Int32) {
        precondition(!wrapped || [SIGTERM, SIGINT, SIGHUP, SIGKILL].contains(signal), "\(name): timeout(1) does not forward signal \(signal)")
        guard isRunning else { return }
        if signal == SIGKILL {
            ProcessTree.killTree(processIdentifier)
        } else {
            kill(processIdentifier, signal)
        }
    }

    /// Waits (polling, without blocking a thread) until the process exits; false on timeout.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Bool {
        await Poll.until(timeout: timeout, interval: .milliseconds(20)) { !isRunning }
    }

    /// Stops the process: SIGTERM, then SIGKILL (to it and its descendants) after `grace`.
    /// Idempotent; synchronous so that deinit can use it. Returns how it ended.
    @discardableResult
    public func terminate(grace: Duration = .seconds(5)) -> Termination? {
        let first = state.withLock { state in
            defer { state.stopRequested = true }
            return !state.stopRequested
        }
        if first && isRunning {
            kill(processIdentifier, SIGTERM)
            if !blockingWait(grace) {
                ProcessTree.killTree(processIdentifier)
                _ = blockingWait(.seconds(5))
            }
        }
        return termination
    }

    /// Everything the process wrote to stdout so far.
    public func stdout() -> String { (try? String(contentsOf: stdoutURL, encoding: .isoLatin1)) ?? "" }

    /// Everything the process wrote to stderr so far.
    public func stderr() -> String { (try? String(contentsOf: stderrURL, encoding: .isoLatin1)) ?? "" }

    /// The last `lines` lines of stdout and stderr, for failure messages.
    public func outputTail(lines: Int = 30) -> String {
        func tail(_ text: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }
        return "--- \(name) stdout (\(stdoutURL.path)):\n\(tail(stdout()))\n--- \(name) stderr (\(stderrURL.path)):\n\(tail(stderr()))"
    }

    private func blockingWait(_ timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// `executable` as given when it contains a slash, else looked up in PATH.
    private static func resolve(_ executable: String) throws -> String {
        if executable.contains("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestSupportError("\(executable) not found in PATH (\(path))")
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which Swift does not import
    /// because it is declared only under _GNU_SOURCE.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    private static func spawn(argv: [String], environment: [String], directory: String, stdout: String, stderr: String) throws -> pid_t {
        guard let addChdir else { throw TestSupportError("posix_spawn_file_actions_addchdir_np is not available (glibc < 2.29?)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = addChdir(&actions, directory)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard rc == 0 else {
            throw TestSupportError("posix_spawn \(argv.joined(separator: " ")) in \(directory): \(LoopbackSocket.errnoText(rc))")
        }
        return pid
    }
}
