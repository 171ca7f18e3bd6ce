import Foundation
import ESL
import NIOCore
import Testing
import TestSupport

@Suite("ESL events")
struct ESLEventTests {
    private func frame(_ file: String) throws -> ESLFrame {
        var decoder = ESLFrameDecoder(direction: .fromServer)
        var buffer = ByteBuffer(bytes: try Fixtures.bytes("esl/\(file)"))
        return try #require(try decoder.decode(buffer: &buffer))
    }

    @Test("a BACKGROUND_JOB event carries the job and its output as body; values are URL-decoded")
    func backgroundJob() throws {
        let event = try ESLEvent.from(frame: frame("event-background-job.frame"))
        #expect(event.name == "BACKGROUND_JOB")
        #expect(event["Job-UUID"] == "7370aac1-93a2-4155-8c4a-2997edd4176b")
        #expect(event["Job-Command-Arg"]?.hasPrefix("{origination_uuid=6f1c2a3e") == true)
        #expect(event["Job-Command-Arg"]?.hasSuffix("sofia/gateway/gw1/+15551234567 &park()") == true)
        #expect(event.body == "+OK 6f1c2a3e-0000-4000-8000-000000000001\n")
        #expect(event["Content-Length"] == nil, "the inner Content-Length is framing, not a header")
        #expect(event.timestampMicros == 1_589_448_930_194_500)
    }

    @Test("urlEncode percent-encodes controls, non-ASCII and FreeSWITCH's listed characters, nothing else; urlDecode undoes it")
    func urlEncoding() {
        #expect(ESLEvent.urlEncode("sofia/internal/+15551234567@10.0.0.1") == "sofia/internal/%2B15551234567%4010.0.0.1")
        #expect(ESLEvent.urlEncode("a b\r\n\"#%&+:;<=>?@[\\]^`{|}") == "a%20b%0D%0A%22%23%25%26%2B%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E%60%7B%7C%7D")
        #expect(ESLEvent.urlEncode("\u{7F}é\u{01}") == "%7F%C3%A9%01")
        let plain = "abcXYZ019-_.~!$'()*,/"
        #expect(ESLEvent.urlEncode(plain) == plain, "the rest of printable ASCII is left as it is")
        for value in ["", "x", "a b+c%d", "é:ü\t", plain] {
            #expect(ESLEvent.urlDecode(ESLEvent.urlEncode(value)) == value)
        }
    }

    @Test("HEARTBEAT gives the node's session count and capacity")
    func heartbeat() throws {
        let event = try ESLEvent.from(frame: frame("event-heartbeat.frame"))
        #expect(event.name == "HEARTBEAT")
        #expect(event["Session-Count"] == "39")
        #expect(event["Max-Sessions"] == "2000")
        #expect(event["Event-Info"] == "System Ready")
        #expect(event.body == nil)
    }

    @Test("CHANNEL_HANGUP_COMPLETE carries the CDR variables")
    func hangupComplete() throws {
        let event = try ESLEvent.from(frame: frame("event-hangup-complete.frame"))
        #expect(event.uniqueID == "6f1c2a3e-0000-4000-8000-000000000001")
        #expect(event["variable_billsec"] == "60")
        #expect(event["variable_sip_h_X-Call-ID"] == "c_123")
        #expect(event["Caller-Destination-Number"] == "+15551234567")
    }

    @Test("a text/event-json event parses to the same headers")
    func jsonEvent() throws {
        let event = try ESLEvent.from(frame: frame("event-json-answer.frame"))
        #expect(event.name == "CHANNEL_ANSWER")
        #expect(event["Answer-State"] == "answered")
        #expect(event["Caller-Destination-Number"] == "+15551234567")
    }

    @Test("plain and JSON serialisation round-trip headers and body, with awkward values")
    func roundTrip() throws {
        var headers = ESLHeaders()
        headers.add("Event-Name", "CUSTOM")
        headers.add("Odd", "a b:c%d+e&f=g\nh{i}é")
        headers.add("Empty", "")
        let event = ESLEvent(headers: headers, body: "line 1\n\nline 3\n")
        let plain = try ESLEvent.parsePlain(event.serializedPlain())
        #expect(plain == event)
        let json = try ESLEvent.parseJSON(event.serializedJSON())
        #expect(json["Odd"] == event["Odd"])
        #expect(json.body == event.body)
        #expect(!event.serializedPlain().contains("a b"), "spaces are encoded in plain events")
    }

    @Test("an event without Event-Name is malformed")
    func missingName() {
        #expect(throws: ESLError.self) { try ESLEvent.parsePlain("Unique-ID: x\n\n") }
        #expect(throws: ESLError.self) { try ESLEvent.parseJSON("[1,2]") }
    }

    /// A plain event read the eager way: every line a (name, URL-decoded value) pair, the inner
    /// Content-Length left out (what the headers held before they were decoded lazily).
    static func eagerFields(_ payload: String) -> [(String, String)] {
        var fields: [(String, String)] = []
        for line in payload.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            if name != "Content-Length" { fields.append((name, ESLEvent.urlDecode(value))) }
        }
        return fields
    }

    @Test("a plain event's headers, decoded when read, are what reading every line gives, under any case of their names")
    func lazyHeadersMatchTheEagerReading() throws {
        for file in ["event-background-job.frame", "event-hangup-complete.frame", "event-heartbeat.frame"] {
            let payload = try #require(try frame(file).body)
            let event = try ESLEvent.parsePlain(payload)
            let eager = Self.eagerFields(payload)
            #expect(event.headers.count == eager.count)
            #expect(event.headers.fields.map(\.name) == eager.map(\.0))
            #expect(event.headers.fields.map(\.value) == eager.map(\.1))
            for (name, _) in eager {
                let first = eager.first { $0.0.lowercased() == name.lowercased() }?.1
                #expect(event[name] == first && event[name.uppercased()] == first && event[name.lowercased()] == first, "\(file) \(name)")
            }
            #expect(event["No-Such-Header"] == nil)
            // A change turns the lines into fields and keeps the rest.
            var changed = event
            changed.headers.set("Event-Name", "CUSTOM")
            #expect(changed.name == "CUSTOM" && changed.headers.count == eager.count && changed.uniqueID == event.uniqueID)
        }
    }
}
