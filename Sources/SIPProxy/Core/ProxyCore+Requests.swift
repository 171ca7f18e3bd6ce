import Dispatcher
import Logging
import NIOCore
import SIPCore

extension ProxyCore {
    func handleRequest(_ msg: SIPMessage, from source: SIPEndpoint, trunk: Int?) {
        let method = msg.method
        if method == .ack {
            handleAck(msg, from: source)
            return
        }
        if method == .cancel {
            handleCancel(msg, from: source)
            return
        }
        // A retransmission of a request we are already handling (§17.2.3).
        let key = serverKey(msg, isInvite: method == .invite)
        if let st = serverTransactions[key] {
            metrics.retransmissionsAbsorbed.increment()
            runServer(st.machine.requestRetransmitted(), st)
            return
        }
        // Only carrier trunks and our own nodes may send requests through the proxy; known
        // scanners get no answer at all.
        if edgeRefuses(msg, from: source, trunk: trunk, inDialog: msg.toTag != nil) { return }
        // §16.3 request validation.
        guard let uri = msg.requestURI, uri.isSIP || uri.scheme.lowercased() == "tel" else {
            reply(msg, source, 416, "Unsupported URI Scheme")
            return
        }
        let ownRoutes = countOwnRoutes(msg)
        let inDialog = msg.toTag != nil
        if msg.maxForwards == 0 {
            // §16.3 step 3: OPTIONS to the proxy itself is answered; anything else is 483.
            if method == .options && (!inDialog || ownRoutes == msg.routes.count) {
                replyOptions(msg, source)
            } else {
                reply(msg, source, 483, "Too Many Hops")
            }
            return
        }
        if !msg.proxyRequire.isEmpty {
            reply(msg, source, 420, "Bad Extension", extraHeaders: ["Unsupported: " + msg.proxyRequire.joined(separator: ", ")])
            return
        }
        let loop = loopHash(msg, removedRoutes: inDialog ? ownRoutes : msg.routes.count)
        if isLoop(msg, loopHash: loop) {
            reply(msg, source, 482, "Loop Detected")
            return
        }
        // A full transaction table: answered statelessly, so a flood cannot grow memory.
        if serverTransactions.count >= config.maxTransactions, method != .options || inDialog {
            metrics.transactionTableFull.increment()
            if droppedLogBudget.allow(now: now) {
                logger.warning(
                    "transaction table full: request refused with 503",
                    metadata: ["transactions": "\(serverTransactions.count)", "limit": "\(config.maxTransactions)", "source": "\(source)"])
            }
            reply(msg, source, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(config.retryAfterSeconds)"])
            return
        }

        if inDialog {
            // §16.4 / §16.12: routed by the Route set; no per-dialog state in the proxy.
            guard let (target, hint) = nextHop(msg, ownRoutes: ownRoutes) else {
                if method == .options {
                    replyOptions(msg, source)
                } else {
                    reply(msg, source, 404, "Not Found")
                }
                return
            }
            guard let destination = endpoint(for: target, transportHint: hint) else {
                reply(msg, source, 503, "Cannot Resolve Next Hop")
                return
            }
            if method == .bye {
                byePassedNode(from: source, to: destination)
                if trunkGate.tracksCalls { trunkCallEnded(callID: msg.callID) }
            }
            let st = startServerTransaction(msg, source, key: key, context: RequestContext(inDialogRemovingRoutes: ownRoutes, loopHash: loop))
            forwardBranch(st, attempt: 0, to: destination, node: nil)
            return
        }

        switch method {
        case .options:
            replyOptions(msg, source)
        case .invite:
            dispatch(msg, from: source, key: key, uri: uri, loopHash: loop, recordRoute: true, trunk: trunk)
        case let m where config.dispatchMethods.contains(m):
            // REGISTER, MESSAGE, SUBSCRIBE, ...: to a node as a non-INVITE transaction. Only the
            // methods that can create a dialog (SUBSCRIBE, REFER, NOTIFY) are Record-Routed.
            let recordRoute = m != .register && m != .message && m != .publish && m != .info
            dispatch(msg, from: source, key: key, uri: uri, loopHash: loop, recordRoute: recordRoute)
        default:
            reply(msg, source, 405, "Method Not Allowed", extraHeaders: [config.allowHeader])
        }
    }

    /// A new out-of-dialog request to the best node, with failover down the candidate list.
    func dispatch(
        _ msg: SIPMessage, from source: SIPEndpoint, key: ServerTransactionKey, uri: SIPURI, loopHash loop: UInt32, recordRoute: Bool, trunk: Int? = nil
    ) {
        let candidates =
            draining
            ? []
            : dispatcher.candidates(
                // The Call-ID becomes a String only for the policy that hashes it.
                callID: dispatcher.config.policy == .hashCallID ? msg.callID : "", number: uri.user, now: now
            ).filter { nodeEndpoints[$0.name] != nil }
        guard !candidates.isEmpty else {
            if msg.method == .invite { metrics.invitesNoNode.increment() }
            reply(msg, source, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(config.retryAfterSeconds)"])
            return
        }
        // Per-trunk calls per second and concurrent calls (a 503 is sent when over).
        if msg.method == .invite, trunkRefuses(msg, from: source, trunk: trunk) { return }
        var context = RequestContext(
            dispatch: candidates, isInvite: msg.method == .invite, removedRouteCount: msg.routes.count, recordRoute: recordRoute, loopHash: loop,
            maxAttempts: config.failover.maxAttempts)
        context.countsOnTrunk = msg.method == .invite && trunk.map { trunkGate.trunks[$0].trunk.maxConcurrent != nil } == true
        let st = startServerTransaction(msg, source, key: key, context: context)
        run(st.context.event(.start), st, branch: nil)
    }

    // MARK: ACK

    /// ACK for a non-2xx final is hop by hop: the INVITE server transaction absorbs it (§17.2.1).
    /// ACK for 2xx is its own end-to-end request: forwarded statelessly along the Route set (§16.11).
    func handleAck(_ msg: SIPMessage, from source: SIPEndpoint) {
        if let st = serverTransactions[serverKey(msg, isInvite: true)], st.machine.isInvite {
            runServer(st.machine.ackReceived(), st)
            return
        }
        guard msg.maxForwards != 0 else { return }
        let ownRoutes = countOwnRoutes(msg)
        guard let (target, hint) = nextHop(msg, ownRoutes: ownRoutes), let destination = endpoint(for: target, transportHint: hint) else {
            if droppedLogBudget.allow(now: now) {
                logger.debug("ACK with nowhere to go dropped", metadata: ["call-id": "\(msg.callID)"])
            }
            return
        }
        // Stateless branch: derived from the incoming branch so retransmitted ACKs match (§16.11).
        let loop = loopHash(msg, removedRoutes: ownRoutes)
        let branch = Self.ackBranch(loopHash: loop, from: msg.topVia.branch.map { fnv1a($0) } ?? msg.hash(msg.callIDRange))
        let plan = RequestForwarder.Plan(
            branch: branch, outbound: destination.transport, inbound: source.transport, removeRoutes: ownRoutes, recordRoute: false)
        let bytes = RequestForwarder.forward(
            msg, source: source, plan: plan, viaLine: RequestForwarder.viaLine(plan, config.advertised), advertised: config.advertised)
        transport.send(bytes, to: destination, failureToken: nil)
    }

    /// `z9hG4bKsy` + 8 hex (loop hash) + `a` + 8 hex (the incoming branch's hash), built in place.
    static func ackBranch(loopHash: UInt32, from incoming: UInt32) -> String {
        String(unsafeUninitializedCapacity: 26) { buf in
            let prefix: StaticString = "z9hG4bKsy"
            UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(start: prefix.utf8Start, count: 9))
            writeHex(loopHash, into: buf.baseAddress! + 9)
            buf[17] = UInt8(ascii: "a")
            writeHex(incoming, into: buf.baseAddress! + 18)
            return 26
        }
    }

    // MARK: CANCEL

    /// §16.10: answer the CANCEL hop by hop, then cancel the pending branch.
    func handleCancel(_ msg: SIPMessage, from source: SIPEndpoint) {
        metrics.cancels.increment()
        guard let st = serverTransactions[serverKey(msg, isInvite: true)], st.machine.isInvite else {
            reply(msg, source, 481, "Call/Transaction Does Not Exist")
            return
        }
        reply(msg, source, 200, "OK")
        logger.debug("caller cancelled", metadata: ["call-id": "\(msg.callID)"])
        // A branch that rang is CANCELled now, one that did not once it rings (§9.1); with no
        // branch left the proxy answers 487 itself.
        run(st.context.event(.cancel), st, branch: nil)
    }

    // MARK: Forwarding

    func startServerTransaction(_ msg: SIPMessage, _ source: SIPEndpoint, key: ServerTransactionKey, context: RequestContext) -> ServerTransactionRecord {
        let st = ServerTransactionRecord(
            key: key, request: msg, responseDestination: responseDestination(msg, source), context: context, timers: config.timers)
        serverTransactions[key] = st
        if st.machine.isInvite {
            // §16.2 / §17.2.1: 100 Trying at once, so the caller stops retransmitting.
            let trying = ResponseBuilder.response(to: msg, status: 100, reason: "Trying", server: config.serverHeader)
            sendResponse(st, trying, statusCode: 100)
        }
        updateGauges()
        return st
    }

    /// Creates the client transaction of `attempt` for `st` towards `destination` and starts it.
    func forwardBranch(_ st: ServerTransactionRecord, attempt: Int, to destination: SIPEndpoint, node: Node?) {
        // Branches start only before the final response, while the request is kept.
        guard let msg = st.request else { return requestReleased(st, needed: "forward a branch") }
        let source = st.responseDestination
        let plan = RequestForwarder.Plan(
            branch: makeBranch(loopHash: st.context.loopHash), outbound: destination.transport, inbound: source.transport,
            removeRoutes: st.context.removedRouteCount, recordRoute: st.context.recordRoute
        )
        let via = RequestForwarder.viaLine(plan, config.advertised)
        let bytes = RequestForwarder.forward(msg, source: source, plan: plan, viaLine: via, advertised: config.advertised)
        // Its responses come back with this Via on top: known, not parsed again.
        if let parsed = config.advertised.via(plan.outbound, branch: plan.branch) {
            valueCache.remember(viaPrefix: config.advertised.viaValuePrefix(plan.outbound), branch: plan.branch, as: parsed)
        }
        let key = ClientTransactionKey(branch: plan.branch, isCancel: false)
        let ct = ClientTransactionRecord(
            key: key, isInvite: msg.method == .invite, request: bytes, destination: destination, node: node, server: st, attempt: attempt,
            viaLine: via, timers: config.timers
        )
        st.context.branchStarted(attempt: attempt, key: key)
        clientTransactions[key] = ct
        if st.context.isDispatch {
            // A non-INVITE request has no 100 Trying to wait for (RFC 4320): the node gets the
            // whole `invite_timeout` to answer before the request goes to the next one.
            let timeout =
                ct.isInvite ? node.map { dispatcher.provisionalTimeout(for: $0.name) } ?? config.failover.inviteTimeout : config.failover.inviteTimeout
            arm(ct, .inviteTimeout, after: timeout)
        }
        logger.debug("forwarding", metadata: ["call-id": "\(msg.callID)", "method": "\(msg.method)", "node": "\(node?.name ?? "-")", "to": "\(destination)"])
        runClient(ct.machine.start(), ct, response: nil)
        updateGauges()
    }

    /// CANCEL for a pending INVITE branch, built per §9.1: same Request-URI, Call-ID, From, To,
    /// CSeq number and Route as the INVITE, and its top Via.
    func sendCancel(for ct: ClientTransactionRecord) {
        guard !ct.cancelSent, let bytes = buildBranchRequest(ct, method: "CANCEL", toLine: nil) else { return }
        ct.cancelSent = true
        let key = ClientTransactionKey(branch: ct.key.branch, isCancel: true)
        let cancel = ClientTransactionRecord(
            key: key, isInvite: false, request: bytes, destination: ct.destination, node: ct.node, server: ct.server, attempt: ct.attempt,
            viaLine: ct.viaLine, timers: config.timers
        )
        clientTransactions[key] = cancel
        runClient(cancel.machine.start(), cancel, response: nil)
    }

    /// ACK or CANCEL for a branch, from the original request's lines (§17.1.1.3, §9.1). `toLine`
    /// is the response's To header (with the node's tag) for an ACK. nil only if the request
    /// was released, which `ServerTransactionRecord.releaseWhatIsDone` rules out for any branch
    /// that can still need one.
    func buildBranchRequest(_ ct: ClientTransactionRecord, method: String, toLine: String?) -> ByteBuffer? {
        guard let msg = ct.server.request, !ct.viaLine.isEmpty else {
            requestReleased(ct.server, needed: "build a \(method)")
            return nil
        }
        var out = ByteBufferAllocator().buffer(capacity: 512)
        out.writeString("\(method) \(msg.requestURIText) SIP/2.0\r\n")
        out.writeString(ct.viaLine)
        out.writeString("Max-Forwards: 70\r\n")
        out.writeString(msg.headerLine(.from))
        out.writeString(toLine ?? msg.headerLine(.to))
        out.writeString(msg.headerLine(.callID))
        out.writeString("CSeq: \(msg.cseq.number) \(method)\r\n")
        for r in msg.routes.dropFirst(ct.server.context.removedRouteCount) {
            out.writeString("Route: \(msg.text(r.range))\r\n")
        }
        out.writeString("Content-Length: 0\r\n\r\n")
        return out
    }

    // MARK: Routing helpers

    /// How many leading Route elements name this proxy (§16.4; two after a double Record-Route).
    func countOwnRoutes(_ msg: SIPMessage) -> Int {
        var n = 0
        while n < msg.routes.count, config.advertised.isOwn(msg.routes[n].uri) { n += 1 }
        return n
    }

    /// The next hop of an in-dialog request after our own Route elements: the next Route, or
    /// the Request-URI. nil when that is the proxy itself. The transport hint comes from the
    /// last Route we removed (the Record-Route we wrote facing that side).
    func nextHop(_ msg: SIPMessage, ownRoutes: Int) -> (SIPURI, String?)? {
        let hint = ownRoutes > 0 ? msg.routes[ownRoutes - 1].uri.transport : nil
        if ownRoutes < msg.routes.count {
            return (msg.routes[ownRoutes].uri, nil)
        }
        guard let uri = msg.requestURI, uri.isSIP, !config.advertised.isOwn(uri) else { return nil }
        return (uri, hint)
    }

    func replyOptions(_ msg: SIPMessage, _ source: SIPEndpoint) {
        reply(msg, source, 200, "OK", extraHeaders: [config.allowHeader, "Accept: application/sdp"])
    }

    /// A BYE to or from a node ends one of its calls in the proxy's own load count.
    func byePassedNode(from source: SIPEndpoint, to destination: SIPEndpoint) {
        if let node = nodeByAddress[destination.address] ?? nodeByAddress[source.address] {
            dispatcher.callEnded(node: node)
        }
    }

    func isNodeAddress(_ source: SIPEndpoint) -> Bool {
        nodeByAddress[source.address] != nil
    }

    /// A node's IP address (any port): exempt from the per-source TCP connection limit.
    func isNodeIP(_ ip: String) -> Bool {
        nodeIPs.contains(ip)
    }

    /// §16.6 step 8 / §16.3 step 4: a hash of what identifies this request at this hop.
    func loopHash(_ msg: SIPMessage, removedRoutes: Int) -> UInt32 {
        // Over the message's bytes where they are (the same value as over Strings of them).
        var h = msg.requestURIRange.map { msg.hash($0) } ?? fnv1a("")
        h = fnv1a(msg.fromTag ?? "", seed: h)
        h = fnv1a(msg.toTag ?? "", seed: h)
        h = msg.hash(msg.callIDRange, seed: h)
        h = fnv1a(decimal: msg.cseq.number, seed: h)
        for r in msg.routes.dropFirst(removedRoutes) { h = msg.hash(r.range, seed: h) }
        for tag in msg.proxyRequire { h = fnv1a(tag, seed: h) }
        return h
    }

    /// §16.3 step 4: the request already passed through us with the same loop hash.
    func isLoop(_ msg: SIPMessage, loopHash: UInt32) -> Bool {
        // Only Vias carrying our branch marker can be ours: skip parsing the others.
        guard msg.viaRanges.count > 1 || config.advertised.isOwn(msg.topVia) else { return false }
        let mark = hex(loopHash)
        for via in msg.vias where config.advertised.isOwn(via) {
            guard let branch = via.branch, branch.hasPrefix("z9hG4bKsy"), branch.utf8.count >= 17 else { continue }
            let start = branch.index(branch.startIndex, offsetBy: 9)
            if branch[start..<branch.index(start, offsetBy: 8)] == mark { return true }
        }
        return false
    }
}

extension SIPMessage {
    /// The first header field of `kind` as a line with CRLF ("" when absent).
    func headerLine(_ kind: HeaderKind) -> String {
        guard let range = headerFieldRange(kind) else { return "" }
        var text = self.text(range)
        while text.hasSuffix("\r\n") || text.hasSuffix("\n") { text.removeLast() }
        return text + "\r\n"
    }
}
