import NIOCore
import Synchronization

/// Work spread over `count` serial lanes by key: elements with the same key are handled in
/// order, one at a time; different keys run in parallel. (A call's CHANNEL_* events must be
/// applied in order; different calls need not wait for each other's database round trips.)
final class Lanes<Element: Sendable>: Sendable {
    private let queues: [LaneQueue<Element>]

    init(count: Int) {
        queues = (0..<max(1, count)).map { _ in LaneQueue() }
    }

    func submit(_ element: Element, key: String) {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        queues[Int(h % UInt64(queues.count))].yield(element)
    }

    /// No more elements: `run` returns once the lanes have handled what they hold.
    func finish() {
        for q in queues { q.finish() }
    }

    /// Runs every lane until cancelled (or finished and emptied). Cancelling finishes the lanes:
    /// what they already hold is still handled.
    func run(_ handler: @escaping @Sendable (Element) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for queue in queues {
                group.addTask {
                    while let element = await queue.next() { await handler(element) }
                }
            }
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: {
                for q in queues { q.finish() }
            }
        }
    }
}

/// One lane's queue: unbounded, in order, one consumer. It does what an AsyncStream did here;
/// the stream's generic code runs unspecialized, and its metadata lookups on every yield and
/// next were about 8 % of the CDR writer's `perf` samples. After `finish`, elements already
/// queued are still delivered, then `next` returns nil; later ones are dropped.
final class LaneQueue<Element: Sendable>: Sendable {
    private struct State: Sendable {
        var buffer = CircularBuffer<Element>()
        var waiter: UnsafeContinuation<Element?, Never>?
        var finished = false
    }

    private enum Taken {
        case element(Element)
        case finished
        case empty
    }

    private let state = Mutex(State())

    func yield(_ element: Element) {
        let waiter = state.withLock { s -> UnsafeContinuation<Element?, Never>? in
            if s.finished { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.buffer.append(element)
            return nil
        }
        waiter?.resume(returning: element)
    }

    func finish() {
        let waiter = state.withLock { s -> UnsafeContinuation<Element?, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// The next element; nil once finished and empty. One caller at a time.
    func next() async -> Element? {
        switch take(waiter: nil) {
        case .element(let e): return e
        case .finished: return nil
        case .empty: break
        }
        return await withUnsafeContinuation { (c: UnsafeContinuation<Element?, Never>) in
            switch take(waiter: c) {
            case .element(let e): c.resume(returning: e)
            case .finished: c.resume(returning: nil)
            case .empty: break  // parked: resumed by yield or finish
            }
        }
    }

    private func take(waiter: UnsafeContinuation<Element?, Never>?) -> Taken {
        state.withLock { s in
            if let e = s.buffer.popFirst() { return .element(e) }
            if s.finished { return .finished }
            if let waiter { s.waiter = waiter }
            return .empty
        }
    }
}
