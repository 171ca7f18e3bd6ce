import Dispatcher
import Logging
import NIOCore
import SIPCore

extension ProxyCore {
    /// §16.7: match the response to its branch. A response that matches no client transaction
    /// is dropped and counted, whatever its Via says: with RFC 6026's Accepted state on both
    /// sides, a stateful proxy has no response to relay statelessly, and relaying one lets anyone
    /// who can forge a Via inject responses into a caller's call.
    func handleResponse(_ msg: SIPMessage, from source: SIPEndpoint) {
        // §18.1.2: a response whose top Via is not ours is discarded.
        guard config.advertised.isOwn(msg.topVia), let branch = msg.topVia.branch, let code = msg.statusCode else {
            strayResponse(msg, from: source, reason: .notOurVia)
            return
        }
        if msg.cseq.method == .options, handleProbeResponse(msg, branch: branch, code: code, from: source) { return }
        let key = ClientTransactionKey(branch: branch, isCancel: msg.cseq.method == .cancel)
        guard let ct = clientTransactions[key] else {
            strayResponse(msg, from: source, reason: .noTransaction)
            return
        }
        // Only the next hop the branch went to answers it: a response with a guessed branch from
        // anywhere else is not one.
        guard source.hasSameHost(as: ct.destination) else {
            strayResponse(msg, from: source, reason: .wrongSource)
            return
        }
        runClient(ct.machine.responseReceived(statusCode: code), ct, response: msg)
    }

    /// Why a response was dropped (`sip_stray_responses_total{reason}`).
    enum StrayReason: String {
        case notOurVia = "not-our-via"
        case noTransaction = "no-transaction"
        case wrongSource = "wrong-source"
    }

    func strayResponse(_ msg: SIPMessage, from source: SIPEndpoint, reason: StrayReason) {
        metrics.strayResponse(reason.rawValue)
        if droppedLogBudget.allow(now: now) {
            logger.info(
                "response matches no transaction; dropped",
                metadata: ["source": "\(source)", "reason": "\(reason.rawValue)", "status": "\(msg.statusCode ?? 0)", "call-id": "\(msg.callID)"]
            )
        }
    }

    /// A response on a branch we gave up: CANCEL a late ringing and report a late answer (the
    /// caller is already served elsewhere). The transaction ACKs a late failure itself.
    func lateResponse(_ ct: ClientTransactionRecord, _ msg: SIPMessage, _ code: Int) {
        // Only an INVITE branch can be CANCELled (§9.1).
        guard ct.isInvite else { return }
        if code < 200 {
            sendCancel(for: ct)
        } else {
            logger.warning("node answered a branch already failed over", metadata: ["call-id": "\(msg.callID)", "node": "\(ct.node?.name ?? "-")"])
        }
    }

    // MARK: - Action runners

    /// Performs what the transaction machine of `st` asked for.
    func runServer(_ actions: TransactionActions, _ st: ServerTransactionRecord) {
        for action in actions {
            switch action {
            case .transmitResponse:
                if let bytes = st.lastResponse { transport.send(bytes, to: st.responseDestination, failureToken: nil) }
            case .startTimer(let t, let d):
                arm(st, .transaction(t), after: d)
            case .cancelTimer(let t):
                _ = st.generations.bump(.transaction(t))
            case .terminate:
                if serverTransactions[st.key] === st { serverTransactions[st.key] = nil }
                updateGauges()
            case .ackNotReceived:
                logger.info("no ACK for final response", metadata: ["call-id": "\(st.callID)"])
            case .transmitRequest, .sendAck, .deliverResponse, .timedOut:
                continue
            }
        }
        st.releaseWhatIsDone()
    }

    /// A path that needs a released request was reached: a bug, not a crash. Logged and counted.
    func requestReleased(_ st: ServerTransactionRecord, needed what: String) {
        metrics.internalErrors.increment()
        internalErrorCount += 1
        logger.error("internal: the request was already released", metadata: ["call-id": "\(st.callID)", "needed": "\(what)"])
    }

    /// Performs what the transaction machine of `ct` asked for; `response` is the response it
    /// was fed, if any.
    func runClient(_ actions: TransactionActions, _ ct: ClientTransactionRecord, response: SIPMessage?) {
        for action in actions {
            switch action {
            case .transmitRequest:
                transport.send(ct.request, to: ct.destination, failureToken: ct.key)
            case .sendAck:
                if ct.ack == nil, let response { ct.ack = buildBranchRequest(ct, method: "ACK", toLine: response.headerLine(.to)) }
                if let ack = ct.ack { transport.send(ack, to: ct.destination, failureToken: nil) }
            case .deliverResponse:
                if let response { branchResponded(ct, response) }
            case .timedOut:
                branchFailed(ct, reason: "timeout", allowFailover: true)
            case .startTimer(let t, let d):
                arm(ct, .transaction(t), after: d)
            case .cancelTimer(let t):
                disarm(ct, .transaction(t))
            case .terminate:
                if clientTransactions[ct.key] === ct { clientTransactions[ct.key] = nil }
                updateGauges()
            case .transmitResponse, .ackNotReceived:
                continue
            }
        }
    }

    /// Performs what the response context of `st` decided. `branch` is the branch the event
    /// was about and `response` the response it brought, if any.
    func run(_ action: RequestContext.Action, _ st: ServerTransactionRecord, branch ct: ClientTransactionRecord?, response: SIPMessage? = nil) {
        switch action {
        case .none:
            return
        case .relay:
            if let response { forwardUpstream(st, response) }
        case .relayAndCancel:
            if let ct { sendCancel(for: ct) }
            if let response { forwardUpstream(st, response) }
        case .cancelBranch(let key):
            if let target = clientTransactions[key] { sendCancel(for: target) }
        case .forward(let node, let attempt, _):
            guard let destination = nodeEndpoints[node.name] else {
                // Removed by a reload since the candidates were chosen.
                run(st.context.event(.skipped), st, branch: nil)
                return
            }
            metrics.routed(node.name)
            if st.context.countsLoad { dispatcher.callStarted(node: node.name) }
            forwardBranch(st, attempt: attempt, to: destination, node: node)
        case .finish(let answer, _):
            finishLocally(st, answer)
        }
    }

    func clientTimerFired(_ ct: ClientTransactionRecord, _ timer: CoreTimer) {
        switch timer {
        case .transaction(let t):
            runClient(ct.machine.timerFired(t), ct, response: nil)
        case .inviteTimeout:
            guard !ct.abandoned, ct.server.context.awaitsProvisional(ct.attempt) else { return }
            logger.notice("no provisional response in time", metadata: ["call-id": "\(ct.server.callID)", "node": "\(ct.node?.name ?? "-")"])
            abandon(ct)
            branchFailed(ct, reason: "invite timeout", allowFailover: true)
        case .timerC:
            guard !ct.abandoned, ct.server.context.isCurrent(ct.attempt) else { return }
            // §16.8: the branch rang too long: cancel it and answer 408.
            sendCancel(for: ct)
            abandon(ct)
            branchFailed(ct, reason: "timer C", allowFailover: false)
        case .cleanup:
            if clientTransactions[ct.key] === ct { clientTransactions[ct.key] = nil }
            updateGauges()
        }
    }

    /// Gives a branch up: its transaction stops retransmitting and stays only to answer late
    /// responses, for 64·T1.
    func abandon(_ ct: ClientTransactionRecord) {
        let wasAbandoned = ct.abandoned
        runClient(ct.machine.abandon(), ct, response: nil)
        if ct.isInvite, !wasAbandoned, ct.abandoned { ct.server.abandonedBranches += 1 }
        disarm(ct, .inviteTimeout)
        disarm(ct, .timerC)
        arm(ct, .cleanup, after: config.timers.transactionTimeout)
    }

    // MARK: - §16.7 response processing

    func branchResponded(_ ct: ClientTransactionRecord, _ msg: SIPMessage) {
        guard !ct.key.isCancel, let code = msg.statusCode else { return }
        if ct.abandoned {
            lateResponse(ct, msg, code)
            return
        }
        let st = ct.server
        if code < 200 {
            if st.context.awaitsProvisional(ct.attempt) {
                disarm(ct, .inviteTimeout)
                if let node = ct.node { dispatcher.reportSuccess(node: node.name) }
            }
            if ct.isInvite { arm(ct, .timerC, after: config.timerC) }
            run(st.context.event(.provisional(attempt: ct.attempt, code: code)), st, branch: ct, response: msg)
            return
        }
        disarm(ct, .inviteTimeout)
        disarm(ct, .timerC)
        ct.releaseRequest()
        if let node = ct.node {
            // A refused call no longer counts on the node (an answered one ends with its BYE).
            if code >= 300, st.context.countsLoad { dispatcher.callEnded(node: node.name) }
            if code < 300 { dispatcher.reportSuccess(node: node.name) }
        }
        let retryable = ct.node != nil && config.failover.retryOn.contains(code)
        let action = st.context.event(.final(attempt: ct.attempt, code: code, retryable: retryable))
        if action.nodeFailed, let node = ct.node {
            logger.notice("node refused INVITE, failing over", metadata: ["call-id": "\(msg.callID)", "node": "\(node.name)", "status": "\(code)"])
            let retryAfter = code == 503 ? msg.retryAfterSeconds.map { Duration.seconds($0) } : nil
            nodeFailedCall(node, reason: "answered INVITE with \(code)", retryAfter: retryAfter)
        }
        run(action, st, branch: ct, response: msg)
    }

    /// A branch ended without a final response: Timer B/F, a transport error, the INVITE
    /// timeout, Timer C, its node lost while ringing.
    func branchFailed(_ ct: ClientTransactionRecord, reason: String, allowFailover: Bool) {
        let st = ct.server
        guard !ct.key.isCancel, st.context.isCurrent(ct.attempt) else { return }
        if st.context.countsLoad, let node = ct.node { dispatcher.callEnded(node: node.name) }
        let action = st.context.event(.branchFailed(attempt: ct.attempt, canFailOver: allowFailover && ct.node != nil))
        if action.nodeFailed, let node = ct.node { nodeFailedCall(node, reason: reason) }
        run(action, st, branch: ct)
    }

    /// Sends the answer the response context chose to make itself.
    func finishLocally(_ st: ServerTransactionRecord, _ answer: RequestContext.LocalAnswer) {
        switch answer {
        case .requestTerminated:
            finishLocally(st, 487, "Request Terminated")
        case .requestTimeout:
            finishLocally(st, 408, "Request Timeout")
        case .serviceUnavailable:
            finishLocally(st, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(config.retryAfterSeconds)"])
        }
    }

    /// Sends a response the proxy generates as the final answer for `st`.
    func finishLocally(_ st: ServerTransactionRecord, _ status: Int, _ reason: String, extraHeaders: [String] = []) {
        // The context answers only before a final response, while the request is kept.
        guard let request = st.request else { return requestReleased(st, needed: "answer \(status)") }
        metrics.localReplies.increment()
        let bytes = ResponseBuilder.response(
            to: request, status: status, reason: reason, toTag: localTag(request), extraHeaders: extraHeaders, server: config.serverHeader)
        sendResponse(st, bytes, statusCode: status)
    }

    /// §16.7 steps 3 and 9: remove our Via and send through the server transaction.
    func forwardUpstream(_ st: ServerTransactionRecord, _ msg: SIPMessage) {
        let code = msg.statusCode ?? 0
        guard msg.viaRanges.count >= 2 else {
            // §16.7 step 3: with no Via left the response is not forwarded. A broken node dropped
            // the caller's Via; the caller still gets the final status, from us.
            metrics.responsesDropped.increment()
            logger.warning("response from node lost the caller's Via", metadata: ["call-id": "\(msg.callID)", "status": "\(code)"])
            if code >= 300 {
                finishLocally(st, code, ResponseBuilder.defaultReason(code))
            }
            return
        }
        var editor = MessageEditor()
        editor.delete(msg.topViaRemovalRange)
        sendResponse(st, editor.apply(to: msg), statusCode: code)
    }

    /// Sends a response through the server transaction, which decides whether it leaves (a 2xx
    /// after another final still does, §16.7 step 10).
    func sendResponse(_ st: ServerTransactionRecord, _ bytes: ByteBuffer, statusCode: Int) {
        st.lastResponse = bytes
        if statusCode >= 300, st.context.countsOnTrunk {
            st.context.countsOnTrunk = false
            trunkCallEnded(callID: st.callID)
        }
        runServer(st.machine.responseSent(statusCode: statusCode), st)
    }
}
