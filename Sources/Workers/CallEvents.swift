public import ESL

/// How FreeSWITCH channel events move an API call's status (Twilio's vocabulary).
public enum CallEvents {
    /// The API call id an event belongs to. Our originates set both `origination_uuid` (the
    /// channel's Unique-ID) and `sip_h_X-Call-ID` to it; an inbound caller can send any
    /// `X-Call-ID` header, so the header is trusted only on an outbound leg whose UUID matches.
    public static func callID(_ e: ESLEvent) -> String? {
        guard e["Call-Direction"] == "outbound", let id = e.uniqueID, e["variable_sip_h_X-Call-ID"] == id else { return nil }
        return id
    }

    /// The status an event moves the call to, if any.
    public static func status(for e: ESLEvent) -> String? {
        switch e.name {
        case "CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA": return "ringing"
        case "CHANNEL_ANSWER": return "in-progress"
        case "CHANNEL_HANGUP_COMPLETE": return finalStatus(e)
        default: return nil
        }
    }

    /// The final status from the hangup: answered calls completed; otherwise by cause.
    public static func finalStatus(_ e: ESLEvent) -> String {
        let answered = (e["Caller-Channel-Answered-Time"].flatMap { Int64($0) } ?? 0) > 0
        if answered { return "completed" }
        switch e["Hangup-Cause"] ?? e["variable_hangup_cause"] ?? "" {
        case "USER_BUSY", "CALL_REJECTED", "USER_CHALLENGE": return "busy"
        case "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "PROGRESS_TIMEOUT": return "no-answer"
        case "ORIGINATOR_CANCEL", "LOSE_RACE": return "canceled"
        default: return "failed"
        }
    }

    /// Hangup causes of an originate that mean the node could not take the call at all (try
    /// another node), as opposed to an answer from the far end (busy, no answer ...).
    public static let nodeRefusals: Set<String> = [
        "NORMAL_TEMPORARY_FAILURE", "SWITCH_CONGESTION", "DESTINATION_OUT_OF_ORDER", "CHAN_NOT_IMPLEMENTED", "GATEWAY_DOWN", "SYSTEM_SHUTDOWN",
        "CRASH", "NETWORK_OUT_OF_ORDER",
    ]
}
