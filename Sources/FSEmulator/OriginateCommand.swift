/// `originate <call_url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]`
/// as mod_commands reads it: `{a=1,b=2}` global variables and `[x=1]` leg variables before the
/// dial string.
public struct OriginateCommand: Sendable, Hashable {
    public var variables: [String: String]
    /// `sofia/gateway/gw1/+15551234567`
    public var dialString: String
    /// `&park()` or an extension.
    public var application: String
    /// The number dialled: the last path element of the dial string, without `@host`.
    public var destination: String
    public var timeoutSeconds: Int?

    public enum ParseError: Error, Sendable, Hashable {
        /// `-ERR` text FreeSWITCH would answer with.
        case invalid(String)
    }

    public static func parse(_ arguments: String) throws(ParseError) -> OriginateCommand {
        var rest = Substring(arguments).trimmingSpaces()
        var variables: [String: String] = [:]
        // `{...}` then `[...]` (also `<...>`) variable blocks.
        while let open = rest.first, open == "{" || open == "[" || open == "<" {
            let close: Character = open == "{" ? "}" : open == "[" ? "]" : ">"
            guard let end = rest.firstIndex(of: close) else { throw .invalid("-ERR INVALID_URL") }
            for pair in splitVariables(rest[rest.index(after: rest.startIndex)..<end]) {
                guard let eq = pair.firstIndex(of: "=") else { continue }
                variables[String(pair[..<eq]).trimmingCharacters()] = unquote(String(pair[pair.index(after: eq)...]))
            }
            rest = rest[rest.index(after: end)...]
        }
        let words = rest.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 2 else {
            throw .invalid("-USAGE: <call_url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]")
        }
        let dial = String(words[0])
        let parts = dial.split(separator: "/")
        guard parts.count >= 3, parts[0] == "sofia" || parts[0] == "loopback" || parts[0] == "user" else {
            throw .invalid("-ERR CHAN_NOT_IMPLEMENTED")
        }
        var destination = String(parts.last!)
        if let at = destination.firstIndex(of: "@") { destination = String(destination[..<at]) }
        guard !destination.isEmpty else { throw .invalid("-ERR INVALID_NUMBER_FORMAT") }
        let timeout = words.count >= 7 ? Int(words[6]) : nil
        return OriginateCommand(
            variables: variables, dialString: dial, application: String(words[1]), destination: destination,
            timeoutSeconds: timeout ?? variables["originate_timeout"].flatMap { Int($0) })
    }

    /// Splits `a=1,b='x,y'` on commas outside quotes.
    private static func splitVariables(_ text: Substring) -> [String] {
        var out: [String] = []
        var current = ""
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil }
                current.append(c)
            } else if c == "'" || c == "\"" {
                quote = c
                current.append(c)
            } else if c == "," {
                out.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    private static func unquote(_ value: String) -> String {
        let v = value.trimmingCharacters()
        if v.count >= 2, let f = v.first, f == "'" || f == "\"", v.last == f { return String(v.dropFirst().dropLast()) }
        return v
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

extension String {
    func trimmingCharacters() -> String { String(Substring(self).trimmingSpaces()) }
}
