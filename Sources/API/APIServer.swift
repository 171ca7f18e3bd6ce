public import Bus
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
public import Store

/// The call API (`switchyard api`): routes, auth, validation, idempotency, pagination.
public struct APIServer: Sendable {
    public let accounts: AccountStore
    public let calls: CallStore
    public let cdrs: CDRStore
    public let publisher: CallPublisher
    /// Concurrent creates share a transaction.
    let inserter: CreateBatcher
    public let pool: PostgresPool
    public let bus: NATSBus
    /// Renders `/metrics` (the executable owns the Prometheus registry).
    public let metricsText: @Sendable () -> String
    public let logger: Logger
    /// The regions of `regions.yaml`: a call's `region` must be one of them. Nil: not checked.
    public let regions: Set<String>?

    public init(
        pool: PostgresPool, bus: NATSBus, logger: Logger, regions: Set<String>? = nil, metricsText: @escaping @Sendable () -> String = { "" }
    ) {
        self.pool = pool
        self.bus = bus
        self.accounts = AccountStore(pool: pool)
        self.calls = CallStore(pool: pool)
        self.cdrs = CDRStore(pool: pool)
        self.publisher = CallPublisher(bus: bus, calls: calls, logger: logger)
        self.inserter = CreateBatcher(calls: calls)
        self.metricsText = metricsText
        self.logger = logger
        self.regions = regions
    }

    /// Every route, as the OpenAPI document lists them (a test compares the two).
    public static let routes: [(method: String, path: String)] = [
        ("POST", "/v1/calls"), ("GET", "/v1/calls"), ("GET", "/v1/calls/{id}"), ("POST", "/v1/calls/{id}/cancel"), ("GET", "/v1/calls/{id}/cdr"),
        ("GET", "/v1/calls/{id}/events"),
        ("POST", "/2010-04-01/Accounts/{AccountSid}/Calls.json"), ("GET", "/2010-04-01/Accounts/{AccountSid}/Calls.json"),
        ("GET", "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json"), ("POST", "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json"),
        ("DELETE", "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json"),
        ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/openapi.yaml"),
    ]

    public func router() -> Router<APIContext> {
        let router = Router(context: APIContext.self)
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.get("healthz") { _, _ in try await self.health() }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: self.metricsText())))
        }
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        let v1 = router.group("v1").add(middleware: AuthMiddleware(accounts: accounts))
        v1.post("calls") { request, context in try await self.create(request, context) }
        v1.get("calls") { request, context in try await self.list(request, context) }
        v1.get("calls/:id") { _, context in try await self.get(context) }
        v1.post("calls/:id/cancel") { _, context in try await self.cancel(context) }
        v1.get("calls/:id/cdr") { _, context in try await self.cdr(context) }
        v1.get("calls/:id/events") { _, context in try await self.events(context) }
        TwilioCalls(calls: calls, inserter: inserter, publisher: publisher, accounts: accounts).add(to: router)
        return router
    }

    // MARK: Handlers

    func create(_ request: Request, _ context: APIContext) async throws -> Response {
        let account = context.account!
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") { throw APIError.wrongContentType }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: context.maxUploadSize)
        } catch {
            throw APIError.tooLarge
        }
        let data = Data(buffer: body)
        let key = request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key, key.isEmpty || key.count > 255 || !key.utf8.allSatisfy({ (33...126).contains($0) }) { throw APIError.invalidIdempotencyKey }
        let parsed = try CallRequest.parse(data)
        if let region = parsed.region, let regions, !regions.contains(region) { throw APIError.unknownRegion(region, regions) }
        let new = CallStore.NewCall(
            id: newUUID(), accountID: account.id, to: parsed.to, from: parsed.from, url: parsed.url, statusCallback: parsed.statusCallback,
            statusCallbackEvents: parsed.statusCallbackEvents, timeout: parsed.timeout, timeLimit: parsed.timeLimit, region: parsed.region,
            clientState: parsed.clientState, idempotencyKey: key, requestHash: key == nil ? nil : Self.digest(parsed))
        let outcome: CallStore.InsertOutcome
        do {
            outcome = try await inserter.insert(new, limitConcurrency: false)
        } catch {
            context.logger.error("call insert failed", metadata: ["error": "\(error)"])
            throw APIError.storeUnavailable
        }
        switch outcome {
        case .created(let call):
            context.logger.info("call queued", metadata: ["call": "\(call.id)", "to": "\(call.to)"])
            await publisher.publish(call)
            return json(CallResource(call), status: .created, headers: [.location: "/v1/calls/\(call.id)"])
        case .replayed(let call):
            let fresh = (try? await calls.get(account: account.id, id: call.id)) ?? call
            return json(
                CallResource(fresh), status: .created, headers: [HTTPField.Name("Idempotent-Replayed")!: "true", .location: "/v1/calls/\(call.id)"])
        case .keyReused:
            throw APIError.idempotencyKeyReused
        case .overLimit(let limit):
            throw APIError.tooManyCalls(limit)
        }
    }

    func get(_ context: APIContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard let call = try await storeCall({ try await calls.get(account: context.account!.id, id: id) }) else {
            throw APIError.notFound("Call \(id.prefix(64))")
        }
        return json(CallResource(call))
    }

    func list(_ request: Request, _ context: APIContext) async throws -> Response {
        let q = request.uri.queryParameters
        var pageSize = 50
        if let s = q["page_size"] {
            guard let n = Int(String(s)), (1...100).contains(n) else { throw APIError.invalidPageSize }
            pageSize = n
        }
        let status = q["status"].map(String.init)
        if let status, !CallStore.statuses.contains(status) { throw APIError.invalidStatusFilter }
        let to = q["to"].map(String.init)
        if let to, !isE164(to) { throw APIError.invalidNumber("to", to) }
        let from = q["from"].map(String.init)
        if let from, !isE164(from) { throw APIError.invalidNumber("from", from) }
        let token = q["page_token"].map(String.init)
        let page: CallStore.Page
        do {
            page = try await calls.list(account: context.account!.id, status: status, to: to, from: from, pageSize: pageSize, cursor: token)
        } catch {
            if error.code == .decodeFailed { throw APIError.invalidPageToken }
            context.logger.error("call list failed", metadata: ["error": "\(error)"])
            throw APIError.storeUnavailable
        }
        struct PageBody: JSONWritable {
            var calls: [CallResource]
            var page_size: Int
            var next_page_token: String?
            var next_page_uri: String?
            func write(to w: inout JSONWriter) {
                w.object { w in
                    w.key("calls")
                    w.array(calls) { w, c in c.write(to: &w) }
                    w.field("next_page_token", next_page_token)
                    w.field("next_page_uri", next_page_uri)
                    w.field("page_size", page_size)
                }
            }
        }

        var nextURI: String?
        if let next = page.nextCursor {
            var parts = ["page_size=\(pageSize)", "page_token=\(next)"]
            if let status { parts.append("status=\(status)") }
            if let to { parts.append("to=\(to.replacingOccurrences(of: "+", with: "%2B"))") }
            if let from { parts.append("from=\(from.replacingOccurrences(of: "+", with: "%2B"))") }
            nextURI = "/v1/calls?" + parts.joined(separator: "&")
        }
        return json(PageBody(calls: page.calls.map(CallResource.init), page_size: pageSize, next_page_token: page.nextCursor, next_page_uri: nextURI))
    }

    func cancel(_ context: APIContext) async throws -> Response {
        let account = context.account!.id
        let id = context.parameters.get("id") ?? ""
        if let canceled = try await storeCall({ try await calls.cancelQueued(account: account, id: id) }) {
            // The orchestrator may already hold the job: tell it too.
            try? await publisher.publishCancel(canceled)
            return json(CallResource(canceled))
        }
        guard let call = try await storeCall({ try await calls.get(account: account, id: id) }) else { throw APIError.notFound("Call \(id.prefix(64))") }
        guard !CallStore.finalStatuses.contains(call.status) else { throw APIError.notCancelable(call.status) }
        do {
            try await publisher.publishCancel(call)
        } catch {
            throw APIError(.serviceUnavailable, code: 25002, "The job queue is unavailable; retry the cancel")
        }
        return json(CallResource(call), status: .accepted)
    }

    func cdr(_ context: APIContext) async throws -> Response {
        let account = context.account!.id
        let id = context.parameters.get("id") ?? ""
        guard (try await storeCall({ try await calls.get(account: account, id: id) })) != nil else { throw APIError.notFound("Call \(id.prefix(64))") }
        let rows: [CDRStore.CDR]
        do {
            rows = try await cdrs.forCall(account: account, callID: id)
        } catch {
            throw APIError.storeUnavailable
        }
        struct Body: Encodable { var cdrs: [CDRStore.CDR] }
        return try json(Body(cdrs: rows))
    }

    /// The call's event log: placement attempts (node, region, result, milliseconds), status
    /// changes with their causes, reconciles and callback deliveries, oldest first.
    func events(_ context: APIContext) async throws -> Response {
        let account = context.account!.id
        let id = context.parameters.get("id") ?? ""
        let rows: [CallStore.Event]?
        do {
            rows = try await calls.events(account: account, id: id)
        } catch {
            throw APIError.storeUnavailable
        }
        guard let rows else { throw APIError.notFound("Call \(id.prefix(64))") }
        struct Entry: Encodable {
            var at: String, kind: String, node: String?, region: String?, result: String, elapsed_ms: Int?, detail: String?
        }
        struct Body: Encodable { var events: [Entry] }
        return try json(
            Body(
                events: rows.map {
                    Entry(at: $0.at, kind: $0.kind, node: $0.node, region: $0.region, result: $0.result, elapsed_ms: $0.elapsedMs, detail: $0.detail)
                }))
    }

    func health() async throws -> Response {
        var checks: [String: String] = [:]
        do {
            try await pool.ping()
            checks["postgres"] = "ok"
        } catch {
            checks["postgres"] = "\(error)"
        }
        checks["nats"] = bus.isConnected ? "ok" : "disconnected"
        let healthy = checks.values.allSatisfy { $0 == "ok" }
        let data = try JSONSerialization.data(withJSONObject: ["status": healthy ? "ok" : "degraded", "checks": checks], options: [.sortedKeys])
        return Response(
            status: healthy ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: Helpers

    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            logger.error("store failed", metadata: ["error": "\(error)"])
            throw APIError.storeUnavailable
        }
    }

    private func json(_ value: some JSONWritable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        jsonResponse(value, status: status, headers: headers)
    }

    private func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: try APIJSON.encoder.encode(value))))
    }

    /// A digest of the validated request (field order and spacing do not matter).
    static func digest(_ r: CallRequest) -> String {
        let canonical = [
            r.to, r.from, r.url, r.statusCallback ?? "", r.statusCallbackEvents.joined(separator: ","), String(r.timeout),
            r.timeLimit.map(String.init) ?? "", r.region ?? "", r.clientState ?? "",
        ].joined(separator: "\u{1F}")
        return requestDigest(canonical)
    }
}
