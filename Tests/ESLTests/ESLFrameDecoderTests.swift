import ESL
import Foundation
import NIOCore
import Testing
import TestSupport

@Suite("ESL frame codec")
struct ESLFrameDecoderTests {
    static let fixtures = (try? Fixtures.files(in: "esl", withExtension: "frame")) ?? []

    private func decodeAll(_ bytes: [UInt8], direction: ESLFrameDecoder.Direction = .fromServer, chunk: Int? = nil) throws -> [ESLFrame] {
        var decoder = ESLFrameDecoder(direction: direction)
        var buffer = ByteBuffer()
        var frames: [ESLFrame] = []
        var offset = 0
        let step = chunk ?? bytes.count
        while offset < bytes.count {
            buffer.writeBytes(bytes[offset..<min(offset + step, bytes.count)])
            offset += step
            while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        }
        #expect(buffer.readableBytes == 0, "every byte is consumed")
        return frames
    }

    @Test("every captured frame decodes whole, byte by byte, and with CRLF line ends", arguments: fixtures)
    func capturedFrameDecodes(file: String) throws {
        let bytes = try Fixtures.bytes(file)
        let whole = try decodeAll(bytes)
        #expect(whole.count == 1)
        let partial = try decodeAll(bytes, chunk: 1)
        #expect(partial == whole, "partial reads give the same frame")
        // The envelope with CRLF line ends (the body is left as it is).
        let text = String(decoding: bytes, as: UTF8.self)
        let split = text.range(of: "\n\n")!
        let crlf = text[..<split.lowerBound].replacingOccurrences(of: "\n", with: "\r\n") + "\r\n\r\n" + text[split.upperBound...]
        let crlfFrames = try decodeAll(Array(crlf.utf8))
        #expect(crlfFrames == whole, "CRLF envelopes give the same frame")
        #expect(whole[0].contentType != nil)
        if let length = whole[0].headers["Content-Length"] {
            #expect(whole[0].body?.utf8.count == Int(length))
        }
    }

    @Test("two frames back to back in one read come out as two")
    func backToBackFrames() throws {
        let a = try Fixtures.bytes("esl/command-reply-accepted.frame")
        let b = try Fixtures.bytes("esl/event-background-job.frame")
        let frames = try decodeAll(a + b + a)
        #expect(frames.map(\.contentType) == ["command/reply", "text/event-plain", "command/reply"])
    }

    @Test("an api/response body is the API output, blank first line included")
    func apiResponseBody() throws {
        let frames = try decodeAll(try Fixtures.bytes("esl/api-response-count.frame"))
        #expect(frames[0].body == "\n0 total.\n")
    }

    @Test("CRLF line ends are tolerated in the header block")
    func crlfTolerated() throws {
        let frames = try decodeAll(Array("Content-Type: command/reply\r\nReply-Text: +OK accepted\r\n\r\n".utf8))
        #expect(frames.first?.replyText == "+OK accepted")
    }

    @Test("a client command: first line is the command, headers follow, stray blank lines skipped")
    func clientCommand() throws {
        let frames = try decodeAll(Array("\n\r\nbgapi status\nJob-UUID: abc\n\napi show channels count\n\n".utf8), direction: .fromClient)
        #expect(frames.count == 2)
        #expect(frames[0].command == "bgapi status")
        #expect(frames[0].headers["Job-UUID"] == "abc")
        #expect(frames[1].command == "api show channels count")
    }

    @Test("a header block over the limit throws frameTooLarge instead of buffering forever")
    func headerBlockTooLarge() {
        var decoder = ESLFrameDecoder(direction: .fromClient, maxHeaderBytes: 1024)
        var buffer = ByteBuffer(bytes: [UInt8](repeating: 65, count: 4096))
        #expect(throws: ESLError.self) { _ = try decoder.decode(buffer: &buffer) }
    }

    @Test("a Content-Length over the body limit throws frameTooLarge before the body arrives")
    func bodyTooLarge() {
        var decoder = ESLFrameDecoder(direction: .fromServer, maxBodyBytes: 100)
        var buffer = ByteBuffer(string: "Content-Type: api/response\nContent-Length: 5000\n\n")
        do {
            _ = try decoder.decode(buffer: &buffer)
            Issue.record("expected a throw")
        } catch {
            #expect(error.code == .frameTooLarge)
        }
    }

    @Test(
        "a bad Content-Length or a header line without a colon is malformed",
        arguments: [
            "Content-Type: api/response\nContent-Length: -3\n\n", "Content-Type: api/response\nContent-Length: 12x\n\n", "Content-Type api/response\n\n",
        ])
    func malformed(text: String) {
        var decoder = ESLFrameDecoder(direction: .fromServer)
        var buffer = ByteBuffer(string: text)
        do {
            _ = try decoder.decode(buffer: &buffer)
            Issue.record("expected a throw")
        } catch {
            #expect(error.code == .malformedFrame)
        }
    }

    @Test("an encoded frame decodes to itself; Content-Length comes from the body")
    func encodeRoundTrip() throws {
        let frames: [ESLFrame] = [
            .authRequest, .commandReply("+OK accepted"), .commandReply("+OK Job-UUID: x", extra: [("Job-UUID", "x")]),
            .apiResponse("\n3 total.\n"), .disconnectNotice,
        ]
        for frame in frames {
            let decoded = try decodeAll(Array(buffer: frame.encoded()))
            #expect(decoded.count == 1)
            #expect(decoded[0].contentType == frame.contentType)
            #expect(decoded[0].body == frame.body)
            #expect(decoded[0].replyText == frame.replyText)
        }
    }
}
