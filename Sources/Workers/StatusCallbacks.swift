import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Store

/// Posts call status changes to the call's `status_callback`, like Twilio: form fields
/// (`CallSid`, `AccountSid`, `CallStatus`, `From`, `To`, `Direction`, `SequenceNumber`, ...),
/// only for the events the call asked for (`initiated`, `ringing`, `answered`, `completed`),
/// each with a 5 s timeout and up to 3 attempts with backoff. Delivery is at least once per
/// status change; `SequenceNumber` is the event's place in the call's life (initiated 0,
/// ringing 1, answered 2, completed 3), the same whichever orchestrator sends it, so a receiver
/// orders by it rather than by arrival.
final class StatusCallbacks: Sendable {
    private let client: HTTPClient
    private let logger: Logger

    init(logger: Logger) {
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(3), read: .seconds(5))
        config.redirectConfiguration = .disallow
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        self.logger = logger
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    /// The Twilio event name of a status.
    static func event(for status: String) -> String? {
        switch status {
        case "ringing": "ringing"
        case "in-progress": "answered"
        case "completed", "busy", "failed", "no-answer", "canceled": "completed"
        default: nil
        }
    }

    func notify(_ call: CallStore.Call, initiated: Bool = false) {
        guard let url = call.statusCallback else { return }
        var events: [(String, String)] = []
        if initiated, call.statusCallbackEvents.contains("initiated") { events.append(("initiated", "initiated")) }
        if let e = Self.event(for: call.status), call.statusCallbackEvents.contains(e) { events.append((e, call.status)) }
        for (event, status) in events {
            let seq = ["initiated": 0, "ringing": 1, "answered": 2, "completed": 3][event] ?? 0
            var fields = [
                ("CallSid", call.id), ("AccountSid", call.accountID), ("CallStatus", status), ("From", call.from), ("To", call.to),
                ("Direction", "outbound-api"), ("SequenceNumber", String(seq)), ("CallbackSource", "call-progress-events"),
                ("StatusCallbackEvent", event), ("Timestamp", Self.timestamp()),
            ]
            if let state = call.clientState { fields.append(("ClientState", state)) }
            let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
            let client = self.client, logger = self.logger
            Task {
                for attempt in 1...3 {
                    do {
                        var request = HTTPClientRequest(url: url)
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                        request.headers.add(name: "User-Agent", value: "switchyard-callbacks/1.0")
                        request.body = .bytes(ByteBuffer(string: body))
                        let response = try await client.execute(request, timeout: .seconds(5))
                        if (200..<300).contains(response.status.code) { return }
                        logger.warning("status callback refused", metadata: ["call": "\(call.id)", "status": "\(response.status.code)", "attempt": "\(attempt)"])
                    } catch {
                        logger.warning("status callback failed", metadata: ["call": "\(call.id)", "error": "\(error)", "attempt": "\(attempt)"])
                    }
                    try? await Task.sleep(for: .milliseconds(500 * attempt))
                }
            }
        }
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return f.string(from: Date())
    }
}
