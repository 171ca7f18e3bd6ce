/// A NATS / JetStream failure with its context.
public struct BusError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable, Hashable { case connectionFailed, publishFailed, streamFailed, consumerFailed, closed }
        let base: Base
        public var description: String { base.rawValue }
        public static let connectionFailed = Code(base: .connectionFailed)
        /// No publish acknowledgement (server down, timeout, stream refused the message).
        public static let publishFailed = Code(base: .publishFailed)
        public static let streamFailed = Code(base: .streamFailed)
        public static let consumerFailed = Code(base: .consumerFailed)
        public static let closed = Code(base: .closed)
    }

    public var code: Code
    public var message: String
    /// libnats's status text and JetStream error code, when there are some.
    public var status: String?
    public var jsErrorCode: Int?
    /// The failure may pass by itself (no responders or a timeout while a cluster elects a
    /// stream leader, a connection being re-established): worth retrying with the same message id.
    public var isTransient = false

    public init(_ code: Code, _ message: String, status: String? = nil, jsErrorCode: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.jsErrorCode = jsErrorCode
    }

    public var description: String {
        "NATS \(code): \(message)\(status.map { " (\($0))" } ?? "")\(jsErrorCode.map { $0 != 0 ? " [js \($0)]" : "" } ?? "")"
    }
}
