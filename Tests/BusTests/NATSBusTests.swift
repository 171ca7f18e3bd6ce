import Bus
import Testing
import TestSupport

/// JetStream through libnats against a real nats-server started for each test.
@Suite("Bus: JetStream publish and pull consumers", .serialized, .timeLimit(.minutes(2)))
struct NATSBusTests {
    let stream = StreamConfig(name: "calls", subjects: ["calls.>"])

    @Test("publish is acknowledged with a sequence; the same message id again is a duplicate the stream drops")
    func publishAndDedupe() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        try await bus.ensureStream(stream)  // idempotent
        let a = try await bus.publish("calls.new", Array("one".utf8), messageID: "call-1")
        let b = try await bus.publish("calls.new", Array("one again".utf8), messageID: "call-1")
        let c = try await bus.publish("calls.new", Array("two".utf8), messageID: "call-2")
        #expect(a.stream == "calls")
        #expect(!a.duplicate)
        #expect(b.duplicate, "a re-publish with the same id is recognised")
        #expect(b.sequence == a.sequence)
        #expect(c.sequence == a.sequence + 1)
        await bus.close()
        server.stop()
    }

    @Test("publishBatch: every message of a batch acknowledged once, duplicates too; a subject no stream takes is not")
    func publishBatch() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        let batch = (0..<200).map { (subject: "calls.new", data: Array("m\($0)".utf8), messageID: "b-\($0)") }
        let acked = await bus.publishBatch(batch)
        #expect(acked.count == 200)
        let again = await bus.publishBatch(Array(batch.prefix(10)))
        #expect(again.count == 10, "a duplicate is on the stream: acknowledged")
        let stray = await bus.publishBatch([(subject: "nowhere.x", data: [1], messageID: "stray-1")] + batch.suffix(1), timeout: .seconds(1))
        #expect(stray == ["b-199"], "no stream for nowhere.x: not acknowledged")
        let a = try await bus.publish("calls.new", Array("next".utf8), messageID: "after")
        #expect(a.sequence == 201, "the stream holds each batch message once: \(a.sequence)")
        await bus.close()
        server.stop()
    }

    @Test("concurrent publishBatch calls each get their own acknowledgements, all of them, and a refused one settles its batch without the timeout")
    func concurrentBatches() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        let counts = await withTaskGroup(of: Int.self) { group in
            for b in 0..<8 {
                group.addTask {
                    var total = 0
                    for round in 0..<5 {
                        let batch = (0..<50).map { (subject: "calls.new", data: [UInt8(b)], messageID: "c-\(b)-\(round)-\($0)") }
                        total += await bus.publishBatch(batch).count
                    }
                    return total
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(counts == Array(repeating: 250, count: 8), "\(counts)")
        let start = ContinuousClock.now
        let stray = await bus.publishBatch([(subject: "nowhere.y", data: [1], messageID: "stray-2")], timeout: .seconds(10))
        #expect(stray.isEmpty)
        #expect(ContinuousClock.now - start < .seconds(5), "a refusal (no stream) settles the batch; it does not wait out the timeout")
        let a = try await bus.publish("calls.new", Array("next".utf8), messageID: "after-all")
        #expect(a.sequence == 2001, "every batch message is on the stream once: \(a.sequence)")
        await bus.close()
        server.stop()
    }

    @Test("a pull consumer delivers every message; nak redelivers, term and ack do not")
    func pullConsumerAckNakTerm() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        for i in 0..<10 { try await bus.publish("calls.new", Array("m\(i)".utf8), messageID: "id-\(i)") }
        let consumer = try await bus.pullConsumer(ConsumerConfig(stream: "calls", durable: "worker", subject: "calls.>", ackWait: .seconds(2)))
        var seen: [String: Int] = [:]
        var redelivered: [String] = []
        for await m in consumer {
            let text = String(decoding: m.data, as: UTF8.self)
            seen[text, default: 0] += 1
            if m.deliveries > 1 { redelivered.append(text) }
            switch text {
            case "m3" where m.deliveries == 1: try m.nak()
            case "m5": try m.term()
            default: try m.ack()
            }
            if seen.values.reduce(0, +) == 11 { break }
        }
        #expect(seen.count == 10, "every message delivered: \(seen)")
        #expect(seen["m3"] == 2 && redelivered == ["m3"], "the nak'ed one comes back once: \(seen), \(redelivered)")
        #expect(seen["m5"] == 1, "the terminated one does not")
        await consumer.stop()
        await bus.close()
        server.stop()
    }

    @Test("two consumers on the same durable share the work: each message once")
    func sharedDurable() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        let config = ConsumerConfig(stream: "calls", durable: "shared", subject: "calls.>", batch: 5)
        let one = try await bus.pullConsumer(config)
        let two = try await bus.pullConsumer(config)
        for i in 0..<100 { try await bus.publish("calls.new", Array("m\(i)".utf8), messageID: "s-\(i)") }
        let counter = Counter()
        for consumer in [one, two] {
            Task {
                for await m in consumer {
                    try? m.ack()
                    await counter.add(String(decoding: m.data, as: UTF8.self))
                }
            }
        }
        #expect(await Poll.until(timeout: .seconds(10)) { await counter.total == 100 })
        #expect(await counter.distinct == 100, "no message twice")
        await one.stop()
        await two.stop()
        await bus.close()
        server.stop()
    }

    @Test("publishing while the server is down fails with publishFailed; after a restart it works again")
    func outageAndReconnect() async throws {
        let dir = try TemporaryDirectory()
        let server = try await NATSServer.start(in: dir)
        let bus = try await NATSBus.connect(url: server.url)
        try await bus.ensureStream(stream)
        try await bus.publish("calls.new", Array("before".utf8), messageID: "o-1")
        server.stop()
        do {
            try await bus.publish("calls.new", Array("during".utf8), messageID: "o-2", timeout: .seconds(1))
            Issue.record("a publish with no server must fail")
        } catch {
            #expect(error.code == .publishFailed)
        }
        try await server.restart()
        let ok = await Poll.until(timeout: .seconds(10), interval: .milliseconds(200)) {
            (try? await bus.publish("calls.new", Array("after".utf8), messageID: "o-3", timeout: .seconds(1))) != nil
        }
        #expect(ok, "the connection comes back by itself and publishes again")
        #expect(bus.isConnected)
        await bus.close()
        server.stop()
    }
}

actor Counter {
    private var seen: [String] = []
    func add(_ s: String) { seen.append(s) }
    var total: Int { seen.count }
    var distinct: Int { Set(seen).count }
}
