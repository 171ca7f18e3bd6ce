import ESL
import Foundation
import Logging
import NIOCore

/// The emulated FreeSWITCH node: channels, ESL listeners, events, API commands and the SIP UAS.
/// Confined to one event loop (`loop`); every handler of the node runs on it.
final class FSNode {
    let config: FSNodeConfiguration
    let loop: any EventLoop
    let logger: Logger
    let coreUUID = UUID().uuidString.lowercased()
    let startedMicros = FSClock.nowMicros()
    var faults: FSFaults
    var channels: [String: EmulatedChannel] = [:]
    /// Inbound SIP channels by Call-ID.
    var channelsByCallID: [String: EmulatedChannel] = [:]
    /// Final responses to INVITEs that left no channel (503s, 487s), kept for 32 s so a
    /// retransmitted INVITE gets the same answer (RFC 3261 §17.2.1).
    var recentFinals: [String: ByteBuffer] = [:]
    /// BYEs we sent, by branch, until answered.
    var pendingByes: [String: (bytes: ByteBuffer, to: SocketAddress, timer: Scheduled<Void>?, sentAt: NIODeadline, interval: TimeAmount)] = [:]
    var listeners: [ObjectIdentifier: ESLListener] = [:]
    var eventSequence: Int64 = 0
    var sessionsSinceStartup = 0
    var sessionPeak = 0
    var sipChannel: (any Channel)?
    var heartbeatTask: Scheduled<Void>?
    /// Called for the `die` fault: the process exits.
    var onDie: @Sendable () -> Void = { exit(137) }

    init(config: FSNodeConfiguration, loop: any EventLoop, logger: Logger) {
        self.config = config
        self.loop = loop
        self.faults = config.faults
        var logger = logger
        logger[metadataKey: "fsnode"] = "\(config.name)"
        self.logger = logger
    }

    func startHeartbeat() {
        heartbeatTask = loop.assumeIsolated().scheduleTask(in: TimeAmount(config.heartbeatInterval)) { [self] in
            fireHeartbeat()
            startHeartbeat()
        }
    }

    func stop() {
        heartbeatTask?.cancel()
        for c in channels.values { c.cancelTimers() }
        for b in pendingByes.values { b.timer?.cancel() }
        pendingByes.removeAll()
    }

    // MARK: Events

    func nextSequence() -> Int64 {
        eventSequence += 1
        return eventSequence
    }

    /// Builds an event with the headers FreeSWITCH puts on every event.
    func baseEvent(_ name: String, callingFile: String, callingFunction: String, line: Int) -> ESLEvent {
        let now = FSClock.nowMicros()
        var h = ESLHeaders()
        h.add("Event-Name", name)
        h.add("Core-UUID", coreUUID)
        h.add("FreeSWITCH-Hostname", config.name)
        h.add("FreeSWITCH-Switchname", config.name)
        h.add("FreeSWITCH-IPv4", config.sipHost)
        h.add("FreeSWITCH-IPv6", "::1")
        h.add("Event-Date-Local", FSClock.localDate(now))
        h.add("Event-Date-GMT", FSClock.gmtDate(now))
        h.add("Event-Date-Timestamp", String(now))
        h.add("Event-Calling-File", callingFile)
        h.add("Event-Calling-Function", callingFunction)
        h.add("Event-Calling-Line-Number", String(line))
        h.add("Event-Sequence", String(nextSequence()))
        return ESLEvent(headers: h)
    }

    /// Sends `event` to every listener subscribed to it whose filters let it through.
    func deliver(_ event: ESLEvent) {
        guard !listeners.isEmpty, !faults.muteESL, !faults.hangESL else { return }
        var encoded: [ESLEventFormat: ByteBuffer] = [:]
        for listener in listeners.values where listener.wants(event) {
            let bytes: ByteBuffer
            if let cached = encoded[listener.format] {
                bytes = cached
            } else {
                bytes = ESLFrame.event(event, format: listener.format).encoded()
                encoded[listener.format] = bytes
            }
            listener.send(bytes)
        }
    }

    func fireHeartbeat() {
        var e = baseEvent("HEARTBEAT", callingFile: "switch_core.c", callingFunction: "send_heartbeat", line: 81)
        let upMillis = (FSClock.nowMicros() - startedMicros) / 1000
        e.headers.add("Event-Info", "System Ready")
        e.headers.add("Up-Time", FSClock.upTimeText(millis: upMillis))
        e.headers.add("FreeSWITCH-Version", "1.10.12-release+switchyard-emulator 64bit")
        e.headers.add("Uptime-msec", String(upMillis))
        e.headers.add("Session-Count", String(channels.count))
        e.headers.add("Max-Sessions", String(config.maxChannels))
        e.headers.add("Session-Per-Sec", "30")
        e.headers.add("Session-Per-Sec-Last", "0")
        e.headers.add("Session-Per-Sec-Max", "0")
        e.headers.add("Session-Per-Sec-FiveMin", "0")
        e.headers.add("Session-Since-Startup", String(sessionsSinceStartup))
        e.headers.add("Session-Peak-Max", String(sessionPeak))
        e.headers.add("Session-Peak-FiveMin", String(sessionPeak))
        e.headers.add("Idle-CPU", "98.500000")
        e.headers.add("Heartbeat-Interval", String(config.heartbeatInterval.components.seconds))
        deliver(e)
    }

    // MARK: Channels

    func addChannel(_ channel: EmulatedChannel) {
        channels[channel.uuid] = channel
        sessionsSinceStartup += 1
        sessionPeak = max(sessionPeak, channels.count)
    }

    var atCapacity: Bool { channels.count >= config.maxChannels }

    /// A CHANNEL_* event for `channel`, with the channel's state and variables.
    func channelEvent(_ name: String, _ channel: EmulatedChannel, function: String, extra: [(String, String)] = []) -> ESLEvent {
        var e = baseEvent(name, callingFile: "switch_channel.c", callingFunction: function, line: 3900)
        let state: (String, Int)
        switch channel.callState {
        case .hangup: state = name == "CHANNEL_HANGUP_COMPLETE" ? ("CS_REPORTING", 11) : ("CS_HANGUP", 10)
        case .active: state = ("CS_EXECUTE", 4)
        default: state = name == "CHANNEL_CREATE" ? ("CS_INIT", 2) : ("CS_ROUTING", 3)
        }
        let h: [(String, String)] = [
            ("Channel-State", state.0),
            ("Channel-Call-State", channel.callState.rawValue),
            ("Channel-State-Number", String(state.1)),
            ("Channel-Name", channel.name),
            ("Unique-ID", channel.uuid),
            ("Call-Direction", channel.direction.rawValue),
            ("Presence-Call-Direction", channel.direction.rawValue),
            ("Channel-HIT-Dialplan", channel.direction == .inbound ? "true" : "false"),
            ("Channel-Read-Codec-Name", "PCMU"),
            ("Channel-Read-Codec-Rate", "8000"),
            ("Channel-Write-Codec-Name", "PCMU"),
            ("Channel-Write-Codec-Rate", "8000"),
            (
                "Answer-State",
                channel.callState == .hangup ? "hangup" : channel.answeredMicros != nil ? "answered" : channel.progressMicros != nil ? "early" : "ringing"
            ),
            ("Caller-Direction", channel.direction.rawValue),
            ("Caller-Logical-Direction", channel.direction.rawValue),
            ("Caller-Username", channel.callerNumber),
            ("Caller-Dialplan", "XML"),
            ("Caller-Caller-ID-Name", channel.variable("origination_caller_id_name") ?? channel.callerNumber),
            ("Caller-Caller-ID-Number", channel.callerNumber),
            ("Caller-Orig-Caller-ID-Name", channel.callerNumber),
            ("Caller-Orig-Caller-ID-Number", channel.callerNumber),
            ("Caller-Network-Addr", config.sipHost),
            ("Caller-ANI", channel.callerNumber),
            ("Caller-Destination-Number", channel.destination),
            ("Caller-Unique-ID", channel.uuid),
            ("Caller-Source", channel.direction == .inbound ? "mod_sofia" : "src/switch_ivr_originate.c"),
            ("Caller-Context", "default"),
            ("Caller-Channel-Name", channel.name),
            ("Caller-Profile-Index", "1"),
            ("Caller-Profile-Created-Time", String(channel.createdMicros)),
            ("Caller-Channel-Created-Time", String(channel.createdMicros)),
            ("Caller-Channel-Answered-Time", String(channel.answeredMicros ?? 0)),
            ("Caller-Channel-Progress-Time", String(channel.progressMicros ?? 0)),
            ("Caller-Channel-Progress-Media-Time", "0"),
            ("Caller-Channel-Hangup-Time", String(channel.hangupMicros ?? 0)),
            ("Caller-Channel-Transfer-Time", "0"),
            ("Caller-Channel-Resurrect-Time", "0"),
            ("Caller-Channel-Bridged-Time", "0"),
            ("Caller-Channel-Last-Hold", "0"),
            ("Caller-Channel-Hold-Accum", "0"),
        ]
        for (k, v) in h { e.headers.add(k, v) }
        for (k, v) in extra { e.headers.add(k, v) }
        for (k, v) in channel.variables { e.headers.add("variable_\(k)", v) }
        return e
    }

    func markProgress(_ channel: EmulatedChannel) {
        guard channel.progressMicros == nil, channel.callState != .hangup else { return }
        channel.progressMicros = FSClock.nowMicros()
        channel.callState = .ringing
        deliver(channelEvent("CHANNEL_PROGRESS", channel, function: "switch_channel_perform_mark_ring_ready_value"))
    }

    func markAnswered(_ channel: EmulatedChannel) {
        guard channel.answeredMicros == nil, channel.callState != .hangup else { return }
        channel.answeredMicros = FSClock.nowMicros()
        channel.callState = .active
        channel.setVariable("endpoint_disposition", "ANSWER")
        deliver(channelEvent("CHANNEL_ANSWER", channel, function: "switch_channel_perform_mark_answered"))
        // `execute_on_answer=sched_hangup +<seconds> [cause]` (a time limit kept by the node itself).
        if let app = channel.variable("execute_on_answer") {
            let words = app.split(separator: " ").map(String.init)
            if words.first == "sched_hangup", words.count >= 2 { scheduleHangup(channel, words[1], cause: words.count > 2 ? words[2] : nil) }
        }
        if let p = channel.originateResult {
            channel.originateResult = nil
            p.succeed("+OK \(channel.uuid)\n")
        }
    }

    /// Ends a channel: CHANNEL_HANGUP, the final variables, CHANNEL_HANGUP_COMPLETE, and the
    /// originate's `-ERR <cause>` if it never answered. The SIP side (BYE, final response) is
    /// the caller's business.
    func hangup(_ channel: EmulatedChannel, cause: String, sipStatus: Int?, disposition: String) {
        guard channel.callState != .hangup else { return }
        channel.cancelTimers()
        let end = FSClock.nowMicros()
        channel.hangupMicros = end
        channel.callState = .hangup
        channel.setVariable("hangup_cause", cause)
        channel.setVariable("hangup_cause_q850", String(FSHangupCause.q850(cause)))
        channel.setVariable("sip_hangup_disposition", disposition)
        if let sipStatus { channel.setVariable("sip_term_status", String(sipStatus)) }
        deliver(channelEvent("CHANNEL_HANGUP", channel, function: "switch_channel_perform_hangup", extra: [("Hangup-Cause", cause)]))
        addFinalVariables(channel, end: end)
        deliver(channelEvent("CHANNEL_HANGUP_COMPLETE", channel, function: "switch_core_session_hangup_state", extra: [("Hangup-Cause", cause)]))
        channels.removeValue(forKey: channel.uuid)
        if let dialog = channel.dialog, channelsByCallID[dialog.callID] === channel { channelsByCallID.removeValue(forKey: dialog.callID) }
        if let p = channel.originateResult {
            channel.originateResult = nil
            p.succeed("-ERR \(cause)\n")
        }
    }

    /// The CDR variables of CHANNEL_HANGUP_COMPLETE (seconds, milliseconds, epochs, RTP stats).
    private func addFinalVariables(_ c: EmulatedChannel, end: Int64) {
        let start = c.createdMicros
        let answer = c.answeredMicros ?? 0
        let progress = c.progressMicros ?? 0
        let billMicros = answer > 0 ? end - answer : 0
        let vars: [(String, String)] = [
            ("start_epoch", String(start / 1_000_000)), ("start_uepoch", String(start)),
            ("profile_start_epoch", String(start / 1_000_000)), ("profile_start_uepoch", String(start)),
            ("answer_epoch", String(answer / 1_000_000)), ("answer_uepoch", String(answer)),
            ("progress_epoch", String(progress / 1_000_000)), ("progress_uepoch", String(progress)),
            ("end_epoch", String(end / 1_000_000)), ("end_uepoch", String(end)),
            ("duration", String((end - start) / 1_000_000)), ("mduration", String((end - start) / 1000)), ("uduration", String(end - start)),
            ("billsec", String(billMicros / 1_000_000)), ("billmsec", String(billMicros / 1000)), ("billusec", String(billMicros)),
            ("progresssec", String(progress > 0 ? (progress - start) / 1_000_000 : 0)),
            ("progressmsec", String(progress > 0 ? (progress - start) / 1000 : 0)),
            ("answersec", String(answer > 0 ? (answer - start) / 1_000_000 : 0)),
            ("answermsec", String(answer > 0 ? (answer - start) / 1000 : 0)),
            ("waitsec", String(answer > 0 ? (answer - start) / 1_000_000 : 0)),
            ("flow_billsec", String((end - start) / 1_000_000)),
            ("read_codec", "PCMU"), ("read_rate", "8000"), ("write_codec", "PCMU"), ("write_rate", "8000"),
        ]
        for (k, v) in vars { c.setVariable(k, v) }
        // RTP statistics of a clean 20 ms PCMU stream for the answered time.
        let packets = billMicros / 20_000
        let rtp: [(String, String)] = [
            ("rtp_audio_in_raw_bytes", String(packets * 172)), ("rtp_audio_in_media_bytes", String(packets * 160)),
            ("rtp_audio_in_packet_count", String(packets)), ("rtp_audio_in_media_packet_count", String(packets)),
            ("rtp_audio_in_skip_packet_count", String(packets > 0 ? packets / 500 : 0)),
            ("rtp_audio_in_jitter_packet_count", "0"), ("rtp_audio_in_dtmf_packet_count", "0"), ("rtp_audio_in_cng_packet_count", "0"),
            ("rtp_audio_in_flush_packet_count", "0"), ("rtp_audio_in_largest_jb_size", "0"),
            ("rtp_audio_in_jitter_min_variance", packets > 0 ? "0.35" : "0.00"),
            ("rtp_audio_in_jitter_max_variance", packets > 0 ? "4.20" : "0.00"),
            ("rtp_audio_in_jitter_loss_rate", "0.00"), ("rtp_audio_in_jitter_burst_rate", "0.00"),
            ("rtp_audio_in_mean_interval", packets > 0 ? "20.00" : "0.00"),
            ("rtp_audio_in_flaw_total", "0"), ("rtp_audio_in_quality_percentage", "100.00"), ("rtp_audio_in_mos", packets > 0 ? "4.50" : "0.00"),
            ("rtp_audio_out_raw_bytes", String(packets * 172)), ("rtp_audio_out_media_bytes", String(packets * 160)),
            ("rtp_audio_out_packet_count", String(packets)), ("rtp_audio_out_media_packet_count", String(packets)),
            ("rtp_audio_out_skip_packet_count", "0"), ("rtp_audio_out_dtmf_packet_count", "0"), ("rtp_audio_out_cng_packet_count", "0"),
        ]
        for (k, v) in rtp { c.setVariable(k, v) }
    }

    /// `sched_hangup`: `+N` seconds from now (or an absolute epoch second), then the channel is
    /// hung up with `cause` (default ALLOTTED_TIMEOUT). False when the time does not parse.
    @discardableResult
    func scheduleHangup(_ channel: EmulatedChannel, _ when: String, cause: String?) -> Bool {
        let delay: Duration
        if when.hasPrefix("+"), let s = Int(when.dropFirst()), s >= 0 {
            delay = .seconds(s)
        } else if let epoch = Int64(when) {
            delay = .microseconds(max(0, epoch * 1_000_000 - FSClock.nowMicros()))
        } else {
            return false
        }
        let cause = (cause ?? "ALLOTTED_TIMEOUT").uppercased()
        schedule(channel, after: delay) { [self] in
            guard channel.callState != .hangup else { return }
            kill(channel, cause: cause)
        }
        return true
    }

    func schedule(_ channel: EmulatedChannel, after delay: Duration, _ body: @escaping () -> Void) {
        let task = loop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) { body() }
        channel.timers.append(task)
    }
}

/// Q.850 numbers of the hangup causes the emulator uses (switch_types.h `switch_call_cause_t`).
enum FSHangupCause {
    static func q850(_ cause: String) -> Int {
        switch cause {
        case "UNALLOCATED_NUMBER": 1
        case "NO_ROUTE_DESTINATION": 3
        case "NORMAL_CLEARING": 16
        case "USER_BUSY": 17
        case "NO_USER_RESPONSE": 18
        case "NO_ANSWER": 19
        case "CALL_REJECTED": 21
        case "DESTINATION_OUT_OF_ORDER": 27
        case "NORMAL_TEMPORARY_FAILURE": 41
        case "SWITCH_CONGESTION": 42
        case "ORIGINATOR_CANCEL": 487
        case "RECOVERY_ON_TIMER_EXPIRE": 102
        case "MEDIA_TIMEOUT": 604
        default: 16
        }
    }
}

/// Wall-clock time in the forms FreeSWITCH prints.
enum FSClock {
    static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    private static let local: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f
    }()
    private static let gmt: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f
    }()
    private static let lock = NSLock()
    /// The last second formatted, in both forms (guarded by `lock`): every event carries both
    /// dates, and a DateFormatter call (ICU) cost more than the rest of an event's headers.
    nonisolated(unsafe) private static var cached: (second: Int64, local: String, gmt: String) = (.min, "", "")

    private static func dates(_ micros: Int64) -> (local: String, gmt: String) {
        let second = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        return lock.withLock {
            if cached.second != second {
                let date = Date(timeIntervalSince1970: Double(second))
                cached = (second, local.string(from: date), gmt.string(from: date))
            }
            return (cached.local, cached.gmt)
        }
    }

    static func localDate(_ micros: Int64) -> String { dates(micros).local }

    static func gmtDate(_ micros: Int64) -> String { dates(micros).gmt }

    static func upTimeText(millis: Int64) -> String {
        var s = millis / 1000
        let days = s / 86400
        s %= 86400
        return "0 years, \(days) days, \(s / 3600) hours, \(s % 3600 / 60) minutes, \(s % 60) seconds, \(millis % 1000) milliseconds, 0 microseconds"
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (s, a) = duration.components
        self = .nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
    }
}
