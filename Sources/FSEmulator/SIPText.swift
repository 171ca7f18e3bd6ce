import SIPCore

/// Plain-text access to a SIP message's headers for the emulator's UAS (not the proxy's hot
/// path, which works on byte ranges): names expanded from compact forms, values unfolded.
enum SIPText {
    private static let compact: [String: String] = [
        "f": "from", "t": "to", "m": "contact", "v": "via", "i": "call-id", "l": "content-length", "c": "content-type",
        "k": "supported", "s": "subject", "e": "content-encoding",
    ]

    /// (lower-cased full name, value) for every header field, in order.
    static func headers(of message: SIPMessage) -> [(name: String, value: String)] {
        let text = message.text(message.layout.headersStart..<message.layout.bodyStart)
        var out: [(name: String, value: String)] = []
        // Split by scalar: "\r\n" is one Character in Swift.
        for raw in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: true) {
            var line = Substring(raw)
            if line.unicodeScalars.last == "\r" { line = Substring(line.unicodeScalars.dropLast()) }
            if line.isEmpty { continue }
            if let f = line.first, f == " " || f == "\t", !out.isEmpty {
                out[out.count - 1].value += " " + line.trimmingSpaces()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            var name = line[..<colon].trimmingSpaces().lowercased()
            name = compact[name] ?? name
            out.append((name: name, value: String(line[line.index(after: colon)...].trimmingSpaces())))
        }
        return out
    }

    static func values(_ name: String, in headers: [(name: String, value: String)]) -> [String] {
        headers.filter { $0.name == name }.map(\.value)
    }

    /// Splits a header value on commas outside `<...>` and quotes (Record-Route: <a>, <b>).
    static func splitList(_ value: String) -> [String] {
        var out: [String] = []
        var current = ""
        var angle = false
        var quote = false
        for c in value {
            if c == "\"" { quote.toggle() }
            if !quote && c == "<" { angle = true }
            if !quote && c == ">" { angle = false }
            if c == "," && !angle && !quote {
                out.append(current.trimmingCharacters())
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.trimmingCharacters().isEmpty { out.append(current.trimmingCharacters()) }
        return out
    }

    /// The URI inside a name-addr (`"Bob" <sip:bob@host>;tag=1` → `sip:bob@host`), or the
    /// addr-spec up to its header parameters.
    static func uri(of nameAddr: String) -> String {
        if let open = nameAddr.firstIndex(of: "<"), let close = nameAddr[open...].firstIndex(of: ">") {
            return String(nameAddr[nameAddr.index(after: open)..<close])
        }
        return String(nameAddr.split(separator: ";").first ?? Substring(nameAddr)).trimmingCharacters()
    }

    /// Host and port of a SIP URI (`sip:user@127.0.0.1:5060;lr` → 127.0.0.1, 5060).
    static func hostPort(of uri: String) -> (host: String, port: Int)? {
        var rest = Substring(uri)
        if let colon = rest.firstIndex(of: ":"), rest[..<colon].lowercased().hasPrefix("sip") { rest = rest[rest.index(after: colon)...] }
        if let at = rest.firstIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        let end = rest.firstIndex(where: { $0 == ";" || $0 == "?" || $0 == ">" }) ?? rest.endIndex
        let hostPort = rest[..<end]
        let parts = hostPort.split(separator: ":")
        guard let host = parts.first, !host.isEmpty else { return nil }
        let port = parts.count > 1 ? Int(parts[1]) ?? 5060 : 5060
        return (String(host), port)
    }

    /// The user part of a SIP URI, if any.
    static func user(of uri: String) -> String? {
        var rest = Substring(uri)
        if let colon = rest.firstIndex(of: ":") { rest = rest[rest.index(after: colon)...] }
        guard let at = rest.firstIndex(of: "@") else { return nil }
        return String(rest[..<at].split(separator: ";").first ?? "")
    }
}
