/// What the far end of an originated call does: the emulator's outcome model. Chosen by the last
/// four digits of the destination number, or by the channel variable `fsnode_outcome`
/// (answer, busy, no-answer, failed, rejected, unallocated).
///
/// | number ends in | outcome | Hangup-Cause | sip_term_status | originate result |
/// |---|---|---|---|---|
/// | 0486 | busy after the ring time | USER_BUSY | 486 | `-ERR USER_BUSY` |
/// | 0408 | rings until `originate_timeout` | NO_ANSWER | 480 | `-ERR NO_ANSWER` |
/// | 0503 | fails after the ring time | NORMAL_TEMPORARY_FAILURE | 503 | `-ERR NORMAL_TEMPORARY_FAILURE` |
/// | 0603 | rejected after the ring time | CALL_REJECTED | 603 | `-ERR CALL_REJECTED` |
/// | 0404 | fails at once | UNALLOCATED_NUMBER | 404 | `-ERR UNALLOCATED_NUMBER` |
/// | anything else | answers after the ring time, talks for the talk time, far end hangs up | NORMAL_CLEARING | 200 | `+OK <uuid>` |
public enum CallOutcome: String, Sendable, Hashable, CaseIterable {
    case answer
    case busy
    case noAnswer = "no-answer"
    case failed
    case rejected
    case unallocated

    public static func forDestination(_ number: String, override: String? = nil) -> CallOutcome {
        if let override, let o = CallOutcome(rawValue: override.lowercased()) { return o }
        switch number.suffix(4) {
        case "0486": return .busy
        case "0408": return .noAnswer
        case "0503": return .failed
        case "0603": return .rejected
        case "0404": return .unallocated
        default: return .answer
        }
    }

    /// Hangup cause and SIP status of a call that does not answer.
    var failure: (cause: String, sipStatus: Int)? {
        switch self {
        case .answer: nil
        case .busy: ("USER_BUSY", 486)
        case .noAnswer: ("NO_ANSWER", 480)
        case .failed: ("NORMAL_TEMPORARY_FAILURE", 503)
        case .rejected: ("CALL_REJECTED", 603)
        case .unallocated: ("UNALLOCATED_NUMBER", 404)
        }
    }
}
