import Foundation
import Store
import Testing
import TestSupport

extension Integration {
    // Under the serialized Integration parent: a cluster bootstrap must not overlap the SIP drills' timing.
    /// PostgreSQL with automatic failover (Patroni + etcd, two members) behind the libpq multi-host
    /// URL: the pool follows the primary.
    @Suite("Store: PostgreSQL primary killed under writes", .serialized, .timeLimit(.minutes(3)))
    struct PostgresFailoverTests {
        @Test("the primary killed mid-writes: writes resume on the promoted standby, every acknowledged one is there")
        func writesContinueAfterFailover() async throws {
            try #require(PatroniCluster.isAvailable, "patroni and etcd are installed by scripts/bootstrap")
            let dir = try TemporaryDirectory()
            let cluster = try await PatroniCluster.start(in: dir)
            let pool = PostgresPool(conninfo: cluster.url, size: 2, reconnectWindow: .seconds(20))
            try await pool.query("CREATE TABLE writes (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
            let first = try #require(cluster.primary())

            var acknowledged: [Int] = []
            var failed: [Int] = []
            var completions: [ContinuousClock.Instant] = []
            var killedAt: ContinuousClock.Instant?
            let start = ContinuousClock.now
            var i = 0
            var afterKill = 0
            while ContinuousClock.now - start < .seconds(60), afterKill < 30 {
                if i == 20 {
                    cluster.kill(first)
                    killedAt = .now
                }
                do {
                    // Idempotent: a retried insert of the same id is harmless.
                    try await pool.query("INSERT INTO writes (id) VALUES ($1) ON CONFLICT DO NOTHING", [String(i)])
                    acknowledged.append(i)
                    completions.append(.now)
                    if killedAt != nil { afterKill += 1 }
                } catch {
                    failed.append(i)
                }
                i += 1
                try await Task.sleep(for: .milliseconds(100))
            }
            // The outage: the longest gap between two acknowledged writes around the kill.
            var rto: Duration?
            if let killedAt {
                let around = completions.filter { $0 > killedAt - .seconds(1) }
                rto = zip(around, around.dropFirst()).map { $1 - $0 }.max()
            }
            let promoted = cluster.primary()
            #expect(promoted != nil && promoted?.name != first.name, "the standby was promoted (primary now \(promoted?.name ?? "none"))")
            #expect(rto != nil && rto! < .seconds(15), "writes resume after the kill within 15 s (took \(rto.map { "\($0)" } ?? "forever"))")
            // Every acknowledged write is on the new primary (synchronous replication).
            let stored = Set(try await pool.query("SELECT id FROM writes").rows.compactMap { $0["id"].flatMap(Int.init) })
            let lost = acknowledged.filter { !stored.contains($0) }
            #expect(lost.isEmpty, "no acknowledged write lost: \(lost)")
            print(
                "postgres failover: killed \(first.name), promoted \(promoted?.name ?? "-"), write RTO \(rto.map { "\($0)" } ?? "-"), \(failed.count) writes failed, \(acknowledged.count) acknowledged"
            )
            await pool.shutdown()
        }
    }
}
