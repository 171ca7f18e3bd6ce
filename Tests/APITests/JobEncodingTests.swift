import CallPlane
import Store
import Foundation
import Testing

@testable import API

/// The API writes the jobs and reads the create bodies without Foundation's Codable coders
/// (`JSONWriter`, `JSONSerialization`); these pin that the bytes mean what the coders meant.
@Suite("Job and request JSON")
struct JobEncodingTests {
    static let full = Data(
        #"""
        {"type": "originate", "call_id": "0b6f1f5e-8f2a-4c53-9d1e-5a7c2b3e4f60", "account_id": "1c6f1f5e-8f2a-4c53-9d1e-5a7c2b3e4f61",
         "to": "+15551234567", "from": "+15557654321", "timeout": 30, "time_limit": 600, "region": "us-east-1",
         "url": "https://example.com/a/b?c=d", "status_callback": "https://example.com/cb", "status_callback_events": ["ringing", "completed"],
         "client_state": "quote \" backslash \\ newline \n tab \t bell \u0007 non-ASCII é", "paced": true}
        """#.utf8)

    @Test("a job written by JSONWriter decodes to the same job, every field set or none, and carries the keys JSONEncoder wrote")
    func jobRoundTrip() throws {
        let full = try JSONDecoder().decode(CallJobs.Job.self, from: Self.full)
        #expect(full.paced == true && full.client_state?.contains("\u{7}") == true, "the fixture sets every field")
        var minimal = full
        (minimal.account_id, minimal.to, minimal.from, minimal.timeout, minimal.time_limit, minimal.region) = (nil, nil, nil, nil, nil, nil)
        (minimal.url, minimal.status_callback, minimal.status_callback_events, minimal.client_state, minimal.paced) = (nil, nil, nil, nil, nil)
        var unpaced = full
        unpaced.paced = false
        unpaced.status_callback_events = []
        for job in [full, minimal, unpaced] {
            let written = Data(job.jsonBytes)
            #expect(try JSONDecoder().decode(CallJobs.Job.self, from: written) == job, "\(String(decoding: written, as: UTF8.self))")
        }
        // No field of the job is left out: the keys JSONEncoder writes for a job with every field
        // set are the keys JSONWriter writes.
        let encoderKeys = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(full)) as? [String: Any]).keys
        let writerKeys = try #require(try JSONSerialization.jsonObject(with: Data(full.jsonBytes)) as? [String: Any]).keys
        #expect(Set(encoderKeys) == Set(writerKeys))
    }

    @Test("request bodies: JSON types told apart (true is not 1, 1 is not \"1\"), null is absent, non-objects and 30,000-deep nesting refused")
    func requestTypes() throws {
        func parse(_ extra: String, to: String = "\"+15551234567\"") -> Result<CallRequest, APIError> {
            let body = "{\"to\": \(to), \"from\": \"+15557654321\", \"url\": \"https://example.com/x\"\(extra)}"
            return Result { () throws(APIError) in try CallRequest.parse(Data(body.utf8)) }
        }
        #expect(try parse(", \"timeout\": 30").get().timeout == 30)
        #expect(try parse(", \"timeout\": 30.0").get().timeout == 30)
        #expect(try parse(", \"timeout\": null, \"region\": null").get().timeout == 60)
        #expect(try parse(", \"status_callback_events\": [\"ringing\"], \"status_callback\": \"https://e.com/cb\"").get().statusCallbackEvents == ["ringing"])
        for bad in [", \"timeout\": true", ", \"timeout\": false", ", \"timeout\": \"30\"", ", \"timeout\": [30]", ", \"timeout\": {}", ", \"timeout\": 1e400"]
        {
            guard case .failure = parse(bad) else {
                Issue.record("accepted \(bad)")
                continue
            }
        }
        for to in ["true", "15551234567", "[\"+15551234567\"]", "{}", "null"] {
            guard case .failure = parse("", to: to) else {
                Issue.record("accepted to: \(to)")
                continue
            }
        }
        let deep = "{\"to\": " + String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000) + "}"
        for body in ["[1]", "\"x\"", "1", "null", "", "{", "{\"to\": \"\\ud800\"}", deep] {
            #expect(throws: APIError.self, "\(body)") { try CallRequest.parse(Data(body.utf8)) }
        }
    }
}

/// The Twilio call body's hand-written parts: SIDs from the UUIDs, URIs from one base, and the
/// North American display form of numbers.
@Suite("Twilio call body")
struct TwilioCallBodyTests {
    @Test("sid, account_sid, uri and every subresource URI are built from the UUIDs; numbers get Twilio's display form")
    func body() throws {
        let call = try JSONDecoder().decode(
            CallStore.Call.self,
            from: Data(
                #"""
                {"id": "0B6F1F5E-8F2A-4C53-9D1E-5A7C2B3E4F60", "accountID": "1c6f1f5e-8f2a-4c53-9d1e-5a7c2b3e4f61", "to": "+14158675309",
                 "from": "+442071838750", "url": "https://example.com/t", "statusCallbackEvents": [], "timeout": 60, "status": "queued",
                 "createdAt": "2026-12-04T01:02:03.5Z", "updatedAt": "2026-12-04T01:02:03.5Z", "createdMicros": 1796346123500000,
                 "api": "2010-04-01", "paced": false}
                """#.utf8))
        var w = JSONWriter()
        TwilioCallResource(call: call, now: 1_796_346_124).write(to: &w)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any])
        let sid = "CA0b6f1f5e8f2a4c539d1e5a7c2b3e4f60", account = "AC1c6f1f5e8f2a4c539d1e5a7c2b3e4f61"
        #expect(o["sid"] as? String == sid)
        #expect(o["account_sid"] as? String == account)
        #expect(o["uri"] as? String == "/2010-04-01/Accounts/\(account)/Calls/\(sid).json")
        let subresources = try #require(o["subresource_uris"] as? [String: String])
        #expect(subresources["events"] == "/2010-04-01/Accounts/\(account)/Calls/\(sid)/Events.json")
        #expect(subresources["user_defined_messages"] == "/2010-04-01/Accounts/\(account)/Calls/\(sid)/UserDefinedMessages.json")
        #expect(subresources["feedback_summaries"] == "/2010-04-01/Accounts/\(account)/Calls/FeedbackSummary.json")
        #expect(subresources.count == 11)
        #expect(o["to_formatted"] as? String == "(415) 867-5309")
        #expect(o["from_formatted"] as? String == "+442071838750", "not a North American number: as given")
        #expect(o["queue_time"] as? String == "500")
        #expect(TwilioSID.uuid(sid, prefix: TwilioSID.call) == "0b6f1f5e-8f2a-4c53-9d1e-5a7c2b3e4f60")
    }
}
