#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A SIP request method. Known methods compare without allocating; others keep their text.
public enum SIPMethod: Sendable, Hashable, CustomStringConvertible {
    case invite, ack, bye, cancel, options, register, update, info, prack, subscribe, notify, refer, message, publish
    case other(String)

    public init(_ text: String) {
        switch text {
        case "INVITE": self = .invite
        case "ACK": self = .ack
        case "BYE": self = .bye
        case "CANCEL": self = .cancel
        case "OPTIONS": self = .options
        case "REGISTER": self = .register
        case "UPDATE": self = .update
        case "INFO": self = .info
        case "PRACK": self = .prack
        case "SUBSCRIBE": self = .subscribe
        case "NOTIFY": self = .notify
        case "REFER": self = .refer
        case "MESSAGE": self = .message
        case "PUBLISH": self = .publish
        default: self = .other(text)
        }
    }

    /// The method named by `bytes` (case-sensitive, RFC 3261 §7.1), without making a String for
    /// the methods a proxy sees every second.
    public init(bytes: UnsafeRawBufferPointer) {
        @inline(__always) func eq(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == bytes.count && memcmp(name.utf8Start, bytes.baseAddress!, bytes.count) == 0
        }
        switch bytes.count {
        case 3 where eq("ACK"): self = .ack
        case 3 where eq("BYE"): self = .bye
        case 6 where eq("INVITE"): self = .invite
        case 6 where eq("CANCEL"): self = .cancel
        case 6 where eq("UPDATE"): self = .update
        case 7 where eq("OPTIONS"): self = .options
        default: self = SIPMethod(String(decoding: bytes, as: UTF8.self))
        }
    }

    public var description: String {
        switch self {
        case .invite: "INVITE"
        case .ack: "ACK"
        case .bye: "BYE"
        case .cancel: "CANCEL"
        case .options: "OPTIONS"
        case .register: "REGISTER"
        case .update: "UPDATE"
        case .info: "INFO"
        case .prack: "PRACK"
        case .subscribe: "SUBSCRIBE"
        case .notify: "NOTIFY"
        case .refer: "REFER"
        case .message: "MESSAGE"
        case .publish: "PUBLISH"
        case .other(let text): text
        }
    }
}
