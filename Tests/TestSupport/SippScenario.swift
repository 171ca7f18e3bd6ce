public import Foundation

/// A sipp scenario file, optionally with literal placeholders replaced (the bench's uac.xml has
/// `@PAUSE@` where the call's hold goes).
public struct SippScenario: Sendable {
    public var source: URL
    public var replacements: [String: String]

    public init(source: URL, replacements: [String: String] = [:]) {
        self.source = source
        self.replacements = replacements
    }

    /// A scenario from `Fixtures/sipp/`.
    public static func fixture(_ fileName: String, replacing replacements: [String: String] = [:]) -> SippScenario {
        SippScenario(source: Fixtures.url("sipp/\(fileName)"), replacements: replacements)
    }

    /// The bench caller, `uac.xml` (INVITE, 200, ACK, hold, BYE, 200; follows Record-Route), with
    /// a fixed hold between ACK and BYE.
    public static func benchCaller(holdMilliseconds: Int) -> SippScenario {
        fixture("uac.xml", replacing: ["@PAUSE@": #"<pause milliseconds="\#(holdMilliseconds)"/>"#])
    }

    /// The file name sipp sees (its trace files are named after it).
    public var fileName: String { source.lastPathComponent }

    /// Writes the scenario, placeholders replaced, into `directory`.
    func write(into directory: URL) throws {
        var text = try String(contentsOf: source, encoding: .isoLatin1)
        for (placeholder, value) in replacements {
            guard text.contains(placeholder) else {
                throw TestSupportError("\(source.path) has no placeholder \(placeholder)")
            }
            text = text.replacingOccurrences(of: placeholder, with: value)
        }
        try text.write(to: directory.appendingPathComponent(fileName), atomically: true, encoding: .isoLatin1)
    }
}
