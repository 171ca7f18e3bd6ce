/// How one emulated FreeSWITCH node is set up (`switchyard fsnode` flags).
public struct FSNodeConfiguration: Sendable {
    /// FreeSWITCH-Hostname / FreeSWITCH-Switchname in events.
    public var name: String
    public var sipHost: String
    public var sipPort: Int
    public var eslHost: String
    public var eslPort: Int
    public var eslPassword: String
    /// Channels beyond this are refused: SIP INVITEs get 503, originates `-ERR`.
    public var maxChannels: Int
    /// HEARTBEAT period.
    public var heartbeatInterval: Duration
    /// Inbound SIP calls: delay from INVITE to 200 OK (180 Ringing is sent at once).
    public var answerDelay: Duration
    /// Inbound SIP calls: how long the node holds an answered call before sending BYE; nil
    /// waits for the caller's BYE. The `X-Hold-Ms` header of the INVITE overrides it.
    public var holdTime: Duration?
    /// Originated calls: ring time before the outcome (answer, busy ...); `fsnode_ring_ms` overrides.
    public var ringTime: Duration
    /// Originated calls that answer: talk time before the far end hangs up; `fsnode_talk_ms` overrides.
    public var talkTime: Duration
    /// Faults active from the start.
    public var faults: FSFaults

    public init(
        name: String = "fsnode", sipHost: String = "127.0.0.1", sipPort: Int = 5080, eslHost: String = "127.0.0.1", eslPort: Int = 8021,
        eslPassword: String = "ClueCon", maxChannels: Int = 1000, heartbeatInterval: Duration = .seconds(20),
        answerDelay: Duration = .zero, holdTime: Duration? = nil, ringTime: Duration = .milliseconds(200), talkTime: Duration = .seconds(3),
        faults: FSFaults = FSFaults()
    ) {
        self.name = name
        self.sipHost = sipHost
        self.sipPort = sipPort
        self.eslHost = eslHost
        self.eslPort = eslPort
        self.eslPassword = eslPassword
        self.maxChannels = maxChannels
        self.heartbeatInterval = heartbeatInterval
        self.answerDelay = answerDelay
        self.holdTime = holdTime
        self.ringTime = ringTime
        self.talkTime = talkTime
        self.faults = faults
    }
}

/// Faults for failover drills. Set by flag at start, or at run time with
/// `api fsnode fault <stall|slow <ms>|refuse|mute-esl|drop-esl|die|clear>` over ESL.
public struct FSFaults: Sendable, Hashable, CustomStringConvertible {
    /// SIP input is ignored: no answer to INVITE, OPTIONS or anything (a hung node).
    public var stall = false
    /// Every SIP response is delayed by this much (an overloaded node).
    public var slow: Duration?
    /// New INVITEs are refused with 503 (a node that is up but will not take calls).
    public var refuse = false
    /// ESL connections stay open but get no events, HEARTBEAT included (the "events stall"
    /// that ESL users report); command replies still flow.
    public var muteESL = false
    /// ESL connections stay open and commands are carried out, but nothing comes back: no
    /// reply, no event (a hung event socket: the caller cannot tell what happened). The
    /// emulator's own `fsnode` commands still answer.
    public var hangESL = false

    public init(stall: Bool = false, slow: Duration? = nil, refuse: Bool = false, muteESL: Bool = false) {
        self.stall = stall
        self.slow = slow
        self.refuse = refuse
        self.muteESL = muteESL
    }

    public var description: String {
        var parts: [String] = []
        if stall { parts.append("stall") }
        if let slow { parts.append("slow \(slow.milliseconds)ms") }
        if refuse { parts.append("refuse") }
        if muteESL { parts.append("mute-esl") }
        if hangESL { parts.append("hang-esl") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }
}
