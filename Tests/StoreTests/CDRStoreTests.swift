import Store
import Testing
import TestSupport

/// CDRs are keyed by node and channel: a call id with channels on two nodes keeps both rows,
/// and the second is reported as such.
@Suite("CDR store", .serialized, .timeLimit(.minutes(2)))
struct CDRStoreTests {
    func cdr(node: String, channel: String, call: String, incomplete: Bool = false) -> CDRStore.NewCDR {
        CDRStore.NewCDR(
            channelUUID: channel, callID: call, node: node, region: "us-east-1", direction: "outbound", from: "+1555", to: "+1666", startMicros: 0,
            answerMicros: 0, endMicros: 1, duration: 10, billsec: incomplete ? 0 : 9, hangupCause: "NORMAL_CLEARING", codec: nil, rtpInPackets: nil,
            rtpInSkipped: nil, jitterMaxMs: nil, lossPercent: nil, mos: nil, incomplete: incomplete)
    }

    @Test("one channel id on two nodes: two rows, the second reported; a repeat writes nothing; a placeholder is replaced by the real row")
    func keyedByNodeAndChannel() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        let store = CDRStore(pool: pool)
        let call = "7b0c0a52-6a0e-4d53-9a47-6f3c1c2b9a10"
        #expect(try await store.insert(cdr(node: "fs-e1", channel: call, call: call)) == .written)
        #expect(try await store.insert(cdr(node: "fs-e1", channel: call, call: call)) == .unchanged, "the same channel again")
        #expect(try await store.insert(cdr(node: "fs-e2", channel: call, call: call)) == .writtenBesideOthers(1), "a second node's channel")
        #expect(try await pool.query("SELECT count(*) AS n FROM cdr WHERE call_id = $1", [call]).first?.int("n") == 2, "both kept, both billed")
        let other = "0f9a3c1e-2b4d-4e6f-8a1b-3c5d7e9f1a2b"
        #expect(try await store.insert(cdr(node: "fs-w1", channel: other, call: other, incomplete: true)) == .written)
        #expect(try await store.insert(cdr(node: "fs-w1", channel: other, call: other, incomplete: true)) == .unchanged)
        #expect(try await store.insert(cdr(node: "fs-w1", channel: other, call: other)) == .written, "the real record replaces the placeholder")
        #expect(try await store.find(node: "fs-w1", channelUUID: other)?.incomplete == false)
        await pool.shutdown()
        server.stop()
    }

    @Test("a batch: one result per CDR in order; a channel twice is written once; two channels of one call in one batch are both reported; costs")
    func batch() async throws {
        let dir = try TemporaryDirectory()
        let server = try await PostgresServer.start(in: dir)
        let pool = PostgresPool(conninfo: server.url, size: 2)
        try await Migrations.migrate(pool)
        _ = try await pool.query("INSERT INTO rates (prefix, per_minute) VALUES ('+1', 0.6), ('+16', 1.2)")
        let store = CDRStore(pool: pool)
        let a = "5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", b = "6e2f3a4b-5c6d-4e7f-9081-92a3b4c5d6e7", c = "7f3a4b5c-6d7e-4f80-a192-a3b4c5d6e7f8"
        _ = try await store.insert(cdr(node: "fs-e1", channel: c, call: c, incomplete: true))
        let results = try await store.insertMany([
            cdr(node: "fs-e1", channel: a, call: a),
            cdr(node: "fs-e1", channel: a, call: a),  // the same event twice
            cdr(node: "fs-e1", channel: b, call: b),
            cdr(node: "fs-e2", channel: b, call: b),  // the call placed twice, both hangups in one batch
            cdr(node: "fs-e1", channel: c, call: c),  // the real record for a placeholder
        ])
        #expect(results == [.written, .unchanged, .writtenBesideOthers(1), .writtenBesideOthers(1), .written])
        #expect(try await pool.query("SELECT count(*) AS n FROM cdr").first?.int("n") == 4)
        #expect(try await store.find(node: "fs-e1", channelUUID: c)?.incomplete == false)
        let cost = try await pool.query("SELECT cost::text AS c FROM cdr WHERE channel_uuid = $1 AND node = 'fs-e1'", [a]).first?["c"]
        #expect(cost == "0.18000", "9 s at the longest prefix +16 (1.2 a minute): \(cost ?? "nil")")
        #expect(try await store.insertMany([]).isEmpty)
        #expect(try await store.insertMany([cdr(node: "fs-e1", channel: a, call: a)]) == [.unchanged], "a later repeat")
        await pool.shutdown()
        server.stop()
    }
}
