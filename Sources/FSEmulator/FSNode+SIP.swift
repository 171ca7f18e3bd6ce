import Foundation
import NIOCore
import SIPCore

extension FSNode {
    static let sdpTemplate = """
        v=0\r
        o=FreeSWITCH 1764000000 1764000001 IN IP4 %HOST%\r
        s=FreeSWITCH\r
        c=IN IP4 %HOST%\r
        t=0 0\r
        m=audio 16384 RTP/AVP 0 101\r
        a=rtpmap:0 PCMU/8000\r
        a=rtpmap:101 telephone-event/8000\r
        a=fmtp:101 0-16\r
        a=ptime:20\r
        a=sendrecv\r

        """

    var sdp: String { Self.sdpTemplate.replacingOccurrences(of: "%HOST%", with: config.sipHost) }
    var serverName: String { "FreeSWITCH-mod_sofia/1.10.12-release+switchyard-emulator" }
    var contact: String { "Contact: <sip:\(config.name)@\(config.sipHost):\(config.sipPort);transport=udp>" }

    // MARK: Input

    func sipReceived(_ bytes: ByteBuffer, from remote: SocketAddress) {
        guard !faults.stall else { return }
        switch SIPMessageParser.parse(bytes) {
        case .rejected(let error, let response):
            logger.debug("bad SIP input", metadata: ["error": "\(error)"])
            if let response { sendSIP(response, to: remote) }
        case .message(let msg):
            if msg.isRequest { request(msg, from: remote) } else { response(msg) }
        }
    }

    private func request(_ msg: SIPMessage, from remote: SocketAddress) {
        switch msg.method {
        case .invite where msg.toTag == nil:
            invite(msg, from: remote)
        case .ack:
            guard let channel = channelsByCallID[msg.callID], let dialog = channel.dialog else { return }
            dialog.acked = true
            dialog.retransmit?.cancel()
        case .bye:
            guard let channel = channelsByCallID[msg.callID], channel.dialog != nil else {
                reply(msg, 481, "Call/Transaction Does Not Exist", to: remote)
                return
            }
            reply(msg, 200, "OK", to: remote)
            hangup(channel, cause: "NORMAL_CLEARING", sipStatus: 200, disposition: "recv_bye")
        case .cancel:
            guard let channel = channelsByCallID[msg.callID], let dialog = channel.dialog else {
                reply(msg, 481, "Call/Transaction Does Not Exist", to: remote)
                return
            }
            reply(msg, 200, "OK", to: remote)
            // RFC 3261 §9.2: a CANCEL after the final response changes nothing.
            guard channel.answeredMicros == nil else { return }
            respondFinal(dialog, status: 487, reason: "Request Terminated")
            hangup(channel, cause: "ORIGINATOR_CANCEL", sipStatus: 487, disposition: "recv_cancel")
        case .options:
            reply(msg, 200, "OK", to: remote, extra: ["Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE", "Accept: application/sdp"])
        case .invite:
            // re-INVITE: same session, same answer.
            guard let channel = channelsByCallID[msg.callID], let dialog = channel.dialog else {
                reply(msg, 481, "Call/Transaction Does Not Exist", to: remote)
                return
            }
            reply(msg, 200, "OK", to: remote, extra: recordRoutes(dialog) + [contact], body: ("application/sdp", sdp))
        default:
            if channelsByCallID[msg.callID] != nil {
                reply(msg, 200, "OK", to: remote)
            } else {
                reply(msg, 405, "Method Not Allowed", to: remote, extra: ["Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"])
            }
        }
    }

    private func invite(_ msg: SIPMessage, from remote: SocketAddress) {
        // A retransmission gets the last response again.
        if let channel = channelsByCallID[msg.callID], let dialog = channel.dialog {
            if let last = dialog.lastResponse { sendSIP(last, to: remote) }
            return
        }
        if let final = recentFinals[msg.callID] {
            sendSIP(final, to: remote)
            return
        }
        if faults.refuse || atCapacity {
            let bytes = ResponseBuilder.response(
                to: msg, status: 503, reason: atCapacity ? "Maximum Calls In Progress" : "Service Unavailable",
                toTag: newTag(), server: serverName)
            remember(final: bytes, callID: msg.callID)
            sendSIP(bytes, to: remote)
            return
        }
        let headers = SIPText.headers(of: msg)
        let from = SIPText.values("from", in: headers).first ?? ""
        let to = SIPText.values("to", in: headers).first ?? ""
        let routeSet = SIPText.values("record-route", in: headers).flatMap(SIPText.splitList)
        let contactURI = SIPText.values("contact", in: headers).first.map(SIPText.uri) ?? SIPText.uri(of: from)
        let dialog = SIPDialog(
            invite: msg, remote: remote, localTag: newTag(), routeSet: routeSet, remoteTarget: contactURI, remoteNameAddr: from,
            localNameAddr: to)
        let caller = SIPText.user(of: SIPText.uri(of: from)) ?? "anonymous"
        let destination = msg.requestURI?.user ?? SIPText.user(of: SIPText.uri(of: to)) ?? ""
        let channel = EmulatedChannel(
            uuid: newUUID(), direction: .inbound, name: "sofia/internal/\(caller)@\(config.sipHost)", callerNumber: caller,
            destination: destination, createdMicros: FSClock.nowMicros())
        channel.dialog = dialog
        channel.setVariable("direction", "inbound")
        channel.setVariable("uuid", channel.uuid)
        channel.setVariable("call_uuid", channel.uuid)
        channel.setVariable("sip_call_id", msg.callID)
        channel.setVariable("sip_from_user", caller)
        channel.setVariable("sip_to_user", destination)
        channel.setVariable("sip_req_user", destination)
        channel.setVariable("sip_received_ip", remote.ipAddress ?? "")
        channel.setVariable("sip_received_port", String(remote.port ?? 0))
        for (name, value) in headers where name.hasPrefix("x-") {
            // Custom headers become sip_h_X-Name, as mod_sofia does.
            let original = "X-" + name.dropFirst(2).split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: "-")
            channel.setVariable("sip_h_\(original)", value)
        }
        addChannel(channel)
        channelsByCallID[msg.callID] = channel
        deliver(channelEvent("CHANNEL_CREATE", channel, function: "switch_core_session_request_uuid"))

        reply(msg, 100, "Trying", to: remote, tag: nil)
        let ringing = ResponseBuilder.response(
            to: msg, status: 180, reason: "Ringing", toTag: dialog.localTag, extraHeaders: recordRoutes(dialog) + [contact], server: serverName)
        dialog.lastResponse = ringing
        sendSIP(ringing, to: remote)
        markProgress(channel)

        let answerAfter = headerMillis("x-answer-ms", headers) ?? config.answerDelay
        let hold = headerMillis("x-hold-ms", headers) ?? config.holdTime
        schedule(channel, after: answerAfter) { [self] in
            answer(channel, dialog)
            // Without a hold time the caller hangs up; an hour is the emulator's safety net.
            schedule(channel, after: hold ?? .seconds(3600)) { [self] in
                sendBye(dialog)
                hangup(channel, cause: "NORMAL_CLEARING", sipStatus: 200, disposition: "send_bye")
            }
        }
    }

    private func answer(_ channel: EmulatedChannel, _ dialog: SIPDialog) {
        let ok = ResponseBuilder.response(
            to: dialog.invite, status: 200, reason: "OK", toTag: dialog.localTag, extraHeaders: recordRoutes(dialog) + [contact],
            body: ("application/sdp", sdp), server: serverName)
        dialog.lastResponse = ok
        sendSIP(ok, to: dialog.remote)
        markAnswered(channel)
        scheduleRetransmit(channel, dialog)
    }

    /// RFC 3261 §13.3.1.4: the 2xx is retransmitted (T1 doubling to T2) until the ACK; after
    /// 64·T1 without one the call is ended with a BYE.
    private func scheduleRetransmit(_ channel: EmulatedChannel, _ dialog: SIPDialog) {
        let started = NIODeadline.now()
        func arm() {
            dialog.retransmit = loop.assumeIsolated().scheduleTask(in: dialog.retransmitInterval) { [self] in
                guard !dialog.acked, channel.callState != .hangup, let last = dialog.lastResponse else { return }
                if NIODeadline.now() - started >= .seconds(32) {
                    sendBye(dialog)
                    hangup(channel, cause: "RECOVERY_ON_TIMER_EXPIRE", sipStatus: 408, disposition: "send_bye")
                    return
                }
                sendSIP(last, to: dialog.remote)
                dialog.retransmitInterval = min(dialog.retransmitInterval * 2, .seconds(4))
                arm()
            }
        }
        arm()
    }

    /// A final non-2xx answer to the INVITE of an unanswered inbound call.
    func respondFinal(_ dialog: SIPDialog, status: Int, reason: String) {
        let bytes = ResponseBuilder.response(to: dialog.invite, status: status, reason: reason, toTag: dialog.localTag, server: serverName)
        dialog.lastResponse = bytes
        remember(final: bytes, callID: dialog.callID)
        sendSIP(bytes, to: dialog.remote)
    }

    /// Our BYE (RFC 3261 §15.1.1): Request-URI = the caller's Contact, Route = the route set,
    /// sent to the first route (loose routing) and retransmitted until answered.
    func sendBye(_ dialog: SIPDialog) {
        guard !dialog.byeSent else { return }
        dialog.byeSent = true
        dialog.retransmit?.cancel()
        let branch = "z9hG4bKfs" + newTag() + newTag()
        dialog.byeBranch = branch
        var text = "BYE \(dialog.remoteTarget) SIP/2.0\r\n"
        text += "Via: SIP/2.0/UDP \(config.sipHost):\(config.sipPort);branch=\(branch);rport\r\n"
        text += "Max-Forwards: 70\r\n"
        if !dialog.routeSet.isEmpty { text += "Route: \(dialog.routeSet.joined(separator: ", "))\r\n" }
        text += "From: \(dialog.localNameAddr);tag=\(dialog.localTag)\r\n"
        text += "To: \(dialog.remoteNameAddr)\r\n"
        text += "Call-ID: \(dialog.callID)\r\n"
        text += "CSeq: 1 BYE\r\n"
        text += "User-Agent: \(serverName)\r\n"
        text += "Content-Length: 0\r\n\r\n"
        let next = dialog.routeSet.first.map(SIPText.uri) ?? dialog.remoteTarget
        guard let (host, port) = SIPText.hostPort(of: next), let address = try? SocketAddress(ipAddress: host, port: port) else {
            logger.warning("cannot send BYE: no usable address", metadata: ["call-id": "\(dialog.callID)", "target": "\(next)"])
            return
        }
        var bytes = ByteBufferAllocator().buffer(capacity: text.utf8.count)
        bytes.writeString(text)
        pendingByes[branch] = (bytes, address, nil, .now(), .milliseconds(500))
        sendSIP(bytes, to: address)
        armByeRetransmit(branch)
    }

    private func armByeRetransmit(_ branch: String) {
        guard let entry = pendingByes[branch] else { return }
        let timer = loop.assumeIsolated().scheduleTask(in: entry.interval) { [self] in
            guard var e = pendingByes[branch] else { return }
            // Timer F: 64·T1.
            if NIODeadline.now() - e.sentAt >= .seconds(32) {
                pendingByes.removeValue(forKey: branch)
                return
            }
            sendSIP(e.bytes, to: e.to)
            e.interval = min(e.interval * 2, .seconds(4))
            pendingByes[branch] = e
            armByeRetransmit(branch)
        }
        pendingByes[branch]?.timer = timer
    }

    private func response(_ msg: SIPMessage) {
        guard msg.cseq.method == .bye, let branch = msg.topVia.branch, let status = msg.statusCode, status >= 200 else { return }
        pendingByes.removeValue(forKey: branch)?.timer?.cancel()
    }

    // MARK: Output

    private func recordRoutes(_ dialog: SIPDialog) -> [String] {
        dialog.routeSet.isEmpty ? [] : ["Record-Route: " + dialog.routeSet.joined(separator: ", ")]
    }

    private func reply(
        _ msg: SIPMessage, _ status: Int, _ reason: String, to remote: SocketAddress, tag: String? = "", extra: [String] = [],
        body: (contentType: String, text: String)? = nil
    ) {
        let toTag = tag == "" ? (channelsByCallID[msg.callID]?.dialog?.localTag ?? newTag()) : tag
        sendSIP(
            ResponseBuilder.response(to: msg, status: status, reason: reason, toTag: toTag, extraHeaders: extra, body: body, server: serverName), to: remote)
    }

    private func remember(final bytes: ByteBuffer, callID: String) {
        recentFinals[callID] = bytes
        loop.assumeIsolated().scheduleTask(in: .seconds(32)) { [self] in recentFinals.removeValue(forKey: callID) }
    }

    func sendSIP(_ bytes: ByteBuffer, to remote: SocketAddress) {
        guard let sipChannel else { return }
        let envelope = AddressedEnvelope(remoteAddress: remote, data: bytes)
        if let slow = faults.slow {
            loop.assumeIsolated().scheduleTask(in: TimeAmount(slow)) { sipChannel.writeAndFlush(envelope, promise: nil) }
        } else {
            sipChannel.writeAndFlush(envelope, promise: nil)
        }
    }

    func newTag() -> String {
        String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    private func headerMillis(_ name: String, _ headers: [(name: String, value: String)]) -> Duration? {
        SIPText.values(name, in: headers).first.flatMap { Int($0) }.map { .milliseconds($0) }
    }
}
