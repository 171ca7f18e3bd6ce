/// Why a SIP message could not be accepted.
///
/// `code` says what kind of failure it is; `canRespond` says whether enough of the message was
/// understood to send an error response back (RFC 3261 §16.3: a request with a usable top Via gets
/// a 400; anything less is dropped and counted).
public struct SIPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable {
            case empty, tooLarge, tooManyHeaders, headerSectionTooLarge, noHeaderTerminator
            case badStartLine, unsupportedVersion, syntax, missingHeader, badHeaderValue
            case bodyTruncated, cseqMethodMismatch
        }
        fileprivate let base: Base
        public var description: String { base.rawValue }

        /// Zero bytes, or only whitespace (a keep-alive that slipped through).
        public static let empty = Code(base: .empty)
        /// The message is longer than `SIPLimits.maxMessageSize`.
        public static let tooLarge = Code(base: .tooLarge)
        /// More header lines than `SIPLimits.maxHeaderCount`.
        public static let tooManyHeaders = Code(base: .tooManyHeaders)
        /// The header section is longer than `SIPLimits.maxHeaderSectionSize`.
        public static let headerSectionTooLarge = Code(base: .headerSectionTooLarge)
        /// No empty line ends the header section.
        public static let noHeaderTerminator = Code(base: .noHeaderTerminator)
        /// The first line is neither a request line nor a status line.
        public static let badStartLine = Code(base: .badStartLine)
        /// A SIP version other than SIP/2.0 (answered 505).
        public static let unsupportedVersion = Code(base: .unsupportedVersion)
        /// libosip2 rejected the message.
        public static let syntax = Code(base: .syntax)
        /// A header RFC 3261 §8.1.1 requires is missing.
        public static let missingHeader = Code(base: .missingHeader)
        /// A header is present but its value is unusable (Max-Forwards "abc", CSeq without number...).
        public static let badHeaderValue = Code(base: .badHeaderValue)
        /// Content-Length says more bytes than the datagram holds (RFC 3261 §18.3).
        public static let bodyTruncated = Code(base: .bodyTruncated)
        /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
        public static let cseqMethodMismatch = Code(base: .cseqMethodMismatch)
    }

    public let code: Code
    /// Human text, suitable for a reason phrase (ASCII, no CR/LF).
    public let reason: String
    /// The request could be answered: its top Via, Call-ID, CSeq, From and To were readable.
    public let canRespond: Bool
    /// 400 for syntax errors, 505 for a version we do not speak, 413 for a too-large message.
    public let statusCode: Int

    public init(_ code: Code, _ reason: String, canRespond: Bool = false, statusCode: Int = 400) {
        self.code = code
        self.reason = reason
        self.canRespond = canRespond
        self.statusCode = statusCode
    }

    public var description: String { "SIPParseError(\(code): \(reason))" }
}

/// Limits checked while scanning, before any byte reaches libosip2 (which accepts a 1 MB header
/// and spends 30 ms on 5,000 Via headers: see shared/C-LIBRARIES.md).
public struct SIPLimits: Sendable, Hashable {
    public var maxMessageSize: Int
    public var maxHeaderSectionSize: Int
    public var maxHeaderCount: Int
    public var maxBodySize: Int

    public init(maxMessageSize: Int = 65_535, maxHeaderSectionSize: Int = 16_384, maxHeaderCount: Int = 128, maxBodySize: Int = 32_768) {
        self.maxMessageSize = maxMessageSize
        self.maxHeaderSectionSize = maxHeaderSectionSize
        self.maxHeaderCount = maxHeaderCount
        self.maxBodySize = maxBodySize
    }

    public static let `default` = SIPLimits()
}
