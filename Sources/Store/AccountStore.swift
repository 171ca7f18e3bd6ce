/// API accounts. A key is shown once at creation; only its SHA-256 (computed by PostgreSQL) is
/// stored, with a short prefix to tell keys apart in logs.
public struct AccountStore: Sendable {
    public struct Account: Sendable, Hashable {
        public var id: String
        public var name: String
        public var keyPrefix: String
        /// What status callbacks are signed with (Twilio's AuthToken); set at creation.
        public var signingSecret: String?
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Creates an account and returns it with its new key (`sy_live_` + 40 hex digits).
    public func create(name: String) async throws(StoreError) -> (account: Account, key: String) {
        var rng = SystemRandomNumberGenerator()
        let secret = (0..<5).map { _ in String(rng.next() as UInt64, radix: 16).leftPadded(16) }.joined().prefix(40)
        let key = "sy_live_\(secret)"
        let prefix = String(key.prefix(14))
        let id = newUUID()
        let signing = (0..<4).map { _ in String(rng.next() as UInt64, radix: 16).leftPadded(16) }.joined()
        try await pool.query(
            "INSERT INTO accounts (id, name, key_prefix, key_hash, signing_secret) VALUES ($1::uuid, $2, $3, sha256(convert_to($4, 'UTF8')), $5)",
            [id, name, prefix, key, signing])
        return (Account(id: id, name: name, keyPrefix: prefix, signingSecret: signing), key)
    }

    /// The secret an account's status callbacks are signed with.
    public func signingSecret(account: String) async throws(StoreError) -> String? {
        guard isUUID(account) else { return nil }
        return try await pool.query("SELECT signing_secret FROM accounts WHERE id = $1::uuid", [account]).first?["signing_secret"]
    }

    /// The account whose id is `id` and whose signing secret (Twilio's AuthToken) is `token`,
    /// or nil. The comparison takes the same time wherever the strings differ.
    public func authenticate(accountID id: String, token: String) async throws(StoreError) -> Account? {
        guard isUUID(id) else { return nil }
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute("account_by_id", "SELECT id::text, name, key_prefix, signing_secret FROM accounts WHERE id = $1::uuid", [id])
        }
        guard let row = r.first, let secret = row["signing_secret"] else { return nil }
        let a = Array(secret.utf8), b = Array(token.utf8)
        var diff = a.count == b.count ? 0 : 1
        for i in 0..<min(a.count, b.count) { diff |= Int(a[i] ^ b[i]) }
        guard diff == 0 else { return nil }
        return Account(id: try row.string("id"), name: try row.string("name"), keyPrefix: try row.string("key_prefix"), signingSecret: secret)
    }

    /// The account a key belongs to, or nil.
    public func authenticate(key: String) async throws(StoreError) -> Account? {
        let r = try await pool.withConnection { (c: PostgresConnectionHandle) throws(StoreError) -> QueryResult in
            try c.execute("account_by_key", "SELECT id, name, key_prefix FROM accounts WHERE key_hash = sha256(convert_to($1, 'UTF8'))", [key])
        }
        guard let row = r.first else { return nil }
        return Account(id: try row.string("id"), name: try row.string("name"), keyPrefix: try row.string("key_prefix"))
    }

    /// Sets an account's pacing and concurrency limits (`switchyard accounts limits`, tests).
    public func setLimits(account: String, callsPerSecond: Double?, maxConcurrentCalls: Int?) async throws(StoreError) {
        guard isUUID(account) else { throw StoreError(.queryFailed, "'\(account.prefix(40))' is not an account id", context: "set_limits") }
        let r = try await pool.query(
            """
            UPDATE accounts SET calls_per_second = coalesce($2::double precision, calls_per_second),
                                max_concurrent_calls = coalesce($3::int, max_concurrent_calls)
            WHERE id = $1::uuid RETURNING id
            """, [account, callsPerSecond.map { String($0) }, maxConcurrentCalls.map(String.init)])
        guard !r.rows.isEmpty else { throw StoreError(.queryFailed, "no account \(account)", context: "set_limits") }
    }
}

/// A random (version 4) UUID, lower-case.
public func newUUID() -> String {
    var rng = SystemRandomNumberGenerator()
    var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    let hex = bytes.map { String($0, radix: 16).leftPadded(2) }.joined()
    let c = Array(hex)
    return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
