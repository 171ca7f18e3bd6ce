import Store
import Testing

/// Call and account ids: lower-case version 4 UUIDs that PostgreSQL's uuid type reads back as written.
@Suite("newUUID")
struct UUIDTests {
    @Test("is 36 lower-case hex digits and dashes, version 4, RFC 4122 variant, and does not repeat")
    func format() {
        var seen = Set<String>()
        for _ in 0..<2000 {
            let id = newUUID()
            #expect(isUUID(id), "\(id)")
            let chars = Array(id)
            #expect(chars.count == 36)
            #expect(chars[14] == "4", "version nibble: \(id)")
            #expect("89ab".contains(chars[19]), "variant bits: \(id)")
            #expect(id == id.lowercased())
            seen.insert(id)
        }
        #expect(seen.count == 2000)
        // Every hex digit shows up in every random position over 2000 draws (a stuck nibble fails).
        let ids = Array(seen).map(Array.init)
        for position in 0..<36 where ![8, 13, 14, 18, 19, 23].contains(position) {
            #expect(Set(ids.map { $0[position] }).count == 16, "position \(position)")
        }
    }
}
