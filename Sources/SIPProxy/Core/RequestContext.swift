import Dispatcher

/// RFC 3261 §16 response context as a value: what the proxy decided about one request it
/// forwards, and what it decides next. Branches are tried one after another down `candidates`
/// (serial forking, §16.7) up to `maxAttempts`. Events come in (a branch's provisional or final
/// response, a branch that failed, the caller's CANCEL), and each returns the one action the
/// core performs. It never touches the network, a timer or the dispatcher, so every path is
/// tested without sockets (`RequestContextTests`).
struct RequestContext {
    /// A branch of this request, as the context knows it.
    struct Branch: Equatable {
        /// Which attempt it is (0 for the first node); client transactions carry it.
        var attempt: Int
        var key: ClientTransactionKey?
        /// A provisional response came (the node has the request; it can be CANCELled).
        var rang = false
        /// The caller cancelled before the node rang: CANCEL as soon as it does (§9.1).
        var cancelPending = false
    }

    /// An answer the proxy makes itself.
    enum LocalAnswer: Equatable {
        /// 487: the caller cancelled and no branch is left to answer for it.
        case requestTerminated
        /// 408: the branch timed out (Timer B/F or C) and no failover applies.
        case requestTimeout
        /// 503 with Retry-After: no candidate node is left.
        case serviceUnavailable
    }

    enum Event: Equatable {
        /// Send the request to its first node.
        case start
        /// The node of `.forward` has no address any more (a reload removed it): skip it.
        case skipped
        case provisional(attempt: Int, code: Int)
        /// `retryable`: the code is one `failover.retry_on` names and the branch went to a node.
        case final(attempt: Int, code: Int, retryable: Bool)
        /// No final response will come (Timer B/F, a transport error, no provisional in time,
        /// Timer C, the node lost while ringing). `canFailOver`: another node may be tried.
        case branchFailed(attempt: Int, canFailOver: Bool)
        /// The caller's CANCEL (§16.10).
        case cancel
    }

    enum Action: Equatable {
        case none
        /// Pass the response upstream (§16.7 steps 3–9).
        case relay
        /// Pass the provisional upstream, and CANCEL its branch: the caller had cancelled.
        case relayAndCancel
        /// CANCEL this branch; its final answer (a 487) goes upstream when it comes.
        case cancelBranch(ClientTransactionKey)
        /// Send the request to `node` as attempt `attempt`. `nodeFailed`: the previous node
        /// failed the call (report it and fail over).
        case forward(Node, attempt: Int, nodeFailed: Bool)
        /// Answer the caller with a response of our own. `nodeFailed` as for `forward`.
        case finish(LocalAnswer, nodeFailed: Bool)

        /// The branch this action follows failed on its node.
        var nodeFailed: Bool {
            switch self {
            case .forward(_, _, let failed), .finish(_, let failed): failed
            default: false
            }
        }
    }

    /// A new request dispatched to nodes (failover applies); false for in-dialog requests.
    let isDispatch: Bool
    /// A dispatched INVITE: it counts on its node's load from INVITE to BYE.
    let countsLoad: Bool
    /// How many leading Route elements the proxy removes (its own), or all for a dispatch.
    let removedRouteCount: Int
    let recordRoute: Bool
    /// §16.6 step 8: the loop hash every branch's Via carries.
    let loopHash: UInt32
    let maxAttempts: Int
    private(set) var candidates: [Node]
    private(set) var nextCandidate = 0
    /// The branch waiting for its final response, if any.
    private(set) var current: Branch?
    private(set) var cancelled = false
    /// A final response went upstream: nothing more may be sent but 2xx (§16.7 step 10). No
    /// branch starts after it, so the candidates are let go (a finished request lives 32 s).
    private(set) var finished = false {
        didSet { if finished { candidates = [] } }
    }
    /// Counted against its trunk's `max_concurrent` until a failed final response or its BYE.
    var countsOnTrunk = false

    /// A request dispatched to `candidates`, best first.
    init(dispatch candidates: [Node], isInvite: Bool, removedRouteCount: Int, recordRoute: Bool, loopHash: UInt32, maxAttempts: Int) {
        isDispatch = true
        countsLoad = isInvite
        self.removedRouteCount = removedRouteCount
        self.recordRoute = recordRoute
        self.loopHash = loopHash
        self.maxAttempts = maxAttempts
        self.candidates = candidates
    }

    /// An in-dialog request, sent along its Route set: one branch, no failover.
    init(inDialogRemovingRoutes removedRouteCount: Int, loopHash: UInt32) {
        isDispatch = false
        countsLoad = false
        self.removedRouteCount = removedRouteCount
        recordRoute = false
        self.loopHash = loopHash
        maxAttempts = 1
        candidates = []
        current = Branch(attempt: 0)
    }

    /// The client transaction of `attempt` was created with `key`.
    mutating func branchStarted(attempt: Int, key: ClientTransactionKey) {
        guard current?.attempt == attempt else { return }
        current?.key = key
    }

    func isCurrent(_ attempt: Int) -> Bool { current?.attempt == attempt }

    /// The current branch rang, and nothing ended the request yet: a node lost now strands it.
    func isRinging(_ attempt: Int) -> Bool {
        guard let current, current.attempt == attempt else { return false }
        return current.rang && isDispatch && !finished && !cancelled
    }

    /// Whether `attempt` still waits for its first provisional response.
    func awaitsProvisional(_ attempt: Int) -> Bool {
        guard let current, current.attempt == attempt else { return false }
        return !current.rang
    }

    mutating func event(_ event: Event) -> Action {
        switch event {
        case .start:
            return nextCandidateOrGiveUp(nodeFailed: false)
        case .skipped:
            current = nil
            return nextCandidateOrGiveUp(nodeFailed: false)
        case .provisional(let attempt, let code):
            guard var branch = current, branch.attempt == attempt else { return .none }
            branch.rang = true
            let cancel = branch.cancelPending
            branch.cancelPending = false
            current = branch
            // §16.7 step 5: 100 is not forwarded; nothing goes up after a final response.
            let relay = code > 100 && !finished
            switch (relay, cancel) {
            case (true, true): return .relayAndCancel
            case (false, true): return branch.key.map { .cancelBranch($0) } ?? .none
            case (true, false): return .relay
            case (false, false): return .none
            }
        case .final(let attempt, let code, let retryable):
            if current?.attempt == attempt { current = nil }
            if code < 300 {
                // 2xx always goes upstream, even after another final (§16.7 step 10).
                finished = true
                return .relay
            }
            guard !finished else { return .none }
            if isDispatch, !cancelled, retryable { return nextCandidateOrGiveUp(nodeFailed: true) }
            finished = true
            return .relay
        case .branchFailed(let attempt, let canFailOver):
            guard current?.attempt == attempt else { return .none }
            current = nil
            guard !finished else { return .none }
            if cancelled { return finish(.requestTerminated, nodeFailed: false) }
            if isDispatch, canFailOver { return nextCandidateOrGiveUp(nodeFailed: true) }
            return finish(.requestTimeout, nodeFailed: false)
        case .cancel:
            guard !finished, !cancelled else { return .none }
            cancelled = true
            guard var branch = current else { return finish(.requestTerminated, nodeFailed: false) }
            if branch.rang, let key = branch.key { return .cancelBranch(key) }
            branch.cancelPending = true
            current = branch
            return .none
        }
    }

    private mutating func nextCandidateOrGiveUp(nodeFailed: Bool) -> Action {
        if nextCandidate < min(candidates.count, maxAttempts) {
            let attempt = nextCandidate
            nextCandidate += 1
            current = Branch(attempt: attempt)
            return .forward(candidates[attempt], attempt: attempt, nodeFailed: nodeFailed)
        }
        return finish(.serviceUnavailable, nodeFailed: nodeFailed)
    }

    private mutating func finish(_ answer: LocalAnswer, nodeFailed: Bool) -> Action {
        finished = true
        return .finish(answer, nodeFailed: nodeFailed)
    }
}
