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

/// A random (version 4) UUID, lower-case. Two 64-bit draws from the system generator and a
/// table lookup: it runs once per created call, where sixteen byte-sized draws (one getrandom
/// each) and radix formatting showed up at 4 % of the API's CPU.
public func newUUID() -> String {
    var rng = SystemRandomNumberGenerator()
    let hi = ((rng.next() as UInt64) & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
    let lo = ((rng.next() as UInt64) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
    let digits: StaticString = "0123456789abcdef"
    return String(unsafeUninitializedCapacity: 36) { out in
        digits.withUTF8Buffer { digit in
            var i = 0
            for n in 0..<32 {
                if n == 8 || n == 12 || n == 16 || n == 20 {
                    out[i] = UInt8(ascii: "-")
                    i += 1
                }
                let word = n < 16 ? hi : lo
                out[i] = digit[Int((word >> UInt64(60 - 4 * (n % 16))) & 0xF)]
                i += 1
            }
        }
        return 36
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
