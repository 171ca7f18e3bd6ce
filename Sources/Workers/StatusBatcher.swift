import Store
import Synchronization

/// The orchestrator's status writes, batched: every lane awaits its own write, but the writes
/// that arrive while others are in flight go to PostgreSQL together, as one statement
/// (`CallStore.advanceMany`: one round trip and one commit for many calls). Under light load a
/// write goes alone at once; under load the batches grow, so the cost per call falls as the
/// rate rises. A batch never holds two changes of one call (a call's lane waits for its write,
/// and a second one would be kept for the next batch anyway).
final class StatusBatcher: Sendable {
    typealias Waiter = CheckedContinuation<Result<CallStore.Call?, StoreError>, Never>

    private let calls: CallStore
    private let maxBatch: Int
    private let maxInFlight: Int
    private let state = Mutex<(pending: [(change: CallStore.Advance, waiter: Waiter)], flushing: Int)>(([], 0))

    init(calls: CallStore, maxBatch: Int = 128, maxInFlight: Int = 4) {
        self.calls = calls
        self.maxBatch = maxBatch
        self.maxInFlight = maxInFlight
    }

    /// The call when it changed, nil when the status could not move (already there or past it).
    func advance(_ change: CallStore.Advance) async throws(StoreError) -> CallStore.Call? {
        let result = await withCheckedContinuation { (waiter: Waiter) in
            let start = state.withLock { s -> Bool in
                s.pending.append((change, waiter))
                guard s.flushing < maxInFlight else { return false }
                s.flushing += 1
                return true
            }
            if start { Task { await self.flush() } }
        }
        return try result.get()
    }

    /// Writes batches until nothing is pending.
    private func flush() async {
        while true {
            let batch = state.withLock { s -> [(change: CallStore.Advance, waiter: Waiter)] in
                guard !s.pending.isEmpty else {
                    s.flushing -= 1
                    return []
                }
                var taken: [(change: CallStore.Advance, waiter: Waiter)] = []
                var ids: Set<String> = []
                var kept: [(change: CallStore.Advance, waiter: Waiter)] = []
                for p in s.pending {
                    if taken.count < maxBatch, ids.insert(p.change.id).inserted { taken.append(p) } else { kept.append(p) }
                }
                s.pending = kept
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let changed = try await calls.advanceMany(batch.map(\.change))
                for p in batch { p.waiter.resume(returning: .success(changed[p.change.id])) }
            } catch {
                for p in batch { p.waiter.resume(returning: .failure(error)) }
            }
        }
    }
}
