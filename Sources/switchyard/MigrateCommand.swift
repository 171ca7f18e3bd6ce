import ArgumentParser
import Foundation
import Logging
import Store

/// `switchyard migrate`: applies the schema migrations that are missing, then exits.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the PostgreSQL schema migrations (accounts, calls, cdr, rates) that are missing."
    )

    @Option(help: "libpq connection string or postgres:// URL. Default: $DATABASE_URL, else libpq's PG* environment variables.")
    var database: String?

    func run() async throws {
        let conninfo = database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
        let pool = PostgresPool(conninfo: conninfo, size: 1)
        do {
            let applied = try await Migrations.migrate(pool)
            print(
                applied.isEmpty
                    ? "schema up to date (version \(Migrations.all.last?.version ?? 0))"
                    : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
            await pool.shutdown()
        } catch {
            await pool.shutdown()
            throw CommandFailure("\(error)")
        }
    }
}
