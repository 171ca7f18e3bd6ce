import CallPlane
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Store

/// Twilio's Calls API (`/2010-04-01/Accounts/{AccountSid}/Calls[.json]`) over the same store,
/// stream and workers as `/v1`: create, fetch, list with Twilio's paging and filters, update
/// (cancel, hang up, redirect) and delete. Twilio's official clients work against it by
/// changing their base URL. Its calls are paced at the account's calls per second and limited
/// to its concurrent calls, both kept in PostgreSQL (see `CallStore.reservePaceSlot`).
struct TwilioCalls: Sendable {
    static let version = "2010-04-01"
    static let prefix = "/2010-04-01"

    let calls: CallStore
    let inserter: CreateBatcher
    let publisher: CallPublisher
    let accounts: AccountStore

    func add(to router: Router<APIContext>) {
        let group = router.group("2010-04-01/Accounts/:AccountSid").add(middleware: TwilioAuthMiddleware(accounts: accounts))
        for path in ["Calls.json", "Calls"] {
            group.post(RouterPath(path)) { request, context in try await self.create(request, context) }
            group.get(RouterPath(path)) { request, context in try await self.list(request, context) }
        }
        group.get("Calls/:CallSid") { request, context in try await self.fetch(request, context) }
        group.post("Calls/:CallSid") { request, context in try await self.update(request, context) }
        group.delete("Calls/:CallSid") { request, context in try await self.delete(request, context) }
    }

    // MARK: Handlers

    func create(_ request: Request, _ context: APIContext) async throws -> Response {
        let account = context.account!
        let form = try await formBody(request, context)
        let parsed = try TwilioCallRequest.parse(form)
        let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? request.headers[HTTPField.Name("I-Twilio-Idempotency-Token")!]
        if let key, key.isEmpty || key.count > 255 || !key.utf8.allSatisfy({ (33...126).contains($0) }) { throw APIError.invalidIdempotencyKey }
        var new = CallStore.NewCall(
            id: newUUID(), accountID: account.id, to: parsed.to, from: parsed.from, url: parsed.url ?? "", statusCallback: parsed.statusCallback,
            statusCallbackEvents: parsed.statusCallbackEvents, timeout: parsed.timeout, timeLimit: parsed.timeLimit, idempotencyKey: key,
            requestHash: key == nil ? nil : parsed.digest)
        new.api = Self.version
        new.twiml = parsed.twiml
        new.method = parsed.method
        new.callbackMethod = parsed.statusCallbackMethod
        new.paced = true
        let outcome: CallStore.InsertOutcome
        do {
            outcome = try await inserter.insert(new, limitConcurrency: true)
        } catch {
            context.logger.error("call insert failed", metadata: ["error": "\(error)"])
            throw APIError.storeUnavailable
        }
        switch outcome {
        case .created(let call):
            context.logger.info("call queued", metadata: ["call": "\(call.id)", "to": "\(call.to)", "api": "\(Self.version)"])
            await publisher.publish(call)
            return json(TwilioCallResource(call: call, now: Self.now()), status: .created)
        case .replayed(let call):
            let fresh = (try? await calls.get(account: account.id, id: call.id)) ?? call
            return json(TwilioCallResource(call: fresh, now: Self.now()), status: .created, headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
        case .keyReused:
            throw APIError.idempotencyKeyReused
        case .overLimit(let limit):
            throw APIError.tooManyCalls(limit)
        }
    }

    func fetch(_ request: Request, _ context: APIContext) async throws -> Response {
        let call = try await ownCall(request, context)
        return json(TwilioCallResource(call: call, now: Self.now()))
    }

    /// `Status=canceled` ends a queued or ringing call (an answered one goes on);
    /// `Status=completed` ends it whatever its state; `Url`, `Method` or `Twiml` point it at new
    /// instructions. On a call that is over, a status change does nothing and a redirect is
    /// refused (Twilio's 21220).
    func update(_ request: Request, _ context: APIContext) async throws -> Response {
        let account = context.account!.id
        var call = try await ownCall(request, context)
        let form = try await formBody(request, context)
        let status = form["Status"].flatMap { $0.isEmpty ? nil : $0 }
        if let status, status != "canceled", status != "completed" { throw APIError.Twilio.invalid("Status", "must be canceled or completed") }
        let (url, twiml) = try TwilioCallRequest.instructions(form)
        let method = form["Method"].flatMap { $0.isEmpty ? nil : $0 } == nil ? nil : try TwilioCallRequest.httpMethod(form, "Method")
        let over = CallStore.finalStatuses.contains(call.status)
        if url != nil || twiml != nil || method != nil {
            guard !over, let redirected = try await store({ try await calls.redirect(account: account, id: call.id, url: url, method: method, twiml: twiml) })
            else { throw APIError.Twilio.notRedirectable }
            call = redirected
        }
        if let status, !over {
            if let canceled = try await store({ try await calls.cancelQueued(account: account, id: call.id) }) {
                try? await publisher.publishCancel(canceled)
                call = canceled
            } else if status == "completed" || call.status == "ringing" {
                do {
                    try await publisher.publishCancel(call)
                } catch {
                    throw APIError(.serviceUnavailable, code: 25002, "The job queue is unavailable; retry the update")
                }
            }
        }
        return json(TwilioCallResource(call: call, now: Self.now()))
    }

    func delete(_ request: Request, _ context: APIContext) async throws -> Response {
        let account = context.account!.id
        guard let id = callID(context) else { throw APIError.Twilio.notFound(request.uri.path) }
        switch try await store({ try await calls.delete(account: account, id: id) }) {
        case .deleted: return Response(status: .noContent)
        case .notFound: throw APIError.Twilio.notFound(request.uri.path)
        case .notFinal(let status): throw APIError.Twilio.notDeletable(status)
        }
    }

    /// Twilio's paging: `PageSize` (1–1000, default 50), `Page`, `PageToken`; filters `To`,
    /// `From`, `Status`, `StartTime`, `EndTime` and their `<` / `>` forms (inclusive; a date
    /// alone means its whole UTC day). Every page URI carries the filters and the page size,
    /// since Twilio's clients request the next page with no parameters of their own.
    func list(_ request: Request, _ context: APIContext) async throws -> Response {
        let account = context.account!
        guard let q = FormFields.parse(request.uri.query ?? "") else { throw APIError.Twilio.badForm }
        var pageSize = 50
        if let v = q["PageSize"] {
            guard let n = Int(v), (1...1000).contains(n) else { throw APIError.Twilio.invalid("PageSize", "must be an integer from 1 to 1000") }
            pageSize = n
        }
        var page = 0
        if let v = q["Page"] {
            guard let n = Int(v), n >= 0, n <= 1_000_000 else { throw APIError.Twilio.invalid("Page", "must be a non-negative integer") }
            page = n
        }
        var cursor: String?
        if let token = q["PageToken"], !token.isEmpty {
            guard token.hasPrefix("PA") else { throw APIError.Twilio.pageTokenInvalid }
            cursor = String(token.dropFirst(2))
        }
        var filter = CallStore.Filter()
        var kept: [(String, String)] = []
        if let v = q["Status"] {
            guard CallStore.statuses.contains(v) else {
                throw APIError.Twilio.invalid("Status", "must be one of \(CallStore.statuses.joined(separator: ", "))")
            }
            filter.status = v
            kept.append(("Status", v))
        }
        for name in ["To", "From"] {
            guard let v = q[name] else { continue }
            guard isE164(v) else { throw APIError.Twilio.invalid(name, "must be an E.164 number") }
            if name == "To" { filter.to = v } else { filter.from = v }
            kept.append((name, v))
        }
        for name in ["StartTime", "EndTime"] {
            for (suffix, bound) in [("", Bound.on), ("<", .until), (">", .from)] {
                guard let v = q[name + suffix] else { continue }
                guard let (lower, upper) = Self.timeBounds(v) else {
                    throw APIError.Twilio.invalid(name + suffix, "must be a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")
                }
                let from = bound == .until ? nil : lower
                let until = bound == .from ? nil : upper
                if name == "StartTime" {
                    filter.startFrom = [filter.startFrom, from].compactMap { $0 }.max()
                    filter.startUntil = [filter.startUntil, until].compactMap { $0 }.min()
                } else {
                    filter.endFrom = [filter.endFrom, from].compactMap { $0 }.max()
                    filter.endUntil = [filter.endUntil, until].compactMap { $0 }.min()
                }
                kept.append((name + suffix, v))
            }
        }
        let parentFilter = q["ParentCallSid"].flatMap { $0.isEmpty ? nil : $0 }
        let result: CallStore.Page
        if parentFilter != nil {
            // No call here has a parent: a filter on one matches nothing.
            result = CallStore.Page(calls: [], nextCursor: nil)
            kept.append(("ParentCallSid", parentFilter!))
        } else {
            do {
                result = try await calls.list(account: account.id, filter: filter, pageSize: pageSize, cursor: cursor, offset: page * pageSize)
            } catch {
                if error.code == .decodeFailed { throw APIError.Twilio.pageTokenInvalid }
                context.logger.error("call list failed", metadata: ["error": "\(error)"])
                throw APIError.storeUnavailable
            }
        }
        let base = "\(Self.prefix)/Accounts/\(TwilioSID.make(TwilioSID.account, uuid: account.id))/Calls.json"
        func uri(page: Int, token: String?) -> String {
            var parts = kept + [("PageSize", String(pageSize)), ("Page", String(page))]
            if let token { parts.append(("PageToken", token)) }
            return base + "?" + parts.map { "\(FormFields.encode($0.0))=\(FormFields.encode($0.1))" }.joined(separator: "&")
        }
        let now = Self.now()
        let body = TwilioPage(
            calls: result.calls.map { TwilioCallResource(call: $0, now: now) }, page: page, pageSize: pageSize,
            uri: uri(page: page, token: cursor.map { "PA" + $0 }), firstPageURI: uri(page: 0, token: nil),
            nextPageURI: result.nextCursor.map { uri(page: page + 1, token: "PA" + $0) }, previousPageURI: page > 0 ? uri(page: page - 1, token: nil) : nil)
        return json(body)
    }

    enum Bound { case on, until, from }

    /// The inclusive bounds, in epoch seconds, of a date (its whole UTC day) or of a time (that second).
    static func timeBounds(_ v: String) -> (Double, Double)? {
        guard let t = TwilioTime.epochSeconds(v) else { return nil }
        return v.count == 10 ? (t, t + 86_399.999_999) : (t, t + 0.999_999)
    }

    // MARK: Helpers

    /// The form parameters of a POST: the body must be form-encoded (or empty).
    private func formBody(_ request: Request, _ context: APIContext) async throws -> FormFields {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/x-www-form-urlencoded") {
            throw APIError.Twilio.wrongContentType
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw APIError.tooLarge
        }
        guard let form = FormFields.parse(String(buffer: body)) else { throw APIError.Twilio.badForm }
        return form
    }

    private func callID(_ context: APIContext) -> String? {
        guard var sid = context.parameters.get("CallSid") else { return nil }
        if sid.hasSuffix(".json") { sid.removeLast(5) }
        return TwilioSID.uuid(sid, prefix: TwilioSID.call)
    }

    private func ownCall(_ request: Request, _ context: APIContext) async throws -> CallStore.Call {
        guard let id = callID(context), let call = try await store({ try await calls.get(account: context.account!.id, id: id) }) else {
            throw APIError.Twilio.notFound(request.uri.path)
        }
        return call
    }

    private func store<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw APIError.storeUnavailable
        }
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    private func json(_ value: some JSONWritable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        jsonResponse(value, status: status, headers: headers)
    }
}

/// A list page with exactly Twilio's keys: the records under `calls` and the paging keys
/// Twilio's clients know (one more key and they cannot tell which holds the records).
struct TwilioPage: JSONWritable {
    var calls: [TwilioCallResource]
    var page: Int
    var pageSize: Int
    var uri: String
    var firstPageURI: String
    var nextPageURI: String?
    var previousPageURI: String?

    func write(to w: inout JSONWriter) {
        let start = page * pageSize
        w.object { w in
            w.key("calls")
            w.array(calls) { w, c in c.write(to: &w) }
            w.field("end", max(start, start + calls.count - 1))
            w.field("first_page_uri", firstPageURI)
            w.field("next_page_uri", nextPageURI)
            w.field("page", page)
            w.field("page_size", pageSize)
            w.field("previous_page_uri", previousPageURI)
            w.field("start", start)
            w.field("uri", uri)
        }
    }
}
