public import Foundation

/// A fresh directory under the system temp dir for one test's files (configs, logs, sipp
/// traces). Removed on deinit unless `SWITCHYARD_KEEP_TEST_DIRS` is set, so a failing run can
/// be inspected.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "switchyard-test") throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-XXXXXX").path
        var template = Array(base.utf8CString)
        guard let made = mkdtemp(&template) else {
            throw TestSupportError("mkdtemp(\(base)) failed: errno \(errno)")
        }
        url = URL(fileURLWithPath: String(cString: made), isDirectory: true)
    }

    public var path: String { url.path }

    /// A path inside the directory.
    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// A new subdirectory (created if missing).
    public func subdirectory(_ name: String) throws -> URL {
        let dir = url.appendingPathComponent(name, isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    deinit {
        if ProcessInfo.processInfo.environment["SWITCHYARD_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: url)
        }
    }
}
