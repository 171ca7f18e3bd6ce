import Bus
import Foundation
import Testing
import TestSupport

/// API → orchestrator → emulated node → CDR writer, with real processes throughout.
@Suite("Call plane: orchestrator and CDR writer", .serialized, .timeLimit(.minutes(3)))
struct CallPlaneTests {
    @Test("an API call goes queued → ringing → in-progress → completed, with callbacks in order and one CDR whose billsec matches the talk time")
    func lifecycle() async throws {
        let s = try await CallPlaneStack()
        let receiver = try await CallbackReceiver.start(in: s.dir)
        try await s.startWorker("orchestrator")
        try await s.startWorker("cdr")
        let id = try s.createCall(
            extra: ", \"status_callback\": \"\(receiver.url)\", \"status_callback_events\": [\"initiated\", \"ringing\", \"answered\", \"completed\"]")
        let final = await s.waitForStatus(id, ["completed", "failed", "busy", "no-answer"])
        #expect(final == "completed", "\(s.workers.map { $0.logTail() })")
        let call = try s.call(id)
        #expect(call["answered_at"] is String)
        #expect((call["node"] as? String)?.hasPrefix("fs-") == true)
        #expect(await Poll.until(timeout: .seconds(5)) { (try? await s.cdrCount()) == 1 }, "one CDR")
        let cdr = try s.api.request("GET", "/v1/calls/\(id)/cdr", key: s.key).json["cdrs"] as? [[String: Any]] ?? []
        #expect(cdr.count == 1)
        #expect(cdr.first?["billsec"] as? Int == 1, "talk 1.2 s → billsec 1: \(cdr)")
        #expect(cdr.first?["hangup_cause"] as? String == "NORMAL_CLEARING")
        #expect(cdr.first?["direction"] as? String == "outbound")
        _ = await Poll.until(timeout: .seconds(5)) { receiver.received.count >= 4 }
        let statuses = receiver.received.sorted { Int($0["SequenceNumber"] ?? "") ?? 0 < Int($1["SequenceNumber"] ?? "") ?? 0 }.map { $0["CallStatus"] ?? "?" }
        #expect(statuses == ["initiated", "ringing", "in-progress", "completed"], "\(receiver.received)")
        #expect(receiver.received.allSatisfy { $0["CallSid"] == id })
        await s.stop()
    }

    @Test(
        "busy, no-answer, rejected and failed numbers end in those statuses",
        arguments: [
            ("+15551230486", "busy"), ("+15551230408", "no-answer"), ("+15551230603", "busy"), ("+15551230503", "failed"), ("+15551230404", "failed"),
        ])
    func outcomes(number: String, status: String) async throws {
        let s = try await CallPlaneStack(nodes: 1)
        try await s.startWorker("orchestrator")
        let id = try s.createCall(to: number, extra: ", \"timeout\": 1")
        let final = await s.waitForStatus(id, ["completed", "failed", "busy", "no-answer", "canceled"])
        #expect(final == status, "\(number): \(s.workers.first?.logTail() ?? "")")
        await s.stop()
    }

    @Test("a node killed before the originate: the calls go to the other node")
    func deadNodeFailover() async throws {
        let s = try await CallPlaneStack()
        try await s.startWorker("orchestrator")
        try await Task.sleep(for: .milliseconds(500))
        s.nodes[0].kill()
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try s.createCall()) }
        for id in ids {
            let final = await s.waitForStatus(id, ["completed", "failed", "busy", "no-answer"])
            #expect(final == "completed", "\(s.workers.first?.logTail() ?? "")")
            #expect(try s.call(id)["node"] as? String == s.nodes[1].name)
        }
        await s.stop()
    }

    @Test("a node drained in the shared bucket gets no originate from the orchestrator")
    func sharedDrainIsObeyedByTheOrchestrator() async throws {
        let s = try await CallPlaneStack()
        let worker = try await s.startWorker("orchestrator")
        let bus = try await NATSBus.connect(url: s.nats.url)
        let bucket = try await bus.keyValue("switchyard_drain")
        try await bucket.put(s.nodes[0].name, "drained")
        #expect(await Poll.until(timeout: .seconds(5)) { !worker.logLines(containing: "node drain state").isEmpty }, "\(worker.logTail())")
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try s.createCall()) }
        for id in ids {
            let final = await s.waitForStatus(id, ["completed", "failed", "busy", "no-answer"])
            #expect(final == "completed")
            #expect(try s.call(id)["node"] as? String == s.nodes[1].name, "no call on the drained node")
        }
        await bus.close()
        await s.stop()
    }

    @Test("the orchestrator killed between the originate and the channel event: the job is redelivered and the call is placed once")
    func orchestratorCrashRedelivery() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "100", "--talk-ms", "3000"])
        // Events are muted on both nodes: the channel is created, but the orchestrator does not hear of it.
        for n in s.nodes { _ = try n.api("fsnode fault mute-esl") }
        let first = try await s.startWorker("orchestrator", name: "orchestrator-1", arguments: ["--ack-wait", "2", "--accept-timeout", "30"])
        let id = try s.createCall()
        #expect(
            await Poll.until(timeout: .seconds(10)) { s.nodes.contains { (try? $0.api("uuid_exists \(id)"))?.hasPrefix("true") == true } },
            "the originate reached a node")
        first.kill()
        for n in s.nodes { _ = try n.api("fsnode fault clear") }
        try await s.startWorker("orchestrator", name: "orchestrator-2", arguments: ["--ack-wait", "2"])
        let final = await s.waitForStatus(id, ["completed", "failed", "busy", "no-answer"], timeout: .seconds(30))
        #expect(final == "completed", "\(s.workers.last?.logTail() ?? "")")
        let placed = try s.nodes.map { try $0.api("status") }.map { status in
            Int(status.split(separator: "\n").first { $0.hasSuffix("since startup") }?.split(separator: " ").first ?? "") ?? -1
        }
        #expect(placed.reduce(0, +) == 1, "one channel in all: \(placed)")
        #expect(!(s.workers.last?.logLines(containing: "redelivered job").isEmpty ?? true), "the second orchestrator saw the redelivery")
        await s.stop()
    }

    @Test("two CDR writers at once: exactly one row per channel, one event per channel")
    func twoWriters() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "50", "--talk-ms", "300"])
        try await s.startWorker("orchestrator")
        try await s.startWorker("cdr", name: "cdr-1")
        try await s.startWorker("cdr", name: "cdr-2")
        var ids: [String] = []
        for _ in 0..<10 { ids.append(try s.createCall()) }
        for id in ids { _ = await s.waitForStatus(id, ["completed"]) }
        #expect(await Poll.until(timeout: .seconds(5)) { (try? await s.cdrCount()) == 10 })
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await s.cdrCount() == 10, "no duplicates")
        #expect(try await s.cdrCount("SELECT count(DISTINCT channel_uuid) AS n FROM cdr") == 10)
        let bus = try await NATSBus.connect(url: s.nats.url)
        let consumer = try await bus.pullConsumer(ConsumerConfig(stream: "events", durable: "test-events", subject: "events.cdr.>"))
        let seen = Seen()
        let reader = Task { for await m in consumer { try? m.ack(); await seen.add(m.subject) } }
        _ = await Poll.until(timeout: .seconds(5)) { await seen.count >= 10 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(await seen.count == 10, "one event per channel on the events stream (the message id dedupes the second writer's)")
        #expect(await seen.subjects == ["events.cdr.us-east-1"])
        reader.cancel()
        await consumer.stop()
        await bus.close()
        await s.stop()
    }

    @Test("a CDR writer restarted under load: CDRs equal the finished channels, the gap marked incomplete and logged")
    func writerRestart() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "50", "--talk-ms", "1500"])
        try await s.startWorker("orchestrator")
        let writer = try await s.startWorker("cdr", name: "cdr-1")
        var ids: [String] = []
        for i in 0..<20 {
            ids.append(try s.createCall())
            if i == 9 { writer.kill() }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(1500))
        let second = try await s.startWorker("cdr", name: "cdr-2")
        for id in ids { _ = await s.waitForStatus(id, ["completed"]) }
        let total = await Poll.until(timeout: .seconds(10)) { (try? await s.cdrCount()) == 20 }
        let incomplete = try await s.cdrCount("SELECT count(*) AS n FROM cdr WHERE incomplete")
        let rows = try await s.cdrCount()
        #expect(total, "a row for every finished channel: \(rows) of 20, \(incomplete) incomplete")
        let gaps = second.logLines(containing: "CDR gap: ")
        #expect(incomplete > 0, "the restart did lose some hangup events")
        #expect(gaps.count == incomplete, "every incomplete row is reported: \(gaps.count) log lines, \(incomplete) rows")
        await s.stop()
    }

    @Test("inbound calls through the proxy produce CDRs; calls that ended before any writer listened are counted as a gap")
    func inboundCDRs() async throws {
        let s = try await CallPlaneStack(nodes: 2)
        let proxy = try await SwitchyardProxy.start(
            nodes: s.nodes.map { .init(name: $0.name, sip: $0.sipPort, esl: $0.eslPort) }, in: s.dir)
        let unseen = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 50), name: "unseen", targetPort: proxy.port, calls: 4, rate: 20, in: s.dir)
        #expect(unseen.successfulCalls == 4)
        let writer = try await s.startWorker("cdr")
        #expect(
            await Poll.until(timeout: .seconds(5)) { (try? await s.cdrCount("SELECT coalesce(sum(missing), 0)::int AS n FROM cdr_gaps")) == 4 },
            "the 4 calls nobody saw are reported as a gap")
        #expect(writer.logLines(containing: "CDR gap (unidentified)").count == 2, "one line per node")
        let r = try await Sipp.runUAC(.benchCaller(holdMilliseconds: 200), targetPort: proxy.port, calls: 10, rate: 20, in: s.dir)
        #expect(r.successfulCalls == 10, "\(r)")
        #expect(await Poll.until(timeout: .seconds(5)) { (try? await s.cdrCount("SELECT count(*) AS n FROM cdr WHERE direction = 'inbound'")) == 10 })
        proxy.stop()
        await s.stop()
    }
}

actor Seen {
    private var all: [String] = []
    func add(_ s: String) { all.append(s) }
    var count: Int { all.count }
    var subjects: Set<String> { Set(all) }
}
