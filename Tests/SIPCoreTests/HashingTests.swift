import Testing
import TestSupport

@testable import SIPCore

@Suite struct HashingTests {
    @Test func helpersAgreeWithTheirStringForms() {
        var rng = SeededRandomNumberGenerator(seed: 16_777_619)
        let samples: [UInt32] = [0, 1, 9, 10, 255, 4_096, 65_535, UInt32.max] + (0..<500).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }
        for n in samples {
            let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
            var overDigits = seed
            for b in String(n).utf8 {
                overDigits ^= UInt32(b)
                overDigits &*= 16_777_619
            }
            #expect(fnv1a(decimal: n, seed: seed) == overDigits)
            let padded = String(repeating: "0", count: 8 - String(n, radix: 16).count) + String(n, radix: 16)
            #expect(hex(n) == padded)
        }
        // A native string hashes through its contiguous bytes, a bridged or substring-made one
        // through its UTF-8 view: the same value either way.
        let text = "sip:+12125551212@127.0.0.1:5060;transport=udp"
        var reference: UInt32 = 2_166_136_261
        for b in text.utf8 {
            reference ^= UInt32(b)
            reference &*= 16_777_619
        }
        #expect(fnv1a(text) == reference)
        #expect(fnv1a(String(Substring(text))) == reference)
    }
}
