import Foundation

/// Runs sipp (`$SIPP_BIN`, else `sipp` from PATH) in the foreground as `ManagedProcess`es, every
/// run bounded in calls (`-m`) and time (`-timeout`), with statistics (`-trace_stat`), message
/// counts (`-trace_counts`), the final screen (`-trace_screen`) and unexpected messages
/// (`-trace_err`) written to the run's own directory.
public enum Sipp {
    /// sipp transports: UDP or TCP, one socket (`-t u1` / `-t t1`).
    public enum Transport: String, Sendable {
        case udp = "u1"
        case tcp = "t1"
    }

    /// The sipp executable (name or path).
    public static var executable: String {
        ProcessInfo.processInfo.environment["SIPP_BIN"] ?? "sipp"
    }

    /// Starts a sipp UAS on 127.0.0.1:`port` (a free port when nil) and returns once it answers
    /// an OPTIONS, so every scenario used here must answer OPTIONS first (as the bench uas.xml
    /// does). It quits by itself after `lifetime`, should the test never stop it.
    public static func startUAS(
        _ scenario: SippScenario,
        name: String,
        port: Int? = nil,
        in directory: TemporaryDirectory,
        maxCalls: Int = 10_000,
        lifetime: Duration = .seconds(90),
        recvTimeout: Duration = .seconds(15),
        extraArguments: [String] = []
    ) async throws -> SippUAS {
        var lastFailure = ""
        for attempt in 0..<3 {
            let chosenPort = try port ?? FreePort.next()
            let runDirectory = try directory.subdirectory(attempt == 0 ? name : "\(name)-retry\(attempt)")
            try scenario.write(into: runDirectory)
            let arguments =
                [
                    "-sf", scenario.fileName, "-i", "127.0.0.1", "-p", String(chosenPort), "-t", Transport.udp.rawValue,
                    "-m", String(maxCalls), "-timeout", "\(lifetime.components.seconds)s",
                    "-recv_timeout", String(milliseconds(recvTimeout)), "-nostdin",
                    // A late retransmission must not abort a call (the bench runs its UAS the same way).
                    "-default_behaviors", "all,-abortunexp",
                    "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_counts",
                    "-trace_err", "-error_file", "errors.log", "-trace_screen", "-screen_file", "screen.log",
                ] + extraArguments
            let process = try ManagedProcess(name: name, executable: executable, arguments: arguments, directory: runDirectory)
            let uas = SippUAS(name: name, port: chosenPort, process: process)
            if try await uas.waitUntilAnswering(timeout: .seconds(5)) { return uas }
            let exit = process.exitStatus.map { "exit \($0)" } ?? "still running"
            lastFailure = "sipp UAS \(name) on 127.0.0.1:\(chosenPort) did not answer OPTIONS (\(exit))\n\(process.outputTail())"
            let exitedAtStart = !process.isRunning
            await uas.stop()
            // A port taken between FreePort and sipp's bind: sipp exits 254 (fatal bind error);
            // try another, unless the caller asked for this port.
            guard port == nil, exitedAtStart else { break }
        }
        throw TestSupportError(lastFailure)
    }

    /// Runs a sipp UAC against 127.0.0.1:`targetPort` until it has processed `calls` calls (or
    /// `timeout` passed) and returns its final counters.
    public static func runUAC(
        _ scenario: SippScenario,
        name: String = "uac",
        targetPort: Int,
        transport: Transport = .udp,
        calls: Int,
        rate: Int,
        in directory: TemporaryDirectory,
        timeout: Duration = .seconds(30),
        recvTimeout: Duration = .seconds(10),
        extraArguments: [String] = []
    ) async throws -> SippResult {
        for attempt in 0..<3 {
            let runDirectory = try directory.subdirectory(attempt == 0 ? name : "\(name)-retry\(attempt)")
            try scenario.write(into: runDirectory)
            // An explicit local port: without -p sipp takes 5060 when it is free, which other
            // SIP servers on this machine may want.
            let localPort = try FreePort.next()
            let arguments =
                [
                    "127.0.0.1:\(targetPort)", "-sf", scenario.fileName, "-i", "127.0.0.1", "-p", String(localPort), "-t", transport.rawValue,
                    "-m", String(calls), "-r", String(rate), "-l", String(max(calls, 1)),
                    "-timeout", "\(timeout.components.seconds)s", "-timeout_error",
                    "-recv_timeout", String(milliseconds(recvTimeout)), "-nostdin",
                    "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_counts",
                    "-trace_err", "-error_file", "errors.log", "-trace_screen", "-screen_file", "screen.log",
                ] + extraArguments
            let process = try ManagedProcess(name: name, executable: executable, arguments: arguments, directory: runDirectory)
            defer { process.terminate() }
            let bound = timeout + .seconds(10)
            guard await process.waitForExit(timeout: bound) else {
                process.terminate()
                throw TestSupportError("sipp UAC \(name) still running \(bound) after start despite -timeout\n\(process.outputTail())")
            }
            let result = result(of: process, in: runDirectory)
            // 254: sipp's "fatal error binding a socket" (-2), the port was taken meanwhile.
            if result.exitStatus == 254 && result.createdCalls == 0 && attempt < 2 { continue }
            return result
        }
        preconditionFailure("unreachable: the last attempt returns")
    }

    static func result(of process: ManagedProcess, in runDirectory: URL) -> SippResult {
        let stats = SippCSV.lastCounters(runDirectory.appendingPathComponent("stat.csv")) ?? [:]
        let counts = SippCSV.file(in: runDirectory, endingWith: "_counts.csv").flatMap(SippCSV.lastCounters) ?? [:]
        var reasons: [String: Int] = [:]
        for (key, value) in stats where key.hasPrefix("Failed") && key.hasSuffix("(C)") && key != "FailedCall(C)" && value > 0 {
            reasons[String(key.dropFirst(6).dropLast(3))] = value
        }
        return SippResult(
            exitStatus: process.exitStatus,
            createdCalls: stats["TotalCallCreated"] ?? 0,
            successfulCalls: stats["SuccessfulCall(C)"] ?? 0,
            failedCalls: stats["FailedCall(C)"] ?? 0,
            failureReasons: reasons,
            messageCounts: counts,
            diagnostics: diagnostics(of: process, in: runDirectory)
        )
    }

    /// The end of sipp's output, final screen and error log.
    static func diagnostics(of process: ManagedProcess, in runDirectory: URL) -> String {
        func tail(_ file: String, _ lines: Int) -> String {
            let text = (try? String(contentsOf: runDirectory.appendingPathComponent(file), encoding: .isoLatin1)) ?? ""
            return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }
        return """
            --- \(process.name) screen (\(runDirectory.path)/screen.log):
            \(tail("screen.log", 40))
            --- \(process.name) errors.log (tail):
            \(tail("errors.log", 40))
            \(process.outputTail(lines: 10))
            """
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
