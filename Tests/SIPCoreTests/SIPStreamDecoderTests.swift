import NIOCore
import Testing

@testable import SIPCore

@Suite struct SIPStreamDecoderTests {
    static let message =
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n"
        + "To: <sip:b@y>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello"

    @Test func partialInputWaitsAndLeavesTheBufferIntact() throws {
        var decoder = SIPStreamDecoder()
        let full = Array(Self.message.utf8)
        for cut in [1, 40, full.count - 6, full.count - 1] {
            var buffer = ByteBuffer(bytes: full.prefix(cut))
            #expect(try decoder.decode(buffer: &buffer) == nil)
            #expect(buffer.readableBytes == cut)
        }
    }

    @Test func backToBackMessagesAndKeepAlivesAreFramed() throws {
        var decoder = SIPStreamDecoder()
        var buffer = ByteBuffer(string: "\r\n\r\n" + Self.message + Self.message + "\r\n")
        let first = try #require(try decoder.decode(buffer: &buffer))
        #expect(String(buffer: first) == Self.message)
        let second = try #require(try decoder.decode(buffer: &buffer))
        #expect(String(buffer: second) == Self.message)
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
    }

    @Test func endlessHeadersCloseTheConnection() {
        var decoder = SIPStreamDecoder(limits: SIPLimits(maxHeaderSectionSize: 1_024))
        var buffer = ByteBuffer(string: "INVITE sip:a@b SIP/2.0\r\n" + String(repeating: "X-Pad: yyyyyyyy\r\n", count: 100))
        #expect(throws: SIPStreamError.self) { try decoder.decode(buffer: &buffer) }
    }

    @Test(arguments: ["abc", "-1", "99999999999", "40000"])
    func badContentLengthClosesTheConnection(_ value: String) {
        var decoder = SIPStreamDecoder()
        var buffer = ByteBuffer(string: Self.message.replacingOccurrences(of: "Content-Length: 5", with: "Content-Length: \(value)"))
        #expect(throws: SIPStreamError.self) { try decoder.decode(buffer: &buffer) }
    }

    @Test func aFramingErrorCarriesAnAnswerToTheRequest() throws {
        var decoder = SIPStreamDecoder(limits: SIPLimits(maxHeaderSectionSize: 1_024))
        let head =
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK9\r\nFrom: <sip:a@x>;tag=1\r\n"
            + "To: <sip:b@y>\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\n"
        var buffer = ByteBuffer(string: head + String(repeating: "X-Pad: yyyyyyyy\r\n", count: 100))
        do {
            _ = try decoder.decode(buffer: &buffer)
            Issue.record("an endless header section was accepted")
        } catch let error as SIPStreamError {
            let answer = try #require(error.rejection(limits: SIPLimits(maxHeaderSectionSize: 1_024)))
            let text = String(buffer: answer)
            #expect(text.hasPrefix("SIP/2.0 513 Header Section Too Large\r\n"))
            #expect(text.contains("Call-ID: big\r\n"))
        }
    }
}
