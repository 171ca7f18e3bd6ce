import Foundation

/// SIP messages built by hand for tests, and small readers for what comes back.
public enum SIPTestMessages {
    /// An OPTIONS addressed to the proxy itself at 127.0.0.1:`port`, from a client at
    /// 127.0.0.1:`localPort` (RFC 3261 §11; `rport` so a UDP reply comes back to the sending
    /// socket whatever port the Via names, RFC 3581).
    public static func options(toPort port: Int, fromPort localPort: Int, transport: String = "UDP", tag: String = "t") -> String {
        let unique = "\(tag)-\(localPort)-\(UInt32.random(in: 0...UInt32.max))"
        return """
            OPTIONS sip:127.0.0.1:\(port) SIP/2.0\r
            Via: SIP/2.0/\(transport) 127.0.0.1:\(localPort);rport;branch=z9hG4bK-\(unique)\r
            Max-Forwards: 70\r
            From: <sip:probe@127.0.0.1:\(localPort)>;tag=\(unique)\r
            To: <sip:127.0.0.1:\(port)>\r
            Call-ID: options-\(unique)@127.0.0.1\r
            CSeq: 1 OPTIONS\r
            Accept: application/sdp\r
            Content-Length: 0\r
            \r

            """
    }

    /// The status code of a response (`SIP/2.0 200 OK` → 200), nil for anything else.
    public static func statusCode(_ bytes: [UInt8]) -> Int? {
        let line = firstLine(bytes)
        guard line.hasPrefix("SIP/2.0 ") else { return nil }
        return Int(line.dropFirst(8).prefix(3))
    }

    /// The first line, without CRLF (lossy UTF-8).
    public static func firstLine(_ bytes: [UInt8]) -> String {
        let end = bytes.firstIndex(of: UInt8(ascii: "\r")) ?? bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// `bytes` hold a full message: the header section and as many body bytes as its
    /// Content-Length (0 when absent) says.
    public static func isCompleteMessage(_ bytes: [UInt8]) -> Bool {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let headerEnd = (0...(bytes.count - 4)).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }) else {
            return false
        }
        let head = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        var length = 0
        for line in head.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" || name == "l" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return bytes.count >= headerEnd + 4 + length
    }
}
