/// One Via header value (RFC 3261 §20.42, RFC 3581 rport).
public struct Via: Sendable, Hashable {
    public enum RPort: Sendable, Hashable {
        case absent
        /// `;rport` without a value: the client asks to be answered at its source port.
        case requested
        case value(Int)
    }

    /// Upper-cased transport: UDP, TCP, TLS, SCTP, WS, WSS.
    public var transport: String
    public var host: String
    public var port: Int?
    public var branch: String?
    public var received: String?
    public var rport: RPort
    public var maddr: String?

    public init(transport: String, host: String, port: Int? = nil, branch: String? = nil, received: String? = nil, rport: RPort = .absent, maddr: String? = nil)
    {
        self.transport = transport
        self.host = host
        self.port = port
        self.branch = branch
        self.received = received
        self.rport = rport
        self.maddr = maddr
    }

    /// The branch starts with the RFC 3261 magic cookie, so it identifies a transaction by itself.
    public var hasMagicCookie: Bool { branch?.hasPrefix("z9hG4bK") ?? false }

    /// Where a response to this Via goes (RFC 3261 §18.2.2, RFC 3581 §4): received/rport first.
    public var responseTarget: (host: String, port: Int) {
        let h = maddr ?? received ?? host
        let p: Int
        if case .value(let v) = rport { p = v } else { p = port ?? (transport == "TLS" ? 5061 : 5060) }
        return (h, p)
    }
}

/// CSeq: sequence number and method (RFC 3261 §20.16).
public struct CSeq: Sendable, Hashable {
    public var number: UInt32
    public var method: SIPMethod
    public init(number: UInt32, method: SIPMethod) {
        self.number = number
        self.method = method
    }
}
