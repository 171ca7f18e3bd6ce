import CallPlane
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

    @Test("request bodies: JSON types are told apart (true is not 1, 1 is not \"1\"), null is absent, and non-objects are not JSON bodies")
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
        for body in ["[1]", "\"x\"", "1", "null", "", "{", "{\"to\": \"\\ud800\"}"] {
            #expect(throws: APIError.self, "\(body)") { try CallRequest.parse(Data(body.utf8)) }
        }
    }
}
