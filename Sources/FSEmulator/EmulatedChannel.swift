import NIOCore
import SIPCore

/// One channel on the emulated node: an inbound SIP call from the proxy, or an outbound leg
/// created by `originate`. Lives on the node's event loop.
final class EmulatedChannel {
    enum Direction: String { case inbound, outbound }
    enum CallState: String { case down = "DOWN", ringing = "RINGING", early = "EARLY", active = "ACTIVE", hangup = "HANGUP" }

    let uuid: String
    let direction: Direction
    let name: String
    let callerNumber: String
    let destination: String
    var variables: [(String, String)] = []
    let createdMicros: Int64
    var progressMicros: Int64?
    var answeredMicros: Int64?
    var hangupMicros: Int64?
    var callState: CallState = .down
    var timers: [Scheduled<Void>] = []
    /// Completes an `originate`: `+OK <uuid>` when answered, `-ERR <cause>` when it fails.
    var originateResult: EventLoopPromise<String>?
    /// The SIP side of an inbound call.
    var dialog: SIPDialog?

    init(uuid: String, direction: Direction, name: String, callerNumber: String, destination: String, createdMicros: Int64) {
        self.uuid = uuid
        self.direction = direction
        self.name = name
        self.callerNumber = callerNumber
        self.destination = destination
        self.createdMicros = createdMicros
    }

    func variable(_ name: String) -> String? { variables.last(where: { $0.0 == name })?.1 }

    func setVariable(_ name: String, _ value: String) {
        variables.removeAll { $0.0 == name }
        variables.append((name, value))
    }

    func cancelTimers() {
        for t in timers { t.cancel() }
        timers.removeAll()
    }
}

/// The UAS half of an inbound SIP dialog (RFC 3261 §12.1.1): what it takes to answer, to
/// retransmit the 2xx until the ACK, and to send our own BYE along the route set.
final class SIPDialog {
    let invite: SIPMessage
    let remote: SocketAddress
    let callID: String
    let localTag: String
    /// Record-Route values as received: the UAS route set, in order.
    let routeSet: [String]
    /// The caller's Contact URI: the Request-URI of our in-dialog requests.
    let remoteTarget: String
    /// From and To of the INVITE, as written.
    let remoteNameAddr: String
    let localNameAddr: String
    var lastResponse: ByteBuffer?
    var acked = false
    var retransmit: Scheduled<Void>?
    var retransmitInterval: TimeAmount = .milliseconds(500)
    var byeSent = false
    var byeBranch: String?

    init(invite: SIPMessage, remote: SocketAddress, localTag: String, routeSet: [String], remoteTarget: String, remoteNameAddr: String, localNameAddr: String) {
        self.invite = invite
        self.remote = remote
        self.callID = invite.callID
        self.localTag = localTag
        self.routeSet = routeSet
        self.remoteTarget = remoteTarget
        self.remoteNameAddr = remoteNameAddr
        self.localNameAddr = localNameAddr
    }
}
