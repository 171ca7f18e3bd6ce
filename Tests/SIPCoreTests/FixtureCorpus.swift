import Foundation
import NIOCore
import TestSupport

/// The SIP fixture corpus in Fixtures/sip, with the expectations recorded by its generator.
enum FixtureCorpus {
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

    static let expectations: [String: Expectation] = try! Fixtures.json("sip/expectations.json")

    /// Paths relative to Fixtures/sip (`valid/invite-sdp.sip`), sorted.
    static func files(_ folder: String) -> [String] {
        ((try? Fixtures.files(in: "sip/\(folder)", withExtension: "sip")) ?? []).map { String($0.dropFirst("sip/".count)) }
    }

    static func bytes(_ path: String) -> ByteBuffer {
        ByteBuffer(bytes: try! Fixtures.bytes("sip/\(path)"))
    }
}
