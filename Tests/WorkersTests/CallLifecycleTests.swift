import Testing

@testable import Workers

/// A clock that moves only when told: the lifecycle's tests run without sleeping.
struct ManualClock: Clock {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by d: Duration) -> Instant { Instant(offset: offset + d) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    var now: Instant { Instant(offset: .zero) }
    var minimumResolution: Duration { .nanoseconds(1) }
    func sleep(until deadline: Instant, tolerance: Duration?) async throws {}
}

/// The call lifecycle as a pure value: every path on a manual clock, no sockets.
@Suite struct CallLifecycleTests {
    typealias L = CallLifecycle<ManualClock>
    let e1 = L.Placement(node: "fs-e1", region: "us-east-1")
    let e2 = L.Placement(node: "fs-e2", region: "us-east-1")
    let settings = L.Settings(acceptTimeout: .seconds(5), confirmEvery: .seconds(1), confirmFor: .seconds(10))

    /// Runs events at times (seconds) and collects the actions.
    struct Run {
        var l: L
        var t: Duration = .zero
        var actions: [L.Action] = []

        mutating func send(_ e: L.Event, at seconds: Double? = nil) -> [L.Action] {
            if let seconds { t = .milliseconds(Int64(seconds * 1000)) }
            let a = l.handle(e, now: .init(offset: t))
            actions += a
            return a
        }
    }

    func queuedJob(node: String? = nil, mayWait: Bool = true) -> L.Job { L.Job(status: "queued", node: node, mayWait: mayWait) }

    /// Job → choose → claim → originate on e1.
    func placing() -> Run {
        var r = Run(l: L(settings: settings))
        #expect(r.send(.job(queuedJob())) == [.chooseNodes(excluding: [])])
        #expect(r.send(.candidates([e1, e2])) == [.claim(e1, expectedNode: nil), .jobInProgress])
        let a = r.send(.claimed(true))
        #expect(a.first == .originate(e1, attempt: 1))
        #expect(a.contains { if case .startTimer(let t, let d) = $0 { t.kind == .accept && d == .seconds(5) } else { false } })
        return r
    }

    func timer(_ actions: [L.Action], _ kind: L.TimerKind) -> L.TimerID? {
        for a in actions { if case .startTimer(let t, _) = a, t.kind == kind { return t } }
        return nil
    }

    func statuses(_ actions: [L.Action]) -> [String] {
        actions.compactMap { if case .setStatus(let s, _, _, _) = $0 { s } else { nil } }
    }

    @Test func aCallIsPlacedAndFollowedToItsEnd() {
        var r = placing()
        let created = r.send(.channel(.created, node: "fs-e1"), at: 0.2)
        #expect(created.contains(.recordAttempt(e1, result: "created (CHANNEL_CREATE)", elapsed: .milliseconds(200))))
        #expect(created.contains(.ackJob))
        #expect(statuses(created) == ["ringing"])
        #expect(r.send(.channel(.progress, node: "fs-e1")).isEmpty, "ringing already")
        #expect(statuses(r.send(.channel(.answered, node: "fs-e1"))) == ["in-progress"])
        let end = r.send(.channel(.hangup(status: "completed", cause: "NORMAL_CLEARING"), node: "fs-e1"), at: 30)
        #expect(end == [.setStatus("completed", node: "fs-e1", cause: "NORMAL_CLEARING", channelLost: false), .forget])
        #expect(r.l.isEnded)
        #expect(r.actions.filter { $0 == .ackJob }.count == 1, "the job is acked once")
        #expect(r.send(.channel(.hangup(status: "failed", cause: "X"), node: "fs-e1")).isEmpty, "one final status")
    }

    @Test func aNodeRefusalBeforeAChannelTriesTheNextNode() {
        var r = placing()
        let a = r.send(.jobResult(attempt: 1, reply: "-ERR NORMAL_TEMPORARY_FAILURE\n"), at: 0.05)
        #expect(a.contains(.holdDown(node: "fs-e1", for: .seconds(2))))
        #expect(a.last == .chooseNodes(excluding: ["fs-e1"]))
        #expect(
            r.send(.candidates([e1, e2])) == [.claim(e2, expectedNode: "fs-e1"), .jobInProgress],
            "the refusing node is skipped; the row names the first node")
        #expect(r.send(.claimed(true)).first == .originate(e2, attempt: 2))
        #expect(r.send(.channel(.created, node: "fs-e2")).contains(.ackJob))
    }

    @Test func aFarEndAnswerWithoutAChannelIsFinal() {
        var r = placing()
        let a = r.send(.jobResult(attempt: 1, reply: "-ERR USER_BUSY"))
        #expect(statuses(a) == ["busy"])
        #expect(a.contains(.ackJob))
        #expect(!a.contains { if case .chooseNodes = $0 { true } else { false } }, "no other node")
    }

    @Test func anAcceptTimeoutAsksTheNodeAndAnAbsentChannelMovesOn() {
        var r = placing()
        let accept = timer(r.actions, .accept)!
        #expect(r.send(.timer(accept), at: 5).last == .checkPresence(node: "fs-e1"))
        let a = r.send(.presence(.absent, node: "fs-e1"), at: 5.1)
        #expect(a.last == .chooseNodes(excluding: ["fs-e1"]), "a connected node said false: provably no channel")
    }

    @Test func anUnknownStateIsAskedAgainAndNeverRedialed() {
        var r = placing()
        _ = r.send(.timer(timer(r.actions, .accept)!), at: 5)
        var a = r.send(.presence(.unknown("ESL timeout"), node: "fs-e1"), at: 8)
        for second in 9...16 {
            guard let t = timer(a, .confirm) else { break }
            #expect(r.send(.timer(t), at: Double(second)) == [.checkPresence(node: "fs-e1")])
            a = r.send(.presence(.unknown("ESL down"), node: "fs-e1"), at: Double(second))
        }
        #expect(statuses(a) == ["failed"], "given up after confirmFor: \(a)")
        #expect(a.contains(.setStatus("failed", node: "fs-e1", cause: "node-unreachable", channelLost: false)))
        #expect(!r.actions.contains { if case .originate(_, let n) = $0 { n > 1 } else { false } }, "never a second originate")
        #expect(!r.actions.contains { if case .chooseNodes(let ex) = $0 { !ex.isEmpty } else { false } })
        // The node turns up with the channel after all: it is hung up, not followed.
        #expect(r.send(.channel(.created, node: "fs-e1")) == [.hangup(node: "fs-e1", cause: "ORIGINATOR_CANCEL")])
    }

    @Test func anUnknownStateThatTurnsOutPresentIsFollowed() {
        var r = placing()
        _ = r.send(.originateFailed("connection reset"), at: 0.1)
        #expect(r.actions.last == .checkPresence(node: "fs-e1"))
        let a = r.send(.presence(.present(answered: false), node: "fs-e1"))
        #expect(a.contains(.ackJob))
        #expect(statuses(a) == ["ringing"])
        if case .live(let node, _) = r.l.phase { #expect(node == "fs-e1") } else { Issue.record("live: \(r.l.phase)") }
    }

    @Test func aCommandThatNeverLeftIsARefusal() {
        var r = placing()
        #expect(r.send(.originateNotSent("not connected")).last == .chooseNodes(excluding: ["fs-e1"]))
    }

    @Test func aStaleAcceptTimerOfAnEarlierAttemptChangesNothing() {
        var r = placing()
        let first = timer(r.actions, .accept)!
        _ = r.send(.jobResult(attempt: 1, reply: "-ERR SWITCH_CONGESTION"))
        _ = r.send(.candidates([e2]))
        _ = r.send(.claimed(true))
        #expect(r.send(.timer(first)).isEmpty, "attempt 1's timer is void")
        #expect(r.send(.jobResult(attempt: 1, reply: "-ERR X")).isEmpty, "attempt 1's late result too")
    }

    @Test func aRedeliveredJobChecksTheClaimedNodeFirst() {
        var r = Run(l: L(settings: settings))
        #expect(r.send(.job(queuedJob(node: "fs-e1"))) == [.checkPresence(node: "fs-e1")])
        let a = r.send(.presence(.present(answered: false), node: "fs-e1"))
        #expect(a.contains(.ackJob))
        #expect(!a.contains { if case .originate = $0 { true } else { false } }, "not placed again")

        var ended = Run(l: L(settings: settings))
        _ = ended.send(.job(queuedJob(node: "fs-e1")))
        #expect(statuses(ended.send(.presence(.ended(status: "completed"), node: "fs-e1"))) == ["completed"])

        var absent = Run(l: L(settings: settings))
        _ = absent.send(.job(queuedJob(node: "fs-e1")))
        #expect(absent.send(.presence(.absent, node: "fs-e1")).last == .chooseNodes(excluding: []))
        #expect(
            absent.send(.candidates([e2])) == [.claim(e2, expectedNode: "fs-e1"), .jobInProgress],
            "the claim expects the node the row names, so a second placer that read the same row loses")
    }

    @Test func aSecondDeliveryWhileBeingPlacedIsReleased() {
        var r = placing()
        #expect(r.send(.job(queuedJob())) == [.nakDuplicate(after: .seconds(5))])
        _ = r.send(.channel(.created, node: "fs-e1"))
        #expect(r.send(.job(queuedJob())) == [.ackJob], "placed: the redelivery is done")
        #expect(r.send(.job(L.Job(status: "ringing", node: "fs-e1", mayWait: true))) == [.ackJob])
    }

    @Test func noNodeYetReleasesTheJobWhileTheCallMayWait() {
        var r = Run(l: L(settings: settings))
        _ = r.send(.job(queuedJob()))
        #expect(r.send(.candidates([])) == [.nakJob(after: .seconds(1)), .forget])
        var late = Run(l: L(settings: settings))
        _ = late.send(.job(queuedJob(mayWait: false)))
        #expect(statuses(late.send(.candidates([]))) == ["failed"])
    }

    @Test func aCanceledCallIsNotPlaced() {
        var r = Run(l: L(settings: settings))
        _ = r.send(.job(queuedJob()))
        _ = r.send(.candidates([e1]))
        #expect(r.send(.claimed(false)) == [.ackJob, .forget])
        // A cancel while placing hangs the channel up as soon as it exists.
        var p = placing()
        #expect(p.send(.cancel).isEmpty)
        #expect(p.send(.channel(.created, node: "fs-e1")).contains(.hangup(node: "fs-e1", cause: "ORIGINATOR_CANCEL")))
        #expect(p.send(.cancel) == [.hangup(node: "fs-e1", cause: "ORIGINATOR_CANCEL")])
    }

    @Test func aSecondChannelIsAnErrorAndHungUp() {
        var r = placing()
        _ = r.send(.channel(.created, node: "fs-e1"))
        #expect(r.send(.channel(.created, node: "fs-e2")) == [.secondChannel(node: "fs-e2"), .hangup(node: "fs-e2", cause: "LOSE_RACE")])
        #expect(r.send(.channel(.hangup(status: "failed", cause: "LOSE_RACE"), node: "fs-e2")).isEmpty, "the second channel's end is not the call's")
    }

    @Test func aLostNodeEndsItsLiveCallsOnceWithAnIncompleteCDR() {
        var r = placing()
        _ = r.send(.channel(.created, node: "fs-e1"))
        _ = r.send(.channel(.answered, node: "fs-e1"))
        #expect(r.send(.nodeLost(node: "fs-e2")).isEmpty, "another node")
        #expect(r.send(.nodeLost(node: "fs-e1")) == [.setStatus("completed", node: "fs-e1", cause: "node-lost", channelLost: true), .forget])
        // Not followed here (its orchestrator is gone): the sweep read it from the database.
        var idle = Run(l: L(settings: settings))
        #expect(statuses(idle.send(.nodeLost(node: "fs-e1"))) == ["failed"])
    }

    @Test func aReconcileEndsCallsWhoseChannelIsGoneAndKeepsTheOthers() {
        var gone = Run(l: L(settings: settings))
        let a = gone.send(.reconciled(.absent, node: "fs-e1", storedStatus: "in-progress"))
        #expect(a.contains(.setStatus("completed", node: "fs-e1", cause: "ended-unseen", channelLost: true)))
        var ringing = Run(l: L(settings: settings))
        #expect(statuses(ringing.send(.reconciled(.absent, node: "fs-e1", storedStatus: "ringing"))) == ["failed"])
        var alive = Run(l: L(settings: settings))
        #expect(statuses(alive.send(.reconciled(.present(answered: true), node: "fs-e1", storedStatus: "ringing"))) == ["in-progress"])
        #expect(statuses(alive.send(.channel(.hangup(status: "completed", cause: "NORMAL_CLEARING"), node: "fs-e1"))) == ["completed"])
        // While the call is being placed, the attempt's own timers decide.
        var p = placing()
        #expect(p.send(.reconciled(.absent, node: "fs-e1", storedStatus: "queued")).isEmpty)
    }

    @Test func eventsOfACallPlacedElsewhereAreFollowed() {
        var r = Run(l: L(settings: settings))
        let a = r.send(.channel(.created, node: "fs-w1"))
        #expect(statuses(a) == ["ringing"])
        #expect(!a.contains(.ackJob), "no job held here")
        #expect(statuses(r.send(.channel(.hangup(status: "busy", cause: "USER_BUSY"), node: "fs-w1"))) == ["busy"])
    }

    @Test func aStoreOutageBeforeTheOriginateReleasesTheJob() {
        var r = Run(l: L(settings: settings))
        _ = r.send(.job(queuedJob()))
        _ = r.send(.candidates([e1]))
        #expect(r.send(.storeUnavailable("connection refused")) == [.nakJob(after: .seconds(2)), .forget])
        var p = placing()
        #expect(p.send(.storeUnavailable("x")).isEmpty, "after the originate: the node may have it")
    }
}
