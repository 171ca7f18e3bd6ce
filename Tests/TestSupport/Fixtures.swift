public import Foundation

/// The repository's `Fixtures/` folder, found from this file's path so tests run from any
/// working directory.
public enum Fixtures {
    /// The repository root: the closest directory above this file that holds Package.swift.
    public static let repositoryRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        preconditionFailure("no Package.swift above \(#filePath)")
    }()

    /// `Fixtures/` in the repository.
    public static var root: URL { repositoryRoot.appendingPathComponent("Fixtures") }

    /// The URL of `relativePath` under `Fixtures/` (for example `sip/valid/invite-sdp.sip`).
    public static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    /// The exact bytes of a fixture file.
    public static func bytes(_ relativePath: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(relativePath)))
    }

    /// The text of a fixture file (UTF-8).
    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }

    /// Relative paths (`sip/malformed/empty.sip`) of the files in `folder` ending in `.ext`, sorted.
    public static func files(in folder: String, withExtension ext: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(folder).path)
            .filter { $0.hasSuffix("." + ext) }
            .sorted()
            .map { "\(folder)/\($0)" }
    }

    /// Decodes a JSON fixture.
    public static func json<T: Decodable>(_ relativePath: String, as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(relativePath)))
    }
}
