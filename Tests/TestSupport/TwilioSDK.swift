import Foundation

/// Runs a Python script against the official `twilio` package (installed in `.venv` by
/// scripts/bootstrap), with a `client` already built as a Twilio customer builds it and pointed
/// at a test API by its base URL. The script ends by printing one JSON object, returned here.
public enum TwilioSDK {
    public struct Credentials: Sendable {
        public var accountSID: String
        public var authToken: String

        public init(accountSID: String, authToken: String) {
            self.accountSID = accountSID
            self.authToken = authToken
        }

        /// `AC` + the account UUID's hex, and its signing secret.
        public init(accountID: String, secret: String) {
            self.init(accountSID: "AC" + accountID.lowercased().filter { $0 != "-" }, authToken: secret)
        }
    }

    /// `body` runs with `client`, `base`, `sid`, `token`, `json`, `sys`, `datetime` and
    /// `TwilioRestException` in scope, and `args` (the extra arguments).
    public static func run(
        _ body: String, base: String, credentials: Credentials, arguments: [String] = [], timeout: Duration = .seconds(120)
    ) async throws -> [String: Any] {
        let python = Fixtures.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else { throw TestSupportError("no \(python): run scripts/bootstrap") }
        let indented = body.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        let script = """
            import json, sys, datetime
            from twilio.rest import Client
            from twilio.base.exceptions import TwilioRestException
            base, sid, token = sys.argv[1], sys.argv[2], sys.argv[3]
            args = sys.argv[4:]
            client = Client(sid, token)
            client.api.base_url = base
            def main():
            \(indented)
            print(json.dumps(main(), default=str))
            """
        return try await JSONLineProcess.run(
            executable: python, arguments: ["-c", script, base, credentials.accountSID, credentials.authToken] + arguments, timeout: timeout,
            what: "twilio script")
    }
}
