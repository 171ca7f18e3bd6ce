import Bus
import Foundation
import Store
import TestSupport

/// PostgreSQL, nats-server and a `switchyard api` process for one test, plus two accounts.
struct APIStack {
    let dir: TemporaryDirectory
    let postgres: PostgresServer
    let nats: NATSServer
    let api: SwitchyardAPI
    let key: String
    let otherKey: String

    static func start(apiArguments: (TemporaryDirectory) throws -> [String] = { _ in [] }) async throws -> APIStack {
        let dir = try TemporaryDirectory()
        let postgres = try await PostgresServer.start(in: dir)
        let nats = try await NATSServer.start(in: dir)
        let key = try await SwitchyardAPI.createAccount(name: "acme", database: postgres.url, in: dir)
        let otherKey = try await SwitchyardAPI.createAccount(name: "globex", database: postgres.url, in: dir)
        let api = try await SwitchyardAPI.start(database: postgres.url, nats: nats.url, in: dir, arguments: try apiArguments(dir))
        return APIStack(dir: dir, postgres: postgres, nats: nats, api: api, key: key, otherKey: otherKey)
    }

    func stop() {
        api.stop()
        nats.stop()
        postgres.stop()
    }

    static func body(to: String = "+15551234567", from: String = "+15557654321", extra: String = "") -> String {
        "{\"to\": \"\(to)\", \"from\": \"\(from)\", \"url\": \"https://example.com/twiml\"\(extra)}"
    }

    /// Every message on the `calls` stream, read by a fresh durable consumer.
    func streamMessages(expect: Int, timeout: Duration = .seconds(5)) async throws -> [[String: String]] {
        let bus = try await NATSBus.connect(url: nats.url)
        let consumer = try await bus.pullConsumer(ConsumerConfig(stream: "calls", durable: "test-\(UUID().uuidString.prefix(8))", subject: "calls.>"))
        let collected = Collected()
        let reader = Task {
            for await m in consumer {
                try? m.ack()
                let o = (try? JSONSerialization.jsonObject(with: Data(m.data))) as? [String: Any] ?? [:]
                await collected.add(o.compactMapValues { $0 as? String })
            }
        }
        _ = await Poll.until(timeout: timeout) { await collected.count >= expect }
        // A little longer, to see a duplicate if there is one.
        try await Task.sleep(for: .milliseconds(300))
        reader.cancel()
        await consumer.stop()
        await bus.close()
        return await collected.items
    }
}

actor Collected {
    private(set) var items: [[String: String]] = []
    func add(_ i: [String: String]) { items.append(i) }
    var count: Int { items.count }
}
