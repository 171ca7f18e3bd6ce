import Foundation
import NIOCore

/// The SIP fixture corpus in Fixtures/sip, with the expectations recorded by its generator.
enum FixtureCorpus {
    static let root: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("Fixtures/sip")
    }()

    struct Expectation: Decodable, Sendable {
        var kind: String?
        var method: String?
        var status: Int?
        var call_id: String?
        var via_count: Int?
        var route_count: Int?
        var max_forwards: Int?
        var expect: String?
    }

    static let expectations: [String: Expectation] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("expectations.json"))
        return try! JSONDecoder().decode([String: Expectation].self, from: data)
    }()

    /// Relative paths (`valid/invite-sdp.sip`) of one folder, sorted.
    static func files(_ folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)) ?? []
        return names.filter { $0.hasSuffix(".sip") }.sorted().map { "\(folder)/\($0)" }
    }

    static func bytes(_ path: String) -> ByteBuffer {
        let data = try! Data(contentsOf: root.appendingPathComponent(path))
        return ByteBuffer(bytes: data)
    }
}
