import CallPlane
import Foundation
import Store

/// A call as Twilio's Calls API shows it: Twilio's field names, SIDs, RFC 2822 dates, and
/// strings where Twilio sends strings (`duration`, `queue_time`). Fields this platform has no
/// value for (price, annotation, trunk …) are present and null, as on Twilio.
struct TwilioCallResource: JSONWritable, Sendable {
    let call: CallStore.Call
    let now: Double

    var sid: String { TwilioSID.make(TwilioSID.call, uuid: call.id) }
    var accountSID: String { TwilioSID.make(TwilioSID.account, uuid: call.accountID) }

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
        guard d.count == 12, d[0] == 43, d[1] == 49 else { return e164 }
        return String(decoding: [40] + d[2..<5] + [41, 32] + d[5..<8] + [45] + d[8..<12], as: UTF8.self)
    }

    /// Every key, nulls included, sorted.
    func write(to w: inout JSONWriter) {
        let none: String? = nil
        let sid = self.sid, accountSID = self.accountSID
        let accountBase = "\(TwilioCalls.prefix)/Accounts/\(accountSID)/Calls/"
        let base = accountBase + sid
        w.object { w in
            w.field("account_sid", accountSID)
            w.field("annotation", none)
            w.field("answered_by", none)
            w.field("api_version", call.api == "v1" ? "v1" : TwilioCalls.version)
            w.field("caller_name", none)
            w.field("date_created", TwilioTime.rfc2822(iso: call.createdAt))
            w.field("date_updated", TwilioTime.rfc2822(iso: call.updatedAt))
            w.field("direction", "outbound-api")
            w.field("duration", duration)
            w.field("end_time", TwilioTime.rfc2822(iso: call.endedAt))
            w.field("forwarded_from", none)
            w.field("from", call.from)
            w.field("from_formatted", Self.formatted(call.from))
            w.field("group_sid", none)
            w.field("parent_call_sid", none)
            w.field("phone_number_sid", none)
            w.field("price", none)
            w.field("price_unit", "USD")
            w.field("queue_time", queueTime)
            w.field("sid", sid)
            w.field("start_time", TwilioTime.rfc2822(iso: call.placedAt))
            w.field("status", call.status)
            w.key("subresource_uris")
            w.object { w in
                w.field("events", base, "/Events.json")
                w.field("feedback", base, "/Feedback.json")
                w.field("feedback_summaries", accountBase, "FeedbackSummary.json")
                w.field("notifications", base, "/Notifications.json")
                w.field("payments", base, "/Payments.json")
                w.field("recordings", base, "/Recordings.json")
                w.field("siprec", base, "/Siprec.json")
                w.field("streams", base, "/Streams.json")
                w.field("transcriptions", base, "/Transcriptions.json")
                w.field("user_defined_message_subscriptions", base, "/UserDefinedMessageSubscriptions.json")
                w.field("user_defined_messages", base, "/UserDefinedMessages.json")
            }
            w.field("to", call.to)
            w.field("to_formatted", Self.formatted(call.to))
            w.field("trunk_sid", none)
            w.field("uri", base, ".json")
        }
    }
}
