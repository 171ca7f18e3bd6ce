/// Work spread over `count` serial lanes by key: elements with the same key are handled in
/// order, one at a time; different keys run in parallel. (A call's CHANNEL_* events must be
/// applied in order; different calls need not wait for each other's database round trips.)
final class Lanes<Element: Sendable>: Sendable {
    private let continuations: [AsyncStream<Element>.Continuation]
    private let streams: [AsyncStream<Element>]

    init(count: Int) {
        var cs: [AsyncStream<Element>.Continuation] = []
        var ss: [AsyncStream<Element>] = []
        for _ in 0..<max(1, count) {
            let (s, c) = AsyncStream.makeStream(of: Element.self)
            ss.append(s)
            cs.append(c)
        }
        continuations = cs
        streams = ss
    }

    func submit(_ element: Element, key: String) {
        var h: UInt64 = 14_695_981_039_346_656_037
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        continuations[Int(h % UInt64(continuations.count))].yield(element)
    }

    /// No more elements: `run` returns once the lanes have handled what they hold.
    func finish() {
        for c in continuations { c.finish() }
    }

    /// Runs every lane until cancelled (or finished and emptied).
    func run(_ handler: @escaping @Sendable (Element) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for stream in streams {
                group.addTask {
                    for await element in stream { await handler(element) }
                }
            }
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: {
                for c in continuations { c.finish() }
            }
        }
    }
}
