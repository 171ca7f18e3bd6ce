public import Hummingbird
import Foundation

/// Every error the API returns: an HTTP status and a JSON body `{code, message, field, more_info}`
/// with a stable numeric code per kind of error (listed in the README).
public struct APIError: HTTPResponseError, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var code: Int
    public var message: String
    public var field: String?

    public init(_ status: HTTPResponse.Status, code: Int, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: Any] = [
            "code": code, "message": message, "more_info": "https://github.com/switchyard/switchyard#api-errors-\(code)", "status": Int(status.code),
        ]
        object["field"] = field ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"switchyard\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    // MARK: The catalogue

    static let unauthorized = APIError(.unauthorized, code: 20003, "Authentication required: send 'Authorization: Bearer <api key>'")
    static let badKey = APIError(.unauthorized, code: 20004, "The API key is not valid")
    static func notFound(_ what: String) -> APIError { APIError(.notFound, code: 20404, "\(what) was not found") }
    static let routeNotFound = APIError(.notFound, code: 20405, "No such endpoint; see /openapi.yaml")
    static let methodNotAllowed = APIError(.methodNotAllowed, code: 20406, "This endpoint does not take that method; see /openapi.yaml")
    static let invalidJSON = APIError(.badRequest, code: 21000, "The body must be a JSON object")
    static let tooLarge = APIError(.contentTooLarge, code: 21001, "The body is larger than 64 KiB")
    static let wrongContentType = APIError(.unsupportedMediaType, code: 21002, "Send the body as application/json")
    static func unknownField(_ f: String) -> APIError { APIError(.badRequest, code: 21003, "Unknown field '\(f)'", field: f) }
    static func missing(_ f: String) -> APIError { APIError(.badRequest, code: 21004, "'\(f)' is required", field: f) }
    static func wrongType(_ f: String, _ type: String) -> APIError { APIError(.badRequest, code: 21005, "'\(f)' must be \(type)", field: f) }
    static func invalidNumber(_ f: String, _ v: String) -> APIError {
        APIError(
            .badRequest, code: f == "to" ? 21201 : 21212, "'\(f)' must be an E.164 number (+ and 2 to 15 digits, like +15551234567), not '\(v.prefix(40))'",
            field: f)
    }
    static func invalidURL(_ f: String) -> APIError {
        APIError(.badRequest, code: f == "url" ? 21205 : 21609, "'\(f)' must be an absolute http or https URL", field: f)
    }
    static func invalidEvents(_ v: String) -> APIError {
        APIError(
            .badRequest, code: 21610, "'status_callback_events' values must be initiated, ringing, answered or completed, not '\(v.prefix(40))'",
            field: "status_callback_events")
    }
    static func outOfRange(_ f: String, _ range: ClosedRange<Int>) -> APIError {
        APIError(.badRequest, code: 21220, "'\(f)' must be an integer from \(range.lowerBound) to \(range.upperBound)", field: f)
    }
    static let invalidRegion = APIError(.badRequest, code: 21221, "'region' must be 1 to 32 lower-case letters, digits or dashes", field: "region")
    static func unknownRegion(_ region: String, _ known: Set<String>) -> APIError {
        APIError(
            .badRequest, code: 21223, "'region' \(region) is not a region of this deployment (\(known.sorted().joined(separator: ", ")))", field: "region")
    }
    static let clientStateTooLong = APIError(.badRequest, code: 21222, "'client_state' must be at most 1024 characters", field: "client_state")
    static let invalidPageSize = APIError(.badRequest, code: 21230, "'page_size' must be an integer from 1 to 100", field: "page_size")
    static let invalidPageToken = APIError(.badRequest, code: 21231, "'page_token' is not a token this API issued", field: "page_token")
    static let invalidStatusFilter = APIError(
        .badRequest, code: 21232, "'status' must be one of queued, ringing, in-progress, completed, busy, failed, no-answer, canceled", field: "status")
    static let invalidIdempotencyKey = APIError(
        .badRequest, code: 22001, "'Idempotency-Key' must be 1 to 255 printable ASCII characters", field: "Idempotency-Key")
    static let idempotencyKeyReused = APIError(
        .unprocessableContent, code: 22002, "This Idempotency-Key was used with a different request in the last 24 hours", field: "Idempotency-Key")
    static func notCancelable(_ status: String) -> APIError { APIError(.conflict, code: 23001, "The call is \(status) and can no longer be canceled") }
    static func tooManyCalls(_ limit: Int) -> APIError {
        APIError(.tooManyRequests, code: 20429, "Too Many Requests: the account has \(limit) calls queued, ringing or in progress, its limit")
    }
    static let storeUnavailable = APIError(.serviceUnavailable, code: 25001, "The call store is unavailable; retry with the same Idempotency-Key")
    static let internalError = APIError(.internalServerError, code: 25000, "Internal error")
}
