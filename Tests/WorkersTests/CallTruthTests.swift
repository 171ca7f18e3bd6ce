import Foundation
import Testing
import TestSupport

/// One call, one truth (issue 13), end to end with real processes: never placed twice, one
/// final status whatever dies, the time limit on the node, drains that lose nothing, signed
/// callbacks that cannot reach internal addresses.
@Suite("Call truth: placement, reconciliation, drains, callbacks", .serialized, .timeLimit(.minutes(3)))
struct CallTruthTests {
    static let final: Set<String> = ["completed", "failed", "busy", "no-answer", "canceled"]

    /// Channels a node has now (`fsnode status` answers even when its ESL hangs).
    func channels(_ n: FSNodeProcess) -> Int {
        guard let out = try? n.api("fsnode status") else { return -1 }
        for word in out.split(separator: " ") where word.hasPrefix("channels=") { return Int(word.dropFirst("channels=".count)) ?? -1 }
        return -1
    }

    func events(_ s: CallPlaneStack, _ id: String) throws -> [[String: Any]] {
        try s.api.request("GET", "/v1/calls/\(id)/events", key: s.key).json["events"] as? [[String: Any]] ?? []
    }

    @Test(
        "a node whose ESL hangs after the originate: the call is not dialed again elsewhere, it ends failed (node-unreachable), and its channel is hung up once the node answers"
    )
    func unknownStateIsNeverRedialed() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "100", "--talk-ms", "60000"])
        try await s.startWorker("orchestrator", arguments: ["--accept-timeout", "1", "--confirm-for", "3"])
        try await Task.sleep(for: .milliseconds(500))
        for n in s.nodes { _ = try n.api("fsnode fault hang-esl") }
        let id = try s.createCall()
        let status = await s.waitForStatus(id, Self.final, timeout: .seconds(30))
        #expect(status == "failed", "\(s.workers.first?.logTail() ?? "")")
        let call = try s.call(id)
        #expect(call["end_cause"] as? String == "node-unreachable", "\(call)")
        let live = s.nodes.map(channels)
        #expect(live.reduce(0, +) == 1, "exactly one node got the originate, and no other was tried: \(live)")
        let log = try events(s, id)
        let attempts = log.filter { $0["kind"] as? String == "attempt" }
        #expect(attempts.allSatisfy { $0["node"] as? String == call["node"] as? String }, "every attempt on the one node: \(attempts)")
        #expect(attempts.contains { ($0["result"] as? String)?.contains("not redialed") == true }, "\(attempts)")
        #expect(attempts.allSatisfy { $0["elapsed_ms"] is Int })
        // The node answers again (a new ESL connection): the channel of a call that has ended is hung up.
        for n in s.nodes {
            _ = try n.api("fsnode fault clear")
            _ = try n.api("fsnode fault drop-esl")
        }
        #expect(await Poll.until(timeout: .seconds(15)) { s.nodes.map(channels).reduce(0, +) == 0 }, "\(s.workers.first?.logTail() ?? "")")
        #expect(try s.call(id)["status"] as? String == "failed", "one final status")
        await s.stop()
    }

    @Test("nodes killed mid-call: their calls end after --node-lost-after with cause node-lost, each with an incomplete CDR")
    func lostNodeEndsItsCalls() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "100", "--talk-ms", "60000"])
        try await s.startWorker("orchestrator", arguments: ["--node-lost-after", "2"])
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try s.createCall()) }
        for id in ids { #expect(await s.waitForStatus(id, ["in-progress"]) == "in-progress") }
        let killedAt = ContinuousClock.now
        for n in s.nodes { n.kill() }
        for id in ids {
            #expect(await s.waitForStatus(id, Self.final, timeout: .seconds(20)) == "completed", "answered, then lost")
            #expect(try s.call(id)["end_cause"] as? String == "node-lost")
        }
        let took = killedAt.duration(to: .now)
        #expect(took < .seconds(10), "bounded: \(took)")
        #expect(try await s.cdrCount("SELECT count(*) AS n FROM cdr WHERE incomplete") == 4, "an incomplete CDR per lost call")
        #expect(try await s.cdrCount("SELECT count(DISTINCT call_id) AS n FROM cdr") == 4)
        await s.stop()
    }

    @Test("calls that ended while no orchestrator ran get their final status when one starts, from the node's truth and the CDRs")
    func reconcileAfterAnOutage() async throws {
        // Calls talk 6 s: all four must be seen in progress (polled one after the other) and the
        // orchestrator killed before the first hangs up, also on a loaded CI machine (with 2 s,
        // one run saw the later calls already completed by the first orchestrator).
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "100", "--talk-ms", "6000"])
        try await s.startWorker("cdr")
        let first = try await s.startWorker("orchestrator", name: "orchestrator-1")
        var ids: [String] = []
        for _ in 0..<4 { ids.append(try s.createCall()) }
        for id in ids { #expect(await s.waitForStatus(id, ["in-progress"]) == "in-progress") }
        first.kill()
        // The calls end on their nodes while no orchestrator listens; the CDR writer sees them.
        #expect(await Poll.until(timeout: .seconds(20)) { (try? await s.cdrCount()) == 4 })
        for id in ids { #expect(try s.call(id)["status"] as? String == "in-progress", "nobody moved it yet") }
        let second = try await s.startWorker("orchestrator", name: "orchestrator-2")
        for id in ids { #expect(await s.waitForStatus(id, Self.final, timeout: .seconds(15)) == "completed", "\(second.logTail())") }
        #expect(try await s.cdrCount("SELECT count(*) AS n FROM cdr WHERE incomplete") == 0, "the real CDRs, no placeholders")
        #expect(try events(s, ids[0]).contains { $0["kind"] as? String == "status" && $0["result"] as? String == "completed" })
        await s.stop()
    }

    @Test("the time limit is kept by the node (sched_hangup): it holds with no orchestrator running")
    func timeLimitOnTheNode() async throws {
        let s = try await CallPlaneStack(nodes: 1, nodeArguments: ["--ring-ms", "100", "--talk-ms", "60000"])
        try await s.startWorker("cdr")
        let orchestrator = try await s.startWorker("orchestrator")
        let id = try s.createCall(extra: ", \"time_limit\": 2")
        #expect(await s.waitForStatus(id, ["in-progress"]) == "in-progress")
        orchestrator.kill()
        #expect(await Poll.until(timeout: .seconds(10)) { (try? await s.cdrCount()) == 1 }, "the node hung up at the limit")
        #expect(try await s.cdrCount("SELECT count(*) AS n FROM cdr WHERE hangup_cause = 'ALLOTTED_TIMEOUT' AND billsec BETWEEN 1 AND 3") == 1)
        await s.stop()
    }

    @Test("SIGTERM to an orchestrator and a CDR writer under load: every call placed once, finished, with exactly one CDR")
    func gracefulDrainUnderLoad() async throws {
        let s = try await CallPlaneStack(nodes: 2, nodeArguments: ["--ring-ms", "50", "--talk-ms", "400"])
        let a = try await s.startWorker("orchestrator", name: "orchestrator-a")
        let w1 = try await s.startWorker("cdr", name: "cdr-1")
        try await s.startWorker("cdr", name: "cdr-2")
        var ids: [String] = []
        var b: SwitchyardWorker?
        for i in 0..<40 {
            ids.append(try s.createCall())
            if i == 15 {
                b = try await s.startWorker("orchestrator", name: "orchestrator-b")
                a.process.signal(SIGTERM)
                w1.process.signal(SIGTERM)
            }
            try await Task.sleep(for: .milliseconds(40))
        }
        for id in ids { #expect(await s.waitForStatus(id, Self.final, timeout: .seconds(30)) == "completed", "\(b?.logTail() ?? "")") }
        #expect(await a.process.waitForExit(timeout: .seconds(20)), "the drained orchestrator exits")
        #expect(a.process.exitStatus == 0, "\(a.logTail())")
        #expect(!a.logLines(containing: "drained").isEmpty, "\(a.logTail())")
        #expect(await w1.process.waitForExit(timeout: .seconds(20)))
        let placed = try s.nodes.map { try $0.api("status") }.map { status in
            Int(status.split(separator: "\n").first { $0.hasSuffix("since startup") }?.split(separator: " ").first ?? "") ?? -1
        }
        #expect(placed.reduce(0, +) == 40, "each call placed once: \(placed)")
        let allCDRs = await Poll.until(timeout: .seconds(10)) { (try? await s.cdrCount()) == 40 }
        let rows = try await s.cdrCount()
        #expect(allCDRs, "one CDR per call: \(rows)")
        #expect(try await s.cdrCount("SELECT count(DISTINCT call_id) AS n FROM cdr") == 40, "none doubled")
        await s.stop()
    }

    @Test("status callbacks are signed as Twilio signs them, checked by the twilio package's RequestValidator")
    func signedCallbacks() async throws {
        let s = try await CallPlaneStack(nodes: 1, nodeArguments: ["--ring-ms", "50", "--talk-ms", "300"])
        let receiver = try await CallbackReceiver.start(in: s.dir)
        try await s.startWorker("orchestrator")
        let id = try s.createCall(
            extra: ", \"status_callback\": \"\(receiver.url)\", \"status_callback_events\": [\"initiated\", \"ringing\", \"answered\", \"completed\"]")
        #expect(await s.waitForStatus(id, Self.final) == "completed")
        #expect(await Poll.until(timeout: .seconds(5)) { receiver.received.count >= 4 })
        let secret = try await s.pool.query("SELECT signing_secret FROM accounts").first?["signing_secret"] ?? ""
        #expect(secret.count == 64)
        let check = try receiver.validateSignatures(secret: secret)
        #expect(check.total >= 4 && check.valid == check.total, "\(check)")
        #expect(try receiver.validateSignatures(secret: String(repeating: "0", count: 64)).valid == 0, "a wrong secret does not validate")
        let deliveries = try events(s, id).filter { $0["kind"] as? String == "callback" }
        #expect(deliveries.count >= 4 && deliveries.allSatisfy { ($0["result"] as? String)?.hasPrefix("delivered") == true }, "\(deliveries)")
        await s.stop()
    }

    @Test("a status callback to a loopback or private address is refused and logged on the call, unless allowed")
    func internalCallbackRefused() async throws {
        let s = try await CallPlaneStack(nodes: 1, nodeArguments: ["--ring-ms", "50", "--talk-ms", "300"])
        let receiver = try await CallbackReceiver.start(in: s.dir)
        try await s.startWorker("orchestrator", environment: ["SWITCHYARD_ALLOW_PRIVATE_CALLBACKS": "0"])
        let id = try s.createCall(extra: ", \"status_callback\": \"\(receiver.url)\", \"status_callback_events\": [\"completed\"]")
        #expect(await s.waitForStatus(id, Self.final) == "completed")
        #expect(
            await Poll.until(timeout: .seconds(5)) {
                ((try? self.events(s, id)) ?? []).contains { $0["kind"] as? String == "callback" && $0["result"] as? String == "refused-destination" }
            })
        #expect(receiver.received.isEmpty, "nothing reached 127.0.0.1")
        await s.stop()
    }
}
