import Testing
import TestSupport

@testable import SIPCore

@Suite struct HeaderScannerTests {
    /// The control-byte check as RFC 3261 §25.1 reads, one byte at a time (what the scanner did
    /// before it skipped eight bytes at a time).
    static func referenceControlByte(_ bytes: [UInt8]) -> UInt8? {
        var i = 0
        var quoted = false
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if b == UInt8(ascii: "\\"), quoted, i + 1 < bytes.count, bytes[i + 1] != 13, bytes[i + 1] != 10 {
                i += 2
                continue
            } else if b < 32 || b == 127 {
                if b == 9 || b == 10 {
                } else if b == 13, i + 1 < bytes.count, bytes[i + 1] == 10 {
                } else {
                    return b
                }
            }
            i += 1
        }
        return nil
    }

    @Test func controlByteCheckAgreesWithTheByteByByteReading() {
        var rng = SeededRandomNumberGenerator(seed: 3261)
        // Mostly printable text, with the bytes that matter sprinkled in at every offset.
        let special: [UInt8] = [0, 7, 9, 10, 13, 31, 32, 34, 92, 126, 127, 128, 200, 255]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...40, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 33...126, using: &rng) }
            for _ in 0..<Int.random(in: 0...3, using: &rng) where count > 0 {
                bytes[Int.random(in: 0..<count, using: &rng)] = special.randomElement(using: &rng)!
            }
            let found = bytes.withUnsafeBytes { HeaderScanner.controlByte($0, 0, count) }
            #expect(found == Self.referenceControlByte(bytes), "\(bytes)")
        }
    }

    @Test func aPlainLineHasNoControlByteAndEveryOtherLineIsCheckedInFull() {
        var rng = SeededRandomNumberGenerator(seed: 4475)
        let special: [UInt8] = [0, 9, 10, 13, 34, 92, 127]
        var plain = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...30, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 32...126, using: &rng) }.filter { $0 != 34 && $0 != 92 }
            if Bool.random(using: &rng), !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = special.randomElement(using: &rng)!
            }
            bytes += Bool.random(using: &rng) ? [13, 10] : [10]
            let isPlain = bytes.withUnsafeBytes { HeaderScanner.isPlainLine($0, 0, bytes.count) }
            let clean = bytes.dropLast(2).allSatisfy { $0 >= 32 && $0 != 127 && $0 != 34 && $0 != 92 } && bytes.suffix(2) == [13, 10]
            #expect(isPlain == clean, "\(bytes)")
            if isPlain {
                plain += 1
                #expect(bytes.withUnsafeBytes { HeaderScanner.controlByte($0, 0, bytes.count) } == nil)
            }
        }
        #expect(plain > 1_000)
    }

    @Test(arguments: [UInt8](0...255))
    func eachByteValueIsSeenAtEveryOffsetOfAWord(_ byte: UInt8) {
        let needs = byte < 32 || byte == 127 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
        for offset in 0..<8 {
            var word = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
            word[offset] = byte
            let w = word.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            #expect(HeaderScanner.needsLook(w) == needs, "byte \(byte) at \(offset)")
        }
    }
}
