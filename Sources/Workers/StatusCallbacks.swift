import AsyncHTTPClient
import CallPlane
import Crypto
import Foundation
import Logging
import Metrics
import NIOCore
import Store
import Synchronization

/// Posts call status changes to the call's `status_callback`, like Twilio: form fields
/// (`CallSid`, `AccountSid`, `CallStatus`, `From`, `To`, `Direction`, `SequenceNumber`, ...),
/// only for the events the call asked for (`initiated`, `ringing`, `answered`, `completed`).
///
/// - **Signed** as Twilio signs: `X-Twilio-Signature` = base64(HMAC-SHA1(account signing
///   secret, URL + every form field's name and value, sorted by name)). Twilio's own
///   `RequestValidator` checks it.
/// - **Destinations** are resolved first and refused when any address is loopback, private,
///   link-local, CGNAT, multicast or unspecified, unless `allowPrivate` (tests, lab setups).
/// - **Retries** with backoff (5 attempts, 0.5 s doubling, 5 s timeout each); every delivery
///   or refusal is written to the call's event log (`kind = callback`).
/// - `SequenceNumber` is the event's place in the call's life (initiated 0, ringing 1,
///   answered 2, completed 3), the same whichever orchestrator sends it, so a receiver orders
///   by it rather than by arrival; the forward-only status write makes one orchestrator send
///   each event.
final class StatusCallbacks: Sendable {
    private let client: HTTPClient
    private let calls: CallStore
    private let accounts: AccountStore
    private let logger: Logger
    let allowPrivate: Bool
    private let secrets = Mutex<[String: String]>([:])
    private let delivered = Counter(label: "status_callbacks_total", dimensions: [("result", "delivered")])
    private let failed = Counter(label: "status_callbacks_total", dimensions: [("result", "failed")])
    private let refused = Counter(label: "status_callbacks_total", dimensions: [("result", "refused-destination")])

    init(calls: CallStore, accounts: AccountStore, allowPrivate: Bool, logger: Logger) {
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(3), read: .seconds(5))
        config.redirectConfiguration = .disallow
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        self.calls = calls
        self.accounts = accounts
        self.allowPrivate = allowPrivate
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

    /// The form fields of each callback a status change sends (in order), with its event name.
    static func deliveries(_ call: CallStore.Call, initiated: Bool, timestamp: String) -> [(event: String, fields: [(String, String)])] {
        var events: [(String, String)] = []
        if initiated, call.statusCallbackEvents.contains("initiated") { events.append(("initiated", "initiated")) }
        if let e = event(for: call.status), call.statusCallbackEvents.contains(e) { events.append((e, call.status)) }
        return events.map { event, status in
            let seq = ["initiated": 0, "ringing": 1, "answered": 2, "completed": 3][event] ?? 0
            let twilio = call.api == Self.twilioAPI
            var fields = [
                ("CallSid", twilio ? TwilioSID.make(TwilioSID.call, uuid: call.id) : call.id),
                ("AccountSid", twilio ? TwilioSID.make(TwilioSID.account, uuid: call.accountID) : call.accountID), ("CallStatus", status),
                ("From", call.from), ("To", call.to), ("Direction", "outbound-api"), ("SequenceNumber", String(seq)),
                ("CallbackSource", "call-progress-events"), ("StatusCallbackEvent", event), ("Timestamp", timestamp),
            ]
            if twilio {
                // The rest of what Twilio sends with a call-progress event.
                fields += [("ApiVersion", Self.twilioAPI), ("Called", call.to), ("Caller", call.from)]
                if event == "completed" {
                    let seconds = Self.seconds(from: call.answeredAt, to: call.endedAt) ?? 0
                    fields += [("CallDuration", String(seconds)), ("Duration", String((seconds + 59) / 60))]
                }
            }
            if let state = call.clientState { fields.append(("ClientState", state)) }
            return (event, fields)
        }
    }

    static let twilioAPI = "2010-04-01"

    /// Whole seconds between two of the store's timestamps (`2026-01-02T03:04:05.123456Z`).
    static func seconds(from: String?, to: String?) -> Int? {
        guard let a = from.flatMap(TwilioTime.epochSeconds), let b = to.flatMap(TwilioTime.epochSeconds), b >= a else { return nil }
        return Int((b - a).rounded())
    }

    /// Twilio's signature: base64(HMAC-SHA1(secret, url + sorted name+value pairs)).
    static func signature(secret: String, url: String, fields: [(String, String)]) -> String {
        var data = url
        for (k, v) in fields.sorted(by: { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }) { data += k + v }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(data.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    func notify(_ call: CallStore.Call, initiated: Bool = false) {
        guard let url = call.statusCallback else { return }
        let list = Self.deliveries(call, initiated: initiated, timestamp: Self.timestamp())
        guard !list.isEmpty else { return }
        Task {
            // One call's callbacks in order: initiated before ringing.
            for (event, fields) in list { await self.deliver(call, url: url, event: event, fields: fields) }
        }
    }

    private func deliver(_ call: CallStore.Call, url: String, event: String, fields: [(String, String)]) async {
        var log = logger
        log[metadataKey: "call"] = "\(call.id)"
        if !allowPrivate {
            switch await DestinationPolicy.check(url) {
            case .allowed: break
            case .refused(let why):
                refused.increment()
                log.warning("status callback refused: destination not allowed", metadata: ["reason": "\(why)"])
                try? await calls.record(call.id, CallStore.Event(kind: "callback", result: "refused-destination", detail: "\(event): \(why)"))
                return
            }
        }
        let secret = await secret(for: call.accountID)
        let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        var lastError = ""
        for attempt in 1...5 {
            let started = ContinuousClock.now
            do {
                var request: HTTPClientRequest
                if call.callbackMethod == "GET" {
                    // The fields ride in the query; Twilio signs the whole URL and no body fields.
                    let full = url + (url.contains("?") ? "&" : "?") + body
                    request = HTTPClientRequest(url: full)
                    request.method = .GET
                    if let secret { request.headers.add(name: "X-Twilio-Signature", value: Self.signature(secret: secret, url: full, fields: [])) }
                } else {
                    request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                    if let secret { request.headers.add(name: "X-Twilio-Signature", value: Self.signature(secret: secret, url: url, fields: fields)) }
                    request.body = .bytes(ByteBuffer(string: body))
                }
                request.headers.add(name: "User-Agent", value: "switchyard-callbacks/1.0")
                let response = try await client.execute(request, timeout: .seconds(5))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                let ms = Self.milliseconds(started.duration(to: .now))
                if (200..<300).contains(response.status.code) {
                    delivered.increment()
                    try? await calls.record(
                        call.id,
                        CallStore.Event(
                            kind: "callback", result: "delivered \(response.status.code)", elapsedMs: ms,
                            detail: "\(event), attempt \(attempt)"))
                    return
                }
                lastError = "HTTP \(response.status.code)"
                log.warning("status callback refused", metadata: ["status": "\(response.status.code)", "attempt": "\(attempt)"])
            } catch {
                lastError = "\(error)"
                log.warning("status callback failed", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
            }
            if attempt < 5 { try? await Task.sleep(for: .milliseconds(500 << (attempt - 1))) }
        }
        failed.increment()
        try? await calls.record(call.id, CallStore.Event(kind: "callback", result: "failed", detail: "\(event): \(lastError) after 5 attempts"))
    }

    private func secret(for account: String) async -> String? {
        if let s = secrets.withLock({ $0[account] }) { return s }
        guard let s = try? await accounts.signingSecret(account: account) else { return nil }
        secrets.withLock { $0[account] = s }
        return s
    }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Percent-encodes every byte but RFC 3986's unreserved ASCII characters (Foundation's
    /// `alphanumerics` would let non-ASCII letters through raw, unfit for a GET's query).
    static func encode(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case 48...57, 65...90, 97...122, 45, 46, 95, 126: out.append(b)
            default: out += [37, hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return f.string(from: Date())
    }
}
