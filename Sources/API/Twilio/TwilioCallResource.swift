import CallPlane
import Foundation
import Store

/// A call as Twilio's Calls API shows it: Twilio's field names, SIDs, RFC 2822 dates, and
/// strings where Twilio sends strings (`duration`, `queue_time`). Fields this platform has no
/// value for (price, annotation, trunk …) are present and null, as on Twilio.
struct TwilioCallResource: Encodable, Sendable {
    let call: CallStore.Call
    let now: Double

    var sid: String { TwilioSID.make(TwilioSID.call, uuid: call.id) }
    var accountSID: String { TwilioSID.make(TwilioSID.account, uuid: call.accountID) }
    var uri: String { "\(TwilioCalls.prefix)/Accounts/\(accountSID)/Calls/\(sid).json" }

    /// Seconds from answer to end, for an answered call that ended; nil otherwise (as Twilio).
    var duration: String? {
        guard let a = call.answeredAt.flatMap({ TwilioTime.epochSeconds($0) }), let e = call.endedAt.flatMap({ TwilioTime.epochSeconds($0) }), e >= a
        else { return nil }
        return String(Int((e - a).rounded()))
    }

    /// Milliseconds from creation to placement; for a call still queued, so far.
    var queueTime: String {
        let created = Double(call.createdMicros) / 1_000_000
        if let placed = call.placedMicros { return String(max(0, Int((Double(placed) / 1_000_000 - created) * 1000))) }
        if call.status == "queued" { return String(max(0, Int((now - created) * 1000))) }
        return "0"
    }

    /// Twilio's display form: `(415) 867-5309` for a North American number, else as given.
    static func formatted(_ e164: String) -> String {
        let d = Array(e164.utf8)
        guard d.count == 12, e164.hasPrefix("+1") else { return e164 }
        let s = String(decoding: d[2...], as: UTF8.self)
        let a = s.prefix(3), b = s.dropFirst(3).prefix(3), c = s.suffix(4)
        return "(\(a)) \(b)-\(c)"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        let none: String? = nil
        try c.encode(accountSID, forKey: "account_sid")
        try c.encode(none, forKey: "annotation")
        try c.encode(none, forKey: "answered_by")
        try c.encode(call.api == "v1" ? "v1" : TwilioCalls.version, forKey: "api_version")
        try c.encode(none, forKey: "caller_name")
        try c.encode(TwilioTime.rfc2822(iso: call.createdAt), forKey: "date_created")
        try c.encode(TwilioTime.rfc2822(iso: call.updatedAt), forKey: "date_updated")
        try c.encode("outbound-api", forKey: "direction")
        try c.encode(duration, forKey: "duration")
        try c.encode(TwilioTime.rfc2822(iso: call.endedAt), forKey: "end_time")
        try c.encode(none, forKey: "forwarded_from")
        try c.encode(call.from, forKey: "from")
        try c.encode(Self.formatted(call.from), forKey: "from_formatted")
        try c.encode(none, forKey: "group_sid")
        try c.encode(none, forKey: "parent_call_sid")
        try c.encode(none, forKey: "phone_number_sid")
        try c.encode(none, forKey: "price")
        try c.encode("USD", forKey: "price_unit")
        try c.encode(queueTime, forKey: "queue_time")
        try c.encode(sid, forKey: "sid")
        try c.encode(TwilioTime.rfc2822(iso: call.placedAt), forKey: "start_time")
        try c.encode(call.status, forKey: "status")
        let base = "\(TwilioCalls.prefix)/Accounts/\(accountSID)/Calls/\(sid)"
        var subresources: [String: String] = [:]
        for name in ["notifications", "recordings", "payments", "events", "siprec", "streams", "transcriptions", "user_defined_messages"] {
            subresources[name] = "\(base)/\(name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()).json"
        }
        subresources["feedback"] = "\(base)/Feedback.json"
        subresources["feedback_summaries"] = "\(TwilioCalls.prefix)/Accounts/\(accountSID)/Calls/FeedbackSummary.json"
        subresources["user_defined_message_subscriptions"] = "\(base)/UserDefinedMessageSubscriptions.json"
        try c.encode(subresources, forKey: "subresource_uris")
        try c.encode(call.to, forKey: "to")
        try c.encode(Self.formatted(call.to), forKey: "to_formatted")
        try c.encode(none, forKey: "trunk_sid")
        try c.encode(uri, forKey: "uri")
    }

    struct Key: CodingKey, ExpressibleByStringLiteral {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringLiteral s: String) { stringValue = s }
        init?(stringValue s: String) { stringValue = s }
        init?(intValue: Int) { nil }
    }
}
