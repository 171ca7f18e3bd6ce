import CallPlane
import Foundation
import Hummingbird
import Store

/// Twilio's Basic auth, `AccountSid:AuthToken`: the account's SID (`AC` + its UUID's hex) and
/// its signing secret, the same secret its status callbacks are signed with. The `AccountSid`
/// of the path must be the caller's own; another account's is answered as not found. Accepted
/// headers are cached for 30 s, like `/v1`'s keys.
struct TwilioAuthMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let accounts: AccountStore
    let cache = KeyCache()

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.utf8.count < 512,
            header.utf8.prefix(6).lazy.map({ $0 | 0x20 }).elementsEqual("basic ".utf8)
        else {
            throw APIError.Twilio.noCredentials
        }
        var context = context
        // Accepted headers are cached as they came: a hit costs no base64 decode.
        if let cached = cache.get(header) {
            context.account = cached
        } else {
            guard let decoded = Data(base64Encoded: String(header.dropFirst(6).trimmingOWS())),
                let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
            else { throw APIError.Twilio.badCredentials }
            let sid = pair[..<colon], token = String(pair[pair.index(after: colon)...])
            guard let id = TwilioSID.uuid(sid, prefix: TwilioSID.account), !token.isEmpty else { throw APIError.Twilio.badCredentials }
            let account: AccountStore.Account?
            do {
                account = try await accounts.authenticate(accountID: id, token: token)
            } catch {
                context.logger.error("account lookup failed", metadata: ["error": "\(error)"])
                throw APIError.storeUnavailable
            }
            guard let account else { throw APIError.Twilio.badCredentials }
            cache.put(header, account)
            context.account = account
        }
        guard let pathSID = context.parameters.get("AccountSid"), TwilioSID.uuid(pathSID, prefix: TwilioSID.account) == context.account?.id else {
            throw APIError.Twilio.notFound(request.uri.path)
        }
        context.logger[metadataKey: "account"] = "\(context.account!.id)"
        return try await next(request, context)
    }
}
