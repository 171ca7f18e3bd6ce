public import Foundation

/// A throwaway PostgreSQL server for one test suite: `initdb` into a temporary folder and
/// `postgres` on a free loopback port (fsync off: the data is thrown away). As root (CI), both
/// run as the `postgres` user through `runuser`, since PostgreSQL refuses to run as root.
public final class PostgresServer: Sendable {
    public let port: Int
    public let process: ManagedProcess
    public let dataDirectory: URL

    /// libpq connection URL for the superuser `switchyard` (trust auth on loopback).
    public var url: String { "postgresql://switchyard@127.0.0.1:\(port)/postgres?connect_timeout=5" }

    private init(port: Int, process: ManagedProcess, dataDirectory: URL) {
        self.port = port
        self.process = process
        self.dataDirectory = dataDirectory
    }

    deinit {
        process.terminate(grace: .seconds(10))
    }

    /// The newest `/usr/lib/postgresql/<version>/bin`.
    static func binDirectory() throws -> String {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        guard let v = versions.last, FileManager.default.isExecutableFile(atPath: "\(base)/\(v)/bin/postgres") else {
            throw TestSupportError("PostgreSQL is not installed under \(base) (scripts/bootstrap installs the Debian package postgresql)")
        }
        return "\(base)/\(v)/bin"
    }

    public static func start(in directory: TemporaryDirectory) async throws -> PostgresServer {
        let bin = try binDirectory()
        let root = try directory.subdirectory("postgres")
        let data = root.appendingPathComponent("data")
        let asRoot = geteuid() == 0
        // `runuser -u postgres --` as root; the folder must be the postgres user's.
        func command(_ tool: String, _ args: [String]) -> (String, [String]) {
            asRoot ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + args) : ("\(bin)/\(tool)", args)
        }
        if asRoot {
            chmod(directory.path, 0o755)
            guard let pw = getpwnam("postgres") else { throw TestSupportError("no postgres user (install the postgresql package)") }
            chown(root.path, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        let (initTool, initArgs) = command("initdb", ["-D", data.path, "-U", "switchyard", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
        let initdb = try ManagedProcess(name: "initdb", executable: initTool, arguments: initArgs, directory: root, maxLifetime: .seconds(120))
        guard await initdb.waitForExit(timeout: .seconds(120)), initdb.exitStatus == 0 else {
            throw TestSupportError("initdb failed: \(initdb.outputTail())")
        }
        var lastFailure = ""
        for attempt in 0..<3 {
            let port = try FreePort.next()
            if let server = try await launch(
                bin: bin, root: root, data: data, port: port, name: attempt == 0 ? "postgres" : "postgres-\(attempt)", failure: &lastFailure)
            {
                return server
            }
        }
        throw TestSupportError(lastFailure)
    }

    /// Starts a stopped server again on the same port and data folder.
    public func restart() async throws -> PostgresServer {
        stop()
        var failure = ""
        let root = dataDirectory.deletingLastPathComponent()
        guard
            let server = try await Self.launch(
                bin: try Self.binDirectory(), root: root, data: dataDirectory, port: port, name: "postgres-restarted", failure: &failure)
        else {
            throw TestSupportError(failure)
        }
        return server
    }

    private static func launch(bin: String, root: URL, data: URL, port: Int, name: String, failure lastFailure: inout String) async throws -> PostgresServer? {
        let asRoot = geteuid() == 0
        func command(_ tool: String, _ args: [String]) -> (String, [String]) {
            asRoot ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + args) : ("\(bin)/\(tool)", args)
        }
        let (tool, args) = command(
            "postgres",
            [
                "-D", data.path, "-p", String(port), "-k", root.path, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            ])
        let process = try ManagedProcess(name: name, executable: tool, arguments: args, directory: root, maxLifetime: .seconds(1800))
        let server = PostgresServer(port: port, process: process, dataDirectory: data)
        let ready = await Poll.until(timeout: .seconds(30), interval: .milliseconds(100)) {
            guard process.isRunning else { return false }
            let check = try? ManagedProcess(
                name: "pg_isready", executable: "\(bin)/pg_isready", arguments: ["-h", "127.0.0.1", "-p", String(port), "-U", "switchyard", "-d", "postgres"],
                directory: root, maxLifetime: .seconds(10))
            guard let check, await check.waitForExit(timeout: .seconds(10)) else { return false }
            return check.exitStatus == 0
        }
        if ready { return server }
        lastFailure = "postgres on 127.0.0.1:\(port) never became ready: \(process.outputTail())"
        process.terminate()
        return nil
    }

    /// SIGTERM (smart shutdown), then SIGKILL after `grace`.
    @discardableResult
    public func stop() -> ManagedProcess.Termination? {
        process.terminate(grace: .seconds(10))
    }
}
