import Store

/// Puts concurrent creates into one PostgreSQL transaction each (`CallStore.insertBatch`), so
/// a burst of requests shares a commit and a round trip instead of paying one each (see
/// `Coalescer`: no timer, a lone create is inserted at once). Nothing is answered before its
/// batch commits. Creates with an idempotency key go through `CallStore.insert` one by one
/// (their replay lookup needs the key).
final class CreateBatcher: Sendable {
    private let calls: CallStore
    private let coalescer: Coalescer<(call: CallStore.NewCall, limited: Bool), Result<CallStore.InsertOutcome, StoreError>>

    init(calls: CallStore, flushes: Int = 4, maxBatch: Int = 256) {
        self.calls = calls
        coalescer = Coalescer(flushes: flushes, maxBatch: maxBatch) { items in
            do throws(StoreError) {
                return try await calls.insertBatch(items).map { .success($0) }
            } catch {
                return items.map { _ in .failure(error) }
            }
        }
    }

    func insert(_ call: CallStore.NewCall, limitConcurrency: Bool) async throws(StoreError) -> CallStore.InsertOutcome {
        if call.idempotencyKey != nil { return try await calls.insert(call, limitConcurrency: limitConcurrency) }
        return try await coalescer.submit((call, limitConcurrency)).get()
    }
}
