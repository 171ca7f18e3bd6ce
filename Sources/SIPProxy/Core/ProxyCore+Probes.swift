import Dispatcher
import Logging
import NIOCore
import SIPCore

/// One OPTIONS probe in flight.
struct PendingProbe {
    let node: Node
    let sentAt: ContinuousClock.Instant
}

extension ProxyCore {
    static let probeBranchPrefix = "z9hG4bKsyp"

    /// Sends due probes and expires those past `probe.timeout` (each probe has its own
    /// deadline, independent of the interval). Called on every tick.
    func runProber(now: ContinuousClock.Instant) {
        guard config.probeEnabled else { return }
        for (branch, probe) in pendingProbes where now - probe.sentAt >= config.probe.timeout {
            pendingProbes[branch] = nil
            probeFailed(probe.node, reason: "no answer to OPTIONS within \(config.probe.timeout)", timedOut: true)
        }
        guard now >= nextProbeAt else { return }
        nextProbeAt = now + config.probe.interval
        for node in dispatcher.config.allNodes {
            guard let destination = nodeEndpoints[node.name] else { continue }
            probeCounter &+= 1
            let branch = Self.probeBranchPrefix + String(bootID, radix: 16) + "." + String(probeCounter, radix: 36)
            pendingProbes[branch] = PendingProbe(node: node, sentAt: now)
            metrics.probe(node.name, "sent")
            dispatcher.probeSent(node: node.name)
            transport.send(probeRequest(to: node, branch: branch), to: destination, failureToken: nil)
        }
    }

    /// OPTIONS to the node itself (RFC 3261 §11), Max-Forwards 70, one Via with our branch.
    func probeRequest(to node: Node, branch: String) -> ByteBuffer {
        let own = config.advertise.description
        let target = node.sip.description
        var out = ByteBufferAllocator().buffer(capacity: 320)
        out.writeString("OPTIONS sip:\(target) SIP/2.0\r\n")
        out.writeString("Via: SIP/2.0/UDP \(own);branch=\(branch)\r\n")
        out.writeString("Max-Forwards: 70\r\n")
        out.writeString("From: <sip:switchyard@\(own)>;tag=sy\(String(bootID, radix: 16))\r\n")
        out.writeString("To: <sip:\(target)>\r\n")
        out.writeString("Call-ID: \(branch)@\(config.advertise.host)\r\n")
        out.writeString("CSeq: \(probeCounter % 2_000_000_000 + 1) OPTIONS\r\n")
        if let name = config.serverHeader { out.writeString("User-Agent: \(name)\r\n") }
        out.writeString("Content-Length: 0\r\n\r\n")
        return out
    }

    /// A response to one of our probes: 2xx-4xx means the node is alive and answering SIP;
    /// 5xx/6xx (an overloaded or failing node) counts as a failed probe. Returns false when the
    /// response is not a probe's.
    func handleProbeResponse(_ msg: SIPMessage, branch: String, code: Int, from source: SIPEndpoint) -> Bool {
        guard branch.hasPrefix(Self.probeBranchPrefix) else { return false }
        guard code >= 200, let probe = pendingProbes[branch] else { return true }
        // A forged answer from elsewhere must not bring a dead node back.
        guard let node = nodeEndpoints[probe.node.name], source.hasSameHost(as: node) else {
            strayResponse(msg, from: source, reason: .wrongSource)
            return true
        }
        pendingProbes[branch] = nil
        if code < 500 {
            metrics.probe(probe.node.name, "ok")
            metrics.rtt(probe.node.name, now - probe.sentAt)
            if let state = dispatcher.probeSucceeded(node: probe.node.name, rtt: now - probe.sentAt, now: now) {
                nodeStateChanged(probe.node, state, reason: "answered OPTIONS")
            }
        } else {
            probeFailed(probe.node, reason: "answered OPTIONS with \(code)")
        }
        return true
    }

    func probeFailed(_ node: Node, reason: String, timedOut: Bool = false) {
        metrics.probe(node.name, "failed")
        if let state = dispatcher.probeFailed(node: node.name, reason: reason, timedOut: timedOut, now: now) {
            nodeStateChanged(node, state, reason: reason)
        }
        // Whenever a failed probe finds the node down, not only when this probe took it down: a
        // failed INVITE (no provisional in time, a transport error, a retry_on status) takes a
        // node down at once, and the probes after that change no state. In the failover drill a
        // call whose 100 Trying came just before the node died was lost that way.
        if dispatcher.health[node.name]?.state == .inactive { failOverRingingCalls(on: node) }
    }

    /// A node the probes find down may hold INVITEs it answered only provisionally (it
    /// died between its 100/180 and its 200): no final answer will come, and Timer C would keep
    /// the caller waiting for minutes. Each such call is cancelled there and offered to the next
    /// candidate, as an INVITE that got no provisional answer in time is. A 2xx that still
    /// arrives from the node is forwarded like any other (§16.7 step 10). A node down only
    /// because a call failed there, and answering its probes, keeps its ringing calls.
    func failOverRingingCalls(on node: Node) {
        let stranded = clientTransactions.values.filter { ct in
            ct.isInvite && !ct.key.isCancel && !ct.abandoned && ct.node?.name == node.name && ct.server.context.isRinging(ct.attempt)
        }
        for ct in stranded {
            logger.notice(
                "node went down while a call rang there; trying the next node",
                metadata: ["call-id": "\(ct.server.callID)", "node": "\(node.name)"])
            metrics.ringingFailedOver.increment()
            sendCancel(for: ct)
            abandon(ct)
            branchFailed(ct, reason: "down while ringing", allowFailover: true)
        }
    }

    /// A call on `node` failed: down at once, without waiting for the next probe.
    /// `retryAfter`: the node's own Retry-After on a 503, kept (capped at 5 minutes) as its hold-down.
    func nodeFailedCall(_ node: Node, reason: String, retryAfter: Duration? = nil) {
        let wasUp = dispatcher.health[node.name]?.state != .inactive
        dispatcher.reportFailure(node: node.name, now: now, reason: reason, retryAfter: retryAfter.map { min($0, .seconds(300)) })
        metrics.failedOver(node.name)
        if wasUp { nodeStateChanged(node, .inactive, reason: reason) }
    }

    func nodeStateChanged(_ node: Node, _ state: NodeHealth.State, reason: String) {
        metrics.nodeState(node.name, active: state == .active)
        logger.notice(
            "node state changed", metadata: ["node": "\(node.name)", "region": "\(node.region)", "state": "\(state.rawValue)", "reason": "\(reason)"])
    }
}

extension ProxyCore {
    /// The node answers probes, is not drained or held down, and has an address.
    func isActive(_ node: Node, now: ContinuousClock.Instant) -> Bool {
        dispatcher.isUsable(node.name, now: now) && nodeEndpoints[node.name] != nil
    }

    /// At least one node of any region can take a call (see `ProxyHandle.health`).
    func liveness(now: ContinuousClock.Instant) -> (healthy: Bool, reason: String) {
        let nodes = dispatcher.config.allNodes
        let active = nodes.count { isActive($0, now: now) }
        if active == 0 { return (false, nodes.isEmpty ? "no node configured" : "no node is active (0 of \(nodes.count))") }
        return (true, "\(active) of \(nodes.count) nodes active")
    }

    /// At least one node of the local region can take a call (see `ProxyHandle.readiness`).
    func regionReadiness(now: ContinuousClock.Instant) -> (ready: Bool, reason: String) {
        let d = dispatcher
        guard let name = d.localRegion ?? d.config.regions.first?.name, let region = d.config.region(named: name) else {
            return (false, "no local region")
        }
        let usable = region.nodes.filter { isActive($0, now: now) }
        let withRoom = usable.filter { d.channels($0.name) < $0.maxChannels }
        if draining { return (false, "draining for shutdown") }
        if withRoom.isEmpty {
            return (false, usable.isEmpty ? "no node of \(name) is active" : "every active node of \(name) is at max_channels")
        }
        return (true, "\(withRoom.count) of \(region.nodes.count) nodes of \(name) can take calls")
    }
}
