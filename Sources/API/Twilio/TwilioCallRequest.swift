/// A validated create on the Twilio surface (`POST …/Calls.json`, form-encoded). Each
/// problem is answered with Twilio's code where Twilio has one. Parameters of Twilio's that
/// this platform does not act on are accepted and ignored (`ignored`, listed in docs/api.md);
/// `ApplicationSid` is refused, since a call without `Url` or `Twiml` would have nothing to do.
struct TwilioCallRequest: Sendable, Hashable {
    var to: String
    var from: String
    var url: String?
    var twiml: String?
    var method: String
    var statusCallback: String?
    var statusCallbackEvents: [String]
    var statusCallbackMethod: String
    var timeout: Int
    var timeLimit: Int?

    /// Twilio's create parameters that are accepted and have no effect here.
    static let ignored: Set<String> = [
        "FallbackUrl", "FallbackMethod", "SendDigits", "Record", "RecordingChannels", "RecordingStatusCallback", "RecordingStatusCallbackMethod",
        "RecordingStatusCallbackEvent", "RecordingConfigurationId", "RecordingTrack", "SipAuthUsername", "SipAuthPassword", "MachineDetection",
        "MachineDetectionTimeout", "MachineDetectionSpeechThreshold", "MachineDetectionSpeechEndThreshold", "MachineDetectionSilenceTimeout",
        "AsyncAmd", "AsyncAmdStatusCallback", "AsyncAmdStatusCallbackMethod", "Trim", "CallerId", "Byoc", "CallReason", "CallToken", "Passports",
        "ClientNotificationUrl",
    ]

    static func parse(_ f: FormFields) throws(APIError) -> TwilioCallRequest {
        guard let to = f["To"], !to.isEmpty else { throw APIError.Twilio.missingTo }
        guard isE164(to) else { throw APIError.Twilio.invalidTo(to) }
        guard let from = f["From"], !from.isEmpty else { throw APIError.Twilio.missingFrom }
        guard isE164(from) else { throw APIError.Twilio.invalidFrom(from) }
        if let app = f["ApplicationSid"], !app.isEmpty { throw APIError.Twilio.applicationSID }
        let (url, twiml) = try instructions(f)
        guard url != nil || twiml != nil else { throw APIError.Twilio.missingURL }
        let method = try httpMethod(f, "Method")
        let callback = f["StatusCallback"].flatMap { $0.isEmpty ? nil : $0 }
        if let callback, !isHTTPURL(callback) { throw APIError.Twilio.invalidCallback }
        var events: [String] = []
        // Repeated keys (what Twilio's clients send), or several in one value separated by spaces.
        for value in f.all("StatusCallbackEvent") {
            for e in value.split(separator: " ").map(String.init) {
                guard CallRequest.events.contains(e) else { throw APIError.Twilio.invalidEvent(e) }
                if !events.contains(e) { events.append(e) }
            }
        }
        if events.isEmpty, callback != nil { events = ["completed"] }
        return TwilioCallRequest(
            to: to, from: from, url: url, twiml: twiml, method: method, statusCallback: callback, statusCallbackEvents: events,
            statusCallbackMethod: try httpMethod(f, "StatusCallbackMethod"), timeout: try integer(f, "Timeout", 1...600) ?? 60,
            timeLimit: try integer(f, "TimeLimit", 1...86_400))
    }

    /// `Url` or `Twiml` (the later-given wins when both are, as on Twilio: Twiml).
    static func instructions(_ f: FormFields) throws(APIError) -> (url: String?, twiml: String?) {
        let url = f["Url"].flatMap { $0.isEmpty ? nil : $0 }
        if let url, !isHTTPURL(url) { throw APIError.Twilio.invalidURL }
        let twiml = f["Twiml"].flatMap { $0.isEmpty ? nil : $0 }
        if let twiml, twiml.count > 4000 { throw APIError.Twilio.twimlTooLong }
        return twiml != nil ? (nil, twiml) : (url, nil)
    }

    /// `GET` or `POST` (any case); POST when absent.
    static func httpMethod(_ f: FormFields, _ name: String) throws(APIError) -> String {
        guard let v = f[name], !v.isEmpty else { return "POST" }
        let upper = v.uppercased()
        guard upper == "GET" || upper == "POST" else { throw APIError.Twilio.invalid(name, "must be GET or POST, not '\(v.prefix(20))'") }
        return upper
    }

    static func integer(_ f: FormFields, _ name: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = f[name], !v.isEmpty else { return nil }
        guard let n = Int(v), range.contains(n) else {
            throw APIError.Twilio.invalid(name, "must be an integer from \(range.lowerBound) to \(range.upperBound), not '\(v.prefix(20))'")
        }
        return n
    }

    /// A digest of the validated request, for `Idempotency-Key` replays.
    var digest: String {
        let canonical = [
            to, from, url ?? "", twiml ?? "", method, statusCallback ?? "", statusCallbackEvents.joined(separator: ","), statusCallbackMethod,
            String(timeout), timeLimit.map(String.init) ?? "",
        ].joined(separator: "\u{1F}")
        return "tw" + requestDigest(canonical)
    }
}
