import CallPlane
import Store

/// Puts concurrent creates into one PostgreSQL transaction each (`CallStore.insertBatch`), so
/// a burst of requests shares a commit and a round trip instead of paying one each (see
/// `Coalescer`: no timer, a lone create is inserted at once). Nothing is answered before its
/// batch commits. Creates with an idempotency key go through `CallStore.insert` one by one
/// (their replay lookup needs the key).
///
/// Creates under a concurrency limit (the Twilio surface) hold their account's advisory lock
/// through the commit, so two batches of one account never run at once anyway: if they were
/// started together the second would wait in PostgreSQL for the first, holding a connection
/// and splitting the burst in two. They go to one of `lanes` coalescers by account, each running
/// one batch at a time: one account's creates gather into one batch while the previous one
/// commits, and different accounts still run side by side.
final class CreateBatcher: Sendable {
    private typealias Lane = Coalescer<(call: CallStore.NewCall, limited: Bool), Result<CallStore.InsertOutcome, StoreError>>
    private let calls: CallStore
    private let coalescer: Lane
    private let limitedLanes: [Lane]

    init(calls: CallStore, flushes: Int = 4, lanes: Int = 4, maxBatch: Int = 256) {
        self.calls = calls
        let run: @Sendable ([(call: CallStore.NewCall, limited: Bool)]) async -> [Result<CallStore.InsertOutcome, StoreError>] = { items in
            do throws(StoreError) {
                return try await calls.insertBatch(items).map { .success($0) }
            } catch {
                return items.map { _ in .failure(error) }
            }
        }
        coalescer = Lane(flushes: flushes, maxBatch: maxBatch, run: run)
        limitedLanes = (0..<max(1, lanes)).map { _ in Lane(flushes: 1, maxBatch: maxBatch, run: run) }
    }

    func insert(_ call: CallStore.NewCall, limitConcurrency: Bool) async throws(StoreError) -> CallStore.InsertOutcome {
        if call.idempotencyKey != nil { return try await calls.insert(call, limitConcurrency: limitConcurrency) }
        guard limitConcurrency else { return try await coalescer.submit((call, false)).get() }
        return try await limitedLanes[Self.lane(of: call.accountID, count: limitedLanes.count)].submit((call, true)).get()
    }

    /// The lane of an account: the same for every create of the account in this process.
    static func lane(of account: String, count: Int) -> Int {
        Int(UInt(bitPattern: account.hashValue) % UInt(count))
    }
}
