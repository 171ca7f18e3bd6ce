/// One problem in `regions.yaml`, with the path of the offending key
/// (`regions.us-west-2.nodes[1].sip`).
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// `regions.yaml` could not be turned into a valid configuration. Lists every problem found,
/// not only the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    public var description: String {
        let noun = issues.count == 1 ? "error" : "errors"
        return "\(file): \(issues.count) \(noun)\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
