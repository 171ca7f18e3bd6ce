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
        guard config.isOwn(msg.topVia), let branch = msg.topVia.branch, let code = msg.statusCode else {
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
        if ct.abandoned {
            lateResponse(ct, msg, code)
            return
        }
        runClient(ct.responseReceived(statusCode: code), ct, response: msg)
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

    /// A response on a branch we gave up: CANCEL a late ringing, ACK a late failure, and report
    /// a late answer (the caller is already served elsewhere).
    func lateResponse(_ ct: ClientTransactionRecord, _ msg: SIPMessage, _ code: Int) {
        // Only an INVITE branch can be CANCELled or ACKed (§9.1, §17.1.1.3).
        guard !ct.key.isCancel, ct.isInvite else { return }
        if code < 200 {
            sendCancel(for: ct)
        } else if code >= 300, let ctx = ct.context {
            transport.send(buildBranchRequest(ctx, ct, method: "ACK", toLine: msg.headerLine(.to)), to: ct.destination, failureToken: nil)
        } else {
            logger.warning("node answered a branch already failed over", metadata: ["call-id": "\(msg.callID)", "node": "\(ct.node?.name ?? "-")"])
        }
    }

    // MARK: - Action runners

    func runServer(_ actions: [TransactionAction], _ st: ServerTransactionRecord) {
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
                st.context = nil
                updateGauges()
            case .ackNotReceived:
                logger.info("no ACK for final response", metadata: ["call-id": "\(st.request.callID)"])
            case .transmitRequest, .sendAck, .deliverResponse, .timedOut:
                continue
            }
        }
    }

    func runClient(_ actions: [TransactionAction], _ ct: ClientTransactionRecord, response: SIPMessage?) {
        for action in actions {
            switch action {
            case .transmitRequest:
                transport.send(ct.request, to: ct.destination, failureToken: ct.key)
            case .sendAck:
                if let ctx = ct.context, let response {
                    transport.send(buildBranchRequest(ctx, ct, method: "ACK", toLine: response.headerLine(.to)), to: ct.destination, failureToken: nil)
                }
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

    func clientTimerFired(_ ct: ClientTransactionRecord, _ timer: CoreTimer) {
        switch timer {
        case .transaction(let t):
            runClient(ct.timerFired(t), ct, response: nil)
        case .inviteTimeout:
            guard !ct.gotProvisional, !ct.abandoned else { return }
            logger.notice("no provisional response in time", metadata: ["call-id": "\(ct.context?.request.callID ?? "")", "node": "\(ct.node?.name ?? "-")"])
            abandon(ct)
            branchFailed(ct, reason: "invite timeout", allowFailover: true)
        case .timerC:
            guard !ct.abandoned, let ctx = ct.context, ctx.current === ct else { return }
            // §16.8: the branch rang too long: cancel it and answer 408.
            sendCancel(for: ct)
            abandon(ct)
            branchFailed(ct, reason: "timer C", allowFailover: false)
        case .cleanup:
            if clientTransactions[ct.key] === ct { clientTransactions[ct.key] = nil }
            ct.context = nil
            updateGauges()
        }
    }

    /// Stops a branch's retransmissions and keeps it only to answer late responses.
    func abandon(_ ct: ClientTransactionRecord) {
        ct.abandoned = true
        for t in [TransactionTimer.a, .b, .d, .e, .f, .k, .m] { disarm(ct, .transaction(t)) }
        disarm(ct, .inviteTimeout)
        disarm(ct, .timerC)
        arm(ct, .cleanup, after: config.timers.transactionTimeout)
    }

    // MARK: - §16.7 response processing

    func branchResponded(_ ct: ClientTransactionRecord, _ msg: SIPMessage) {
        guard let ctx = ct.context, !ct.key.isCancel, let code = msg.statusCode else { return }
        if code < 200 {
            if !ct.gotProvisional {
                ct.gotProvisional = true
                disarm(ct, .inviteTimeout)
                if let node = ct.node { dispatcher.reportSuccess(node: node.name) }
            }
            if ct.isInvite { arm(ct, .timerC, after: config.timerC) }
            if ct.cancelPending { sendCancel(for: ct) }
            // §16.7 step 5: 100 is not forwarded; nothing goes up after a final response.
            guard code > 100, !ctx.finished, ctx.current === ct else { return }
            forwardUpstream(ctx, msg, code)
            return
        }
        disarm(ct, .inviteTimeout)
        disarm(ct, .timerC)
        ct.releaseRequest()
        if ctx.current === ct { ctx.current = nil }
        // A refused call no longer counts on the node (an answered one ends with its BYE).
        if code >= 300, ctx.countsLoad, let node = ct.node { dispatcher.callEnded(node: node.name) }
        if code < 300 {
            if let node = ct.node { dispatcher.reportSuccess(node: node.name) }
            // 2xx always goes upstream, even after another final (§16.7 step 9 for 2xx).
            ctx.finished = true
            forwardUpstream(ctx, msg, code)
            return
        }
        guard !ctx.finished else { return }
        if ctx.isDispatch, !ctx.cancelled, config.failover.retryOn.contains(code), let node = ct.node {
            logger.notice("node refused INVITE, failing over", metadata: ["call-id": "\(msg.callID)", "node": "\(node.name)", "status": "\(code)"])
            let retryAfter = code == 503 ? msg.retryAfterSeconds.map { Duration.seconds($0) } : nil
            nodeFailedCall(node, reason: "answered INVITE with \(code)", retryAfter: retryAfter)
            if tryNextCandidate(ctx) { return }
            finishLocally(ctx, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(config.retryAfterSeconds)"])
            return
        }
        ctx.finished = true
        forwardUpstream(ctx, msg, code)
    }

    /// A branch ended without a final response: Timer B/F, a transport error, the INVITE timeout.
    func branchFailed(_ ct: ClientTransactionRecord, reason: String, allowFailover: Bool) {
        guard let ctx = ct.context, !ct.key.isCancel, ctx.current === ct else { return }
        ctx.current = nil
        if ctx.countsLoad, let node = ct.node { dispatcher.callEnded(node: node.name) }
        guard !ctx.finished else { return }
        if ctx.cancelled {
            finishLocally(ctx, 487, "Request Terminated")
            return
        }
        if ctx.isDispatch, allowFailover, let node = ct.node {
            nodeFailedCall(node, reason: reason)
            if tryNextCandidate(ctx) { return }
            finishLocally(ctx, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(config.retryAfterSeconds)"])
            return
        }
        finishLocally(ctx, 408, "Request Timeout")
    }

    /// Sends a response the proxy generates as the final answer for `ctx`.
    func finishLocally(_ ctx: ResponseContext, _ status: Int, _ reason: String, extraHeaders: [String] = []) {
        ctx.finished = true
        metrics.localReplies.increment()
        let bytes = ResponseBuilder.response(
            to: ctx.request, status: status, reason: reason, toTag: localTag(ctx.request), extraHeaders: extraHeaders, server: config.serverHeader)
        sendResponse(ctx.server, bytes, statusCode: status)
    }

    /// §16.7 steps 3 and 9: remove our Via and send through the server transaction.
    func forwardUpstream(_ ctx: ResponseContext, _ msg: SIPMessage, _ code: Int) {
        guard msg.viaRanges.count >= 2 else {
            // §16.7 step 3: with no Via left the response is not forwarded. A broken node dropped
            // the caller's Via; the caller still gets the final status, from us.
            metrics.responsesDropped.increment()
            logger.warning("response from node lost the caller's Via", metadata: ["call-id": "\(msg.callID)", "status": "\(code)"])
            if code >= 300 {
                finishLocally(ctx, code, ResponseBuilder.defaultReason(code))
            }
            return
        }
        var editor = MessageEditor()
        editor.delete(msg.topViaRemovalRange)
        sendResponse(ctx.server, editor.apply(to: msg), statusCode: code)
    }

    func sendResponse(_ st: ServerTransactionRecord, _ bytes: ByteBuffer, statusCode: Int) {
        st.lastResponse = bytes
        if statusCode >= 300, let ctx = st.context, ctx.countsOnTrunk {
            ctx.countsOnTrunk = false
            trunkCallEnded(callID: ctx.request.callID)
        }
        let actions = st.responseSent(statusCode: statusCode)
        if actions.isEmpty, (200..<300).contains(statusCode) {
            // A 2xx after the transaction moved on still goes upstream (RFC 6026).
            transport.send(bytes, to: st.responseDestination, failureToken: nil)
            return
        }
        runServer(actions, st)
    }
}
