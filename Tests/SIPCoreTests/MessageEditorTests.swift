import NIOCore
import TestSupport
import Testing

@testable import SIPCore

@Suite struct MessageEditorTests {
    static let response =
        "SIP/2.0 180 Ringing\r\n"
        + "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsyA, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        + "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"
        + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"

    @Test func removingTheTopViaOfAMultiValueLineKeepsTheRest() throws {
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: Self.response))
        var editor = MessageEditor()
        editor.delete(msg.topViaRemovalRange)
        let out = String(buffer: editor.apply(to: msg))
        #expect(out.contains("Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"))
        #expect(!out.contains("z9hG4bKsyA"))
        let reparsed = try SIPMessageParser.parseOrThrow(ByteBuffer(string: out))
        #expect(reparsed.vias.count == 2)
    }

    @Test func removingASingleValueViaRemovesTheWholeLine() throws {
        let text = Self.response.replacingOccurrences(of: ", SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1", with: "")
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: text))
        var editor = MessageEditor()
        editor.delete(msg.topViaRemovalRange)
        #expect(
            String(buffer: editor.apply(to: msg)) == "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"
                + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func routeElementsAreRemovedAcrossLines() throws {
        let text =
            "BYE sip:b@10.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
            + "Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.1:5060;transport=tcp;lr>, <sip:10.0.0.5;lr>\r\nRoute: <sip:10.0.0.6;lr>\r\n"
            + "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: text))
        #expect(msg.routes.count == 4)
        var two = MessageEditor()
        for r in msg.routeRemovalRanges(count: 2) { two.delete(r) }
        #expect(String(buffer: two.apply(to: msg)).contains("Route: <sip:10.0.0.5;lr>\r\nRoute: <sip:10.0.0.6;lr>\r\n"))
        var all = MessageEditor()
        for r in msg.routeRemovalRanges(count: 4) { all.delete(r) }
        #expect(!String(buffer: all.apply(to: msg)).contains("Route"))
    }

    @Test func insertionsAndReplacementsApplyInOffsetOrder() throws {
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: Self.response))
        var editor = MessageEditor()
        editor.insert("B", at: 0)
        editor.insert("A", at: 0)
        editor.replace(0..<3, with: "XYZ")
        #expect(String(buffer: editor.apply(to: msg)).hasPrefix("BAXYZ/2.0 180"))
    }

    /// The edits applied the plain way: sorted by offset (then order added), an edit that starts
    /// inside an earlier one skipped.
    static func reference(_ bytes: [UInt8], _ edits: [(offset: Int, remove: Int, text: String)]) -> [UInt8] {
        let sorted = edits.enumerated().sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }.map(\.element)
        var out: [UInt8] = []
        var cursor = 0
        for e in sorted where e.offset >= cursor {
            out += bytes[cursor..<e.offset]
            out += Array(e.text.utf8)
            cursor = e.offset + e.remove
        }
        if cursor < bytes.count { out += bytes[cursor...] }
        return out
    }

    @Test func editsInAnyOrderGiveWhatThePlainApplicationGives() throws {
        let msg = try SIPMessageParser.parseOrThrow(ByteBuffer(string: Self.response))
        let bytes = Array(Self.response.utf8)
        var rng = SeededRandomNumberGenerator(seed: 3581)
        for _ in 0..<2_000 {
            var editor = MessageEditor()
            var edits: [(offset: Int, remove: Int, text: String)] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let offset = Int.random(in: 0..<bytes.count, using: &rng)
                let remove = Bool.random(using: &rng) ? 0 : Int.random(in: 0...min(12, bytes.count - offset), using: &rng)
                let text = ["", "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsy1\r\n", "69", "Record-Route: <sip:127.0.0.1;lr>\r\n"]
                    .randomElement(using: &rng)!
                edits.append((offset, remove, text))
                if remove == 0 { editor.insert(text, at: offset) } else { editor.replace(offset..<(offset + remove), with: text) }
            }
            #expect(Array(buffer: editor.apply(to: msg)) == Self.reference(bytes, edits))
        }
    }
}
