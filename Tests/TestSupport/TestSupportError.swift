/// A failure of a test helper (a process that would not start, a port that never answered),
/// with a message that says what to look at.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
