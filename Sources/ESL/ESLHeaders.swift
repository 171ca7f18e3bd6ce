/// An ordered list of `Name: value` pairs, as in an ESL frame envelope or a plain event.
/// Lookup ignores ASCII case (FreeSWITCH's own header lookup does too); order is kept for output.
public struct ESLHeaders: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)]

    public init() { fields = [] }

    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }

    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// The first value of `name`, if any.
    public subscript(_ name: String) -> String? {
        for f in fields where f.name.caseInsensitiveEquals(name) { return f.value }
        return nil
    }

    /// Appends a field (duplicates allowed, as on the wire).
    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    /// Replaces every field called `name` with one, or appends it.
    public mutating func set(_ name: String, _ value: String) {
        if let i = fields.firstIndex(where: { $0.name.caseInsensitiveEquals(name) }) {
            fields[i].value = value
            fields.removeAll { $0.name.caseInsensitiveEquals(name) && $0.value != value }
        } else {
            add(name, value)
        }
    }

    public mutating func remove(_ name: String) { fields.removeAll { $0.name.caseInsensitiveEquals(name) } }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: ESLHeaders, rhs: ESLHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for f in fields {
            hasher.combine(f.name)
            hasher.combine(f.value)
        }
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        // Native strings (all that the decoder makes): a loop over their bytes. An event's
        // lookup scans ~100 headers, so this runs thousands of times per event.
        if let r = a.withContiguousStorageIfAvailable({ pa in b.withContiguousStorageIfAvailable { pb in Self.asciiCaseEqual(pa, pb) } }),
            let r
        {
            return r
        }
        for (x, y) in zip(a, b) where x != y {
            let lx = x >= 65 && x <= 90 ? x + 32 : x
            let ly = y >= 65 && y <= 90 ? y + 32 : y
            if lx != ly { return false }
        }
        return true
    }

    private static func asciiCaseEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<a.count where a[i] != b[i] {
            let x = a[i], y = b[i]
            if (x | 0x20) != (y | 0x20) || !((x | 0x20) >= 97 && (x | 0x20) <= 122) { return false }
        }
        return true
    }
}
