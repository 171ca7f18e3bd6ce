import Foundation
import Hummingbird

/// An error on the Twilio surface, in Twilio's shape: `{code, message, more_info, status}`
/// and nothing else, so Twilio's clients raise their usual `TwilioRestException` (a body
/// with `type` and `title` would be read as RFC 9457 and raise another class).
struct TwilioError: HTTPResponseError, Sendable {
    let error: APIError

    init(_ error: APIError) { self.error = error }

    var status: HTTPResponse.Status { error.status }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let object: [String: Any] = [
            "code": error.code, "message": error.message, "more_info": "https://www.twilio.com/docs/errors/\(error.code)", "status": Int(status.code),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Basic realm=\"Twilio API\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The Twilio surface's errors, with Twilio's codes where Twilio has one (listed in docs/api.md).
extension APIError {
    enum Twilio {
        static let noCredentials = APIError(.unauthorized, code: 20003, "Authentication Error - No credentials provided")
        static let badCredentials = APIError(.unauthorized, code: 20003, "Authentication Error - invalid username or password")
        static func notFound(_ path: String) -> APIError { APIError(.notFound, code: 20404, "The requested resource \(path.prefix(200)) was not found") }
        static let wrongContentType = APIError(
            .unsupportedMediaType, code: 21002, "Send the parameters as application/x-www-form-urlencoded, as Twilio's clients do")
        static let badForm = APIError(.badRequest, code: 20001, "The body is not valid application/x-www-form-urlencoded UTF-8")
        static func invalid(_ parameter: String, _ why: String) -> APIError {
            APIError(.badRequest, code: 20001, "Invalid parameter \(parameter): \(why)", field: parameter)
        }
        static let missingTo = APIError(.badRequest, code: 21201, "No 'To' number is specified", field: "To")
        static func invalidTo(_ v: String) -> APIError {
            APIError(.badRequest, code: 21211, "Invalid 'To' Phone Number: \(v.prefix(40)) (an E.164 number: + and 2 to 15 digits)", field: "To")
        }
        static let missingFrom = APIError(.badRequest, code: 21213, "No 'From' number is specified", field: "From")
        static func invalidFrom(_ v: String) -> APIError {
            APIError(.badRequest, code: 21212, "Invalid From Number (caller ID): \(v.prefix(40)) (an E.164 number: + and 2 to 15 digits)", field: "From")
        }
        static let missingURL = APIError(.badRequest, code: 21205, "Either Url or Twiml must be provided", field: "Url")
        static let invalidURL = APIError(.badRequest, code: 21205, "Url is not a valid absolute http or https URL", field: "Url")
        static let applicationSID = APIError(
            .badRequest, code: 21218, "ApplicationSid is not supported here: pass Url or Twiml", field: "ApplicationSid")
        static let twimlTooLong = APIError(.badRequest, code: 21626, "Twiml must be at most 4000 characters", field: "Twiml")
        static let invalidCallback = APIError(.badRequest, code: 21609, "StatusCallback is not a valid absolute http or https URL", field: "StatusCallback")
        static func invalidEvent(_ v: String) -> APIError {
            APIError(
                .badRequest, code: 21610, "StatusCallbackEvent must be initiated, ringing, answered or completed, not '\(v.prefix(40))'",
                field: "StatusCallbackEvent")
        }
        static let notRedirectable = APIError(.badRequest, code: 21220, "Call is not in-progress. Cannot redirect.")
        static func notDeletable(_ status: String) -> APIError {
            APIError(.conflict, code: 20009, "Cannot delete this call before it is complete (it is \(status))")
        }
        static let pageTokenInvalid = APIError(.badRequest, code: 20001, "Invalid parameter PageToken: not a token this API issued", field: "PageToken")
    }
}
