public import NIOCore

/// One Event Socket frame: a header block and an optional body of `Content-Length` bytes.
///
/// Server → client frames are all headers (`Content-Type: command/reply`, `api/response`,
/// `text/event-plain`, ...). Client → server frames (commands) start with the command line
/// (`api status`), followed by optional headers (`Job-UUID: ...`) and an optional body.
public struct ESLFrame: Sendable, Hashable {
    /// The command line of a client → server frame; nil for server → client frames.
    public var command: String?
    public var headers: ESLHeaders
    public var body: String?

    public init(command: String? = nil, headers: ESLHeaders = ESLHeaders(), body: String? = nil) {
        self.command = command
        self.headers = headers
        self.body = body
    }

    public var contentType: String? { headers["Content-Type"] }

    /// `Reply-Text` of a `command/reply` frame.
    public var replyText: String? { headers["Reply-Text"] }

    /// Writes the frame as FreeSWITCH does: `Name: value\n` lines, a blank line, then the body.
    /// `Content-Length` is computed from the body, never taken from `headers`.
    public func write(into buffer: inout ByteBuffer) {
        if let command {
            buffer.writeString(command)
            buffer.writeString("\n")
        }
        let bodyLength = body.map { $0.utf8.count } ?? 0
        // mod_event_socket puts Content-Length first on event frames and after Content-Type
        // on api/response; keep the caller's order and place our length where theirs was.
        var wroteLength = false
        for f in headers where !f.name.caseInsensitiveEquals("Content-Length") || bodyLength > 0 {
            if f.name.caseInsensitiveEquals("Content-Length") {
                guard !wroteLength else { continue }
                wroteLength = true
                buffer.writeString("Content-Length: \(bodyLength)\n")
            } else {
                buffer.writeString("\(f.name): \(f.value)\n")
            }
        }
        if bodyLength > 0 && !wroteLength { buffer.writeString("Content-Length: \(bodyLength)\n") }
        buffer.writeString("\n")
        if let body, bodyLength > 0 { buffer.writeString(body) }
    }

    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var b = allocator.buffer(capacity: 128 + (body?.utf8.count ?? 0))
        write(into: &b)
        return b
    }
}

extension ESLFrame {
    /// `Content-Type: auth/request`, sent by the server as soon as a client connects.
    public static let authRequest = ESLFrame(headers: ["Content-Type": "auth/request"])

    /// `Content-Type: command/reply` with `Reply-Text`; `extra` headers follow (bgapi's `Job-UUID`).
    public static func commandReply(_ text: String, extra: [(String, String)] = []) -> ESLFrame {
        ESLFrame(headers: ESLHeaders([("Content-Type", "command/reply"), ("Reply-Text", text)] + extra))
    }

    /// `Content-Type: api/response` with the API's output as body.
    public static func apiResponse(_ output: String) -> ESLFrame {
        ESLFrame(headers: ESLHeaders([("Content-Type", "api/response"), ("Content-Length", "")]), body: output)
    }

    /// An event frame: `Content-Length` then `Content-Type: text/event-<format>`.
    public static func event(_ event: ESLEvent, format: ESLEventFormat) -> ESLFrame {
        let payload: String
        switch format {
        case .plain: payload = event.serializedPlain()
        case .json: payload = event.serializedJSON()
        }
        return ESLFrame(headers: ESLHeaders([("Content-Length", ""), ("Content-Type", format.contentType)]), body: payload)
    }

    /// `Content-Type: text/disconnect-notice`, sent before the server closes the socket.
    public static let disconnectNotice = ESLFrame(
        headers: ESLHeaders([("Content-Type", "text/disconnect-notice"), ("Content-Length", "")]),
        body: "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")

    /// `text/rude-rejection`: the ACL refused the peer.
    public static let rudeRejection = ESLFrame(
        headers: ESLHeaders([("Content-Type", "text/rude-rejection"), ("Content-Length", "")]), body: "Access Denied, go away.\n")
}

/// The serialisations an ESL client can subscribe to (`event plain|json ...`).
public enum ESLEventFormat: String, Sendable, Hashable, CaseIterable {
    case plain, json

    public var contentType: String { "text/event-\(rawValue)" }
}
