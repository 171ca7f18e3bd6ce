import Synchronization

/// Runs concurrent submissions in batches: a submission starts a batch at once when fewer than
/// `flushes` batches are running (a lone request waits for nothing), and while batches run,
/// newer submissions gather into the next one (up to `maxBatch`). There is no timer. Each
/// submission gets its own result, in order, from `run`, which returns one result per item.
/// Shared by the API (creates, publishes), the orchestrator (claims) and the CDR writer (CDR
/// inserts, event publishes).
public final class Coalescer<Item: Sendable, Output: Sendable>: Sendable {
    private struct Waiter {
        var item: Item
        var continuation: CheckedContinuation<Output, Never>
    }

    private struct State {
        var pending: [Waiter] = []
        var running = 0
    }

    private let flushes: Int
    private let maxBatch: Int
    private let run: @Sendable ([Item]) async -> [Output]
    private let state = Mutex(State())

    public init(flushes: Int, maxBatch: Int, run: @escaping @Sendable ([Item]) async -> [Output]) {
        precondition(flushes >= 1 && maxBatch >= 1)
        self.flushes = flushes
        self.maxBatch = maxBatch
        self.run = run
    }

    public func submit(_ item: Item) async -> Output {
        await withCheckedContinuation { (c: CheckedContinuation<Output, Never>) in
            let start = state.withLock { s -> Bool in
                s.pending.append(Waiter(item: item, continuation: c))
                guard s.running < flushes else { return false }
                s.running += 1
                return true
            }
            if start { Task { await self.flush() } }
        }
    }

    /// Runs batches until nothing is pending.
    private func flush() async {
        while true {
            let batch = state.withLock { s -> [Waiter] in
                guard !s.pending.isEmpty else {
                    s.running -= 1
                    return []
                }
                let n = min(maxBatch, s.pending.count)
                defer { s.pending.removeFirst(n) }
                return Array(s.pending.prefix(n))
            }
            guard !batch.isEmpty else { return }
            let outputs = await run(batch.map(\.item))
            precondition(outputs.count == batch.count, "one result per item")
            for (w, o) in zip(batch, outputs) { w.continuation.resume(returning: o) }
        }
    }
}
