/// Observed health of one node, from probes and from INVITEs: one explicit state machine.
///
/// `active` → `inactive` after `downAfter` failed probes in a row, or at once when an INVITE
/// fails; `inactive` → `probing` on a good probe, → `active` after `upAfter` good probes in a row
/// (a failure in `probing` goes back to `inactive`). Time and reason of the last change are kept
/// for the admin view. Pure: time is passed in.
public struct NodeHealth: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        case active, probing, inactive
    }

    public private(set) var state: State = .active
    public private(set) var consecutiveFailures = 0
    public private(set) var consecutiveSuccesses = 0
    public private(set) var lastChange: ContinuousClock.Instant?
    public private(set) var lastReason = "initial"
    /// Probe round trip: the last sample, an EWMA (α = 1/8, like TCP's SRTT) and the mean
    /// deviation as jitter (β = 1/4, like TCP's RTTVAR, RFC 6298).
    public private(set) var lastRTT: Duration?
    public private(set) var smoothedRTT: Duration?
    public private(set) var rttJitter: Duration?
    public private(set) var downAfter: Int
    public private(set) var upAfter: Int

    public init(downAfter: Int, upAfter: Int) {
        self.downAfter = max(1, downAfter)
        self.upAfter = max(1, upAfter)
    }

    /// New thresholds from a reloaded configuration; the state and counters stay.
    public mutating func setThresholds(downAfter: Int, upAfter: Int) {
        self.downAfter = max(1, downAfter)
        self.upAfter = max(1, upAfter)
    }

    /// Whether new calls may go to the node.
    public var acceptsCalls: Bool { state == .active }

    /// A probe was answered. Returns true when the state changed.
    @discardableResult
    public mutating func probeSucceeded(rtt: Duration, now: ContinuousClock.Instant) -> Bool {
        lastRTT = rtt
        if let srtt = smoothedRTT {
            let deviation = srtt > rtt ? srtt - rtt : rtt - srtt
            rttJitter = (rttJitter ?? deviation) + (deviation - (rttJitter ?? deviation)) / 4
        } else {
            rttJitter = rtt / 2
        }
        smoothedRTT = smoothedRTT.map { $0 + (rtt - $0) / 8 } ?? rtt
        consecutiveFailures = 0
        consecutiveSuccesses += 1
        switch state {
        case .active:
            return false
        case .inactive, .probing:
            if consecutiveSuccesses >= upAfter { return change(to: .active, "answered \(consecutiveSuccesses) probes", now) }
            return state == .inactive ? change(to: .probing, "answered a probe", now) : false
        }
    }

    /// A probe timed out or failed at the transport, or was answered with an error.
    @discardableResult
    public mutating func probeFailed(reason: String, now: ContinuousClock.Instant) -> Bool {
        consecutiveSuccesses = 0
        consecutiveFailures += 1
        switch state {
        case .active:
            return consecutiveFailures >= downAfter ? change(to: .inactive, reason, now) : false
        case .probing:
            return change(to: .inactive, reason, now)
        case .inactive:
            return false
        }
    }

    /// An INVITE got no answer in time, a retry_on status or a transport error: down at once.
    @discardableResult
    public mutating func callFailed(reason: String, now: ContinuousClock.Instant) -> Bool {
        consecutiveSuccesses = 0
        return state == .inactive ? false : change(to: .inactive, reason, now)
    }

    private mutating func change(to new: State, _ reason: String, _ now: ContinuousClock.Instant) -> Bool {
        guard new != state else { return false }
        state = new
        lastReason = reason
        lastChange = now
        return true
    }
}
