/// The parts of a SIP/SIPS URI a proxy routes on (RFC 3261 §19.1). Other schemes (tel:, ...)
/// keep only `scheme`.
public struct SIPURI: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var user: String?
    public var host: String
    public var port: Int?
    /// The `transport` URI parameter, lower-cased (`udp`, `tcp`, `tls`), if any.
    public var transport: String?
    /// The `lr` parameter is present (loose routing, RFC 3261 §19.1.1).
    public var lr: Bool
    /// The `maddr` parameter, if any.
    public var maddr: String?

    public init(scheme: String = "sip", user: String? = nil, host: String, port: Int? = nil, transport: String? = nil, lr: Bool = false, maddr: String? = nil) {
        self.scheme = scheme
        self.user = user
        self.host = host
        self.port = port
        self.transport = transport
        self.lr = lr
        self.maddr = maddr
    }

    /// sip: or sips: (case-insensitive).
    public var isSIP: Bool {
        let s = scheme.lowercased()
        return s == "sip" || s == "sips"
    }

    public var description: String {
        var s = "\(scheme):"
        if let user { s += "\(user)@" }
        s += host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        if let port { s += ":\(port)" }
        if let transport { s += ";transport=\(transport)" }
        if lr { s += ";lr" }
        return s
    }
}
