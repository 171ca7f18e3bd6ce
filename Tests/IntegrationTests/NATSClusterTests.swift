import Bus
import Foundation
import Testing
import TestSupport

extension Integration {
    // Under the serialized Integration parent: a cluster bootstrap must not overlap the SIP drills' timing.
    /// JetStream on a three-server cluster (one per region and a witness), R3 streams.
    @Suite("Bus: a three-server JetStream cluster", .serialized, .timeLimit(.minutes(2)))
    struct NATSClusterTests {
        @Test("the stream leader's server killed mid-stream: every acknowledged message is stored once, none lost")
        func killingTheStreamLeaderLosesNoMessage() async throws {
            let dir = try TemporaryDirectory()
            let cluster = try await NATSCluster.start(in: dir)
            let bus = try await NATSBus.connect(url: cluster.url)
            #expect(bus.serverCount == 3)
            // R3 by itself: the bus was given three servers. Creating an R3 stream can take a moment.
            let stream = StreamConfig(name: "drill", subjects: ["drill.>"])
            var created = false
            var lastError = ""
            for _ in 0..<40 where !created {
                do {
                    try await bus.ensureStream(stream)
                    created = true
                } catch {
                    lastError = "\(error)"
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            try #require(created, "the R3 stream is created: \(lastError)")

            let total = 300
            var acked: [Int] = []
            var killed: String?
            var failures: [String] = []
            let start = ContinuousClock.now
            for i in 0..<total {
                if i == 100 {
                    killed = cluster.streamLeader("drill")
                    if let killed { cluster.kill(killed) }
                }
                do {
                    // The same message id on every retry: the stream keeps one copy.
                    try await bus.publish("drill.msg", Array("m\(i)".utf8), messageID: "drill-\(i)", timeout: .seconds(2), retryFor: .seconds(25))
                    acked.append(i)
                } catch {
                    failures.append("m\(i): \(error)")
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let elapsed = ContinuousClock.now - start
            #expect(killed != nil, "the stream had a leader to kill")
            #expect(failures.isEmpty, "every publish was acknowledged within its retry window: \(failures.prefix(3))")
            #expect(acked.count == total)

            // Read everything back from the surviving servers.
            // Right after an election the JetStream API can still time out: retry, bounded.
            var made: PullConsumer?
            lastError = ""
            for _ in 0..<20 where made == nil {
                do {
                    made = try await bus.pullConsumer(ConsumerConfig(stream: "drill", durable: "check", subject: "drill.>", ackWait: .seconds(10)))
                } catch {
                    lastError = "\(error)"
                    try await Task.sleep(for: .seconds(1))
                }
            }
            let consumer = try #require(made, "a consumer on the R3 stream: \(lastError)")
            var seen: [String: Int] = [:]
            let reader = Task {
                var got: [String: Int] = [:]
                for await m in consumer {
                    try? m.ack()
                    got[String(decoding: m.data, as: UTF8.self), default: 0] += 1
                    if got.values.reduce(0, +) >= total { break }
                }
                return got
            }
            let timeout = Task {
                try await Task.sleep(for: .seconds(30))
                reader.cancel()
            }
            seen = await reader.value
            timeout.cancel()
            let missing = (0..<total).filter { seen["m\($0)"] == nil }
            let doubled = seen.filter { $0.value > 1 }.map(\.key)
            #expect(missing.isEmpty, "no acknowledged message lost (\(missing.count) missing: \(missing.prefix(5))); publishing took \(elapsed)")
            #expect(doubled.isEmpty, "none stored twice: \(doubled.prefix(5))")

            // The killed server comes back and the stream is whole on it too.
            if let killed { try await cluster.restart(killed) }
            await bus.close()
        }
    }
}
