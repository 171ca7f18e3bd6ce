import Dispatcher
import Testing

@testable import SIPProxy

/// The §16 response context as a pure value: every decision about branches, failover, CANCEL
/// and local answers, without sockets or time.
@Suite struct RequestContextTests {
    static let nodes = (1...3).map { Node(name: "n\($0)", region: "r", sip: HostPort(host: "127.0.0.1", port: 5080 + $0)) }
    static func key(_ n: Int) -> ClientTransactionKey { ClientTransactionKey(branch: "z9hG4bKb\(n)", isCancel: false) }

    /// A dispatched INVITE, started, its first branch created.
    static func started(candidates: Int = 3, maxAttempts: Int = 3) -> RequestContext {
        var ctx = RequestContext(
            dispatch: Array(nodes.prefix(candidates)), isInvite: true, removedRouteCount: 0, recordRoute: true, loopHash: 7, maxAttempts: maxAttempts)
        #expect(ctx.event(.start) == .forward(nodes[0], attempt: 0, nodeFailed: false))
        ctx.branchStarted(attempt: 0, key: key(0))
        return ctx
    }

    @Test func aCallThatRingsAndIsAnsweredRelaysAllButThe100() {
        var ctx = Self.started()
        #expect(ctx.awaitsProvisional(0))
        #expect(ctx.event(.provisional(attempt: 0, code: 100)) == .none)
        #expect(!ctx.awaitsProvisional(0) && ctx.isRinging(0))
        #expect(ctx.event(.provisional(attempt: 0, code: 180)) == .relay)
        #expect(ctx.event(.final(attempt: 0, code: 200, retryable: false)) == .relay)
        #expect(ctx.finished && ctx.current == nil)
        // A retransmitted 2xx still goes upstream (§16.7 step 10); nothing else does.
        #expect(ctx.event(.final(attempt: 0, code: 200, retryable: false)) == .relay)
        #expect(ctx.event(.final(attempt: 0, code: 486, retryable: false)) == .none)
        #expect(ctx.event(.provisional(attempt: 0, code: 180)) == .none)
        #expect(ctx.event(.cancel) == .none, "a CANCEL after the answer changes nothing")
    }

    @Test func aRetryableRefusalFailsOverToTheNextCandidateAndReportsTheNode() {
        var ctx = Self.started()
        #expect(ctx.event(.final(attempt: 0, code: 503, retryable: true)) == .forward(Self.nodes[1], attempt: 1, nodeFailed: true))
        ctx.branchStarted(attempt: 1, key: Self.key(1))
        #expect(ctx.isCurrent(1) && !ctx.isCurrent(0))
        // A non-retryable failure is the caller's answer.
        #expect(ctx.event(.final(attempt: 1, code: 486, retryable: false)) == .relay)
        #expect(ctx.finished)
    }

    @Test func failoverStopsAtMaxAttemptsWithA503() {
        var ctx = Self.started(candidates: 3, maxAttempts: 2)
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: true)) == .forward(Self.nodes[1], attempt: 1, nodeFailed: true))
        ctx.branchStarted(attempt: 1, key: Self.key(1))
        #expect(ctx.event(.final(attempt: 1, code: 500, retryable: true)) == .finish(.serviceUnavailable, nodeFailed: true))
        #expect(ctx.finished)
        // And with every candidate tried.
        var all = Self.started(candidates: 1)
        #expect(all.event(.branchFailed(attempt: 0, canFailOver: true)) == .finish(.serviceUnavailable, nodeFailed: true))
    }

    @Test func aBranchThatTimesOutWithoutFailoverIsA408() {
        var ctx = Self.started()
        #expect(ctx.event(.provisional(attempt: 0, code: 180)) == .relay)
        // Timer C: no failover once the caller heard ringing.
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: false)) == .finish(.requestTimeout, nodeFailed: false))
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: true)) == .none, "an ended branch fails only once")
    }

    @Test func aCancelBeforeTheNodeRangIsSentWhenItRings() {
        var ctx = Self.started()
        #expect(ctx.event(.cancel) == .none, "nothing to CANCEL before a provisional (§9.1)")
        #expect(ctx.cancelled && !ctx.finished)
        #expect(ctx.event(.cancel) == .none, "a retransmitted CANCEL")
        #expect(ctx.event(.provisional(attempt: 0, code: 180)) == .relayAndCancel)
        #expect(ctx.event(.provisional(attempt: 0, code: 183)) == .relay, "one CANCEL only")
        // The node's 487 is the caller's answer; a retryable code does not fail over once cancelled.
        #expect(ctx.event(.final(attempt: 0, code: 503, retryable: true)) == .relay)
        var trying = Self.started()
        _ = trying.event(.cancel)
        #expect(trying.event(.provisional(attempt: 0, code: 100)) == .cancelBranch(Self.key(0)), "a 100 is not relayed, but allows the CANCEL")
    }

    @Test func aCancelAfterRingingCancelsTheBranchAndAFailedBranchIsA487() {
        var ctx = Self.started()
        _ = ctx.event(.provisional(attempt: 0, code: 180))
        #expect(ctx.event(.cancel) == .cancelBranch(Self.key(0)))
        #expect(!ctx.isRinging(0), "a cancelled call is not failed over when its node is lost")
        // The node never answers the CANCEL: the caller still gets a final answer.
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: true)) == .finish(.requestTerminated, nodeFailed: false))
        #expect(ctx.event(.final(attempt: 0, code: 487, retryable: false)) == .none)
    }

    @Test func aRingingCallWhoseNodeIsLostGoesToTheNextNode() {
        var ctx = Self.started()
        _ = ctx.event(.provisional(attempt: 0, code: 180))
        #expect(ctx.isRinging(0))
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: true)) == .forward(Self.nodes[1], attempt: 1, nodeFailed: true))
        ctx.branchStarted(attempt: 1, key: Self.key(1))
        // Late answers of the old branch no longer steer the request.
        #expect(ctx.event(.provisional(attempt: 0, code: 180)) == .none)
        #expect(ctx.event(.branchFailed(attempt: 0, canFailOver: true)) == .none)
        #expect(ctx.awaitsProvisional(1))
        // But a 2xx from anywhere reaches the caller.
        #expect(ctx.event(.final(attempt: 0, code: 200, retryable: false)) == .relay)
    }

    @Test func aSkippedNodeMovesOnWithoutBlamingAnyone() {
        var ctx = RequestContext(
            dispatch: Array(Self.nodes.prefix(2)), isInvite: false, removedRouteCount: 0, recordRoute: false, loopHash: 1, maxAttempts: 3)
        #expect(ctx.event(.start) == .forward(Self.nodes[0], attempt: 0, nodeFailed: false))
        #expect(ctx.event(.skipped) == .forward(Self.nodes[1], attempt: 1, nodeFailed: false))
        #expect(ctx.event(.skipped) == .finish(.serviceUnavailable, nodeFailed: false))
        #expect(!ctx.countsLoad, "only an INVITE counts on its node's load")
    }

    @Test func anInDialogRequestNeverFailsOver() {
        var ctx = RequestContext(inDialogRemovingRoutes: 2, loopHash: 9)
        ctx.branchStarted(attempt: 0, key: Self.key(0))
        #expect(!ctx.isDispatch && !ctx.countsLoad && ctx.removedRouteCount == 2)
        #expect(ctx.event(.final(attempt: 0, code: 503, retryable: true)) == .relay)
        var timedOut = RequestContext(inDialogRemovingRoutes: 0, loopHash: 9)
        #expect(timedOut.event(.branchFailed(attempt: 0, canFailOver: true)) == .finish(.requestTimeout, nodeFailed: false))
        #expect(!timedOut.isRinging(0))
    }
}
