import Foundation

/// The `switchyard` executable under test: `$SWITCHYARD_BIN` if set, else the debug build
/// `.build/debug/switchyard` of this repository.
public enum SwitchyardBinary {
    /// The path of the binary, or a `TestSupportError` that says how to get one.
    public static func path() throws -> String {
        if let override = ProcessInfo.processInfo.environment["SWITCHYARD_BIN"], !override.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: override) else {
                throw TestSupportError("SWITCHYARD_BIN=\(override) is not an executable file")
            }
            return override
        }
        let path = Fixtures.repositoryRoot.appendingPathComponent(".build/debug/switchyard").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSupportError(
                "switchyard binary not found at \(path): run `swift build` first (or set SWITCHYARD_BIN to a built binary)"
            )
        }
        return path
    }
}
