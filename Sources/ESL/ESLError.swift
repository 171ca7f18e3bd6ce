/// Everything that can go wrong on an Event Socket connection, with context.
public struct ESLError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: String, Sendable, Hashable {
            case frameTooLarge, malformedFrame, connectionClosed, connectFailed, authenticationFailed, rejected
            case commandFailed, invalidCommand, timeout, notConnected, notSubscribed, unexpectedReply
        }
        let base: Base
        public var description: String { base.rawValue }

        /// A frame's header block or body is bigger than the configured limit.
        public static let frameTooLarge = Code(base: .frameTooLarge)
        /// Bytes that are not an ESL frame (no `Name: value` header block, bad Content-Length).
        public static let malformedFrame = Code(base: .malformedFrame)
        /// The socket closed (or was closed) while the command was in flight.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// TCP connect failed.
        public static let connectFailed = Code(base: .connectFailed)
        /// `auth` was answered `-ERR invalid`.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// The server refused the connection (`text/rude-rejection`, ACL).
        public static let rejected = Code(base: .rejected)
        /// The server answered a command with `-ERR ...`.
        public static let commandFailed = Code(base: .commandFailed)
        /// A command contains a line break or is empty: it would be read as several commands.
        public static let invalidCommand = Code(base: .invalidCommand)
        /// No answer within the deadline.
        public static let timeout = Code(base: .timeout)
        /// A session has no live connection at the moment.
        public static let notConnected = Code(base: .notConnected)
        /// A background job result was asked for without a BACKGROUND_JOB subscription.
        public static let notSubscribed = Code(base: .notSubscribed)
        /// A frame of a kind that cannot answer the pending command.
        public static let unexpectedReply = Code(base: .unexpectedReply)
    }

    public var code: Code
    /// What was being done, and with what (the command, the reply text, the peer).
    public var context: String

    public init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
    }

    public var description: String { "ESL \(code): \(context)" }
}
