/// An ordered list of `Name: value` pairs, as in an ESL frame envelope or a plain event.
/// Lookup ignores ASCII case (FreeSWITCH's own header lookup does too); order is kept for output.
public struct ESLHeaders: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// Headers built field by field (commands, replies, the emulator's events).
    private var stored: [(name: String, value: String)]
    /// Or an event as it came off the wire: its text and where each line's name and value are,
    /// a value decoded only when asked for (`ESLEvent.parsePlain`). A worker reads a dozen of an
    /// event's hundred headers; making Strings of all of them was most of its parsing cost.
    private var lines: ESLHeaderLines?

    public init() { stored = [] }

    public init(_ fields: [(String, String)]) { stored = fields.map { (name: $0.0, value: $0.1) } }

    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    init(lines: ESLHeaderLines) {
        stored = []
        self.lines = lines
    }

    /// Every field, in order.
    public var fields: [(name: String, value: String)] { lines?.fields ?? stored }

    /// The first value of `name`, if any.
    public subscript(_ name: String) -> String? {
        if let lines { return lines.value(named: name) }
        for f in stored where f.name.caseInsensitiveEquals(name) { return f.value }
        return nil
    }

    /// Before a change, lines become fields.
    private mutating func materialize() {
        if let lines {
            stored = lines.fields
            self.lines = nil
        }
    }

    /// Appends a field (duplicates allowed, as on the wire).
    public mutating func add(_ name: String, _ value: String) {
        materialize()
        stored.append((name: name, value: value))
    }

    /// Replaces every field called `name` with one, or appends it.
    public mutating func set(_ name: String, _ value: String) {
        materialize()
        if let i = stored.firstIndex(where: { $0.name.caseInsensitiveEquals(name) }) {
            stored[i].value = value
            stored.removeAll { $0.name.caseInsensitiveEquals(name) && $0.value != value }
        } else {
            add(name, value)
        }
    }

    public mutating func remove(_ name: String) {
        materialize()
        stored.removeAll { $0.name.caseInsensitiveEquals(name) }
    }

    public var count: Int { lines?.count ?? stored.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: ESLHeaders, rhs: ESLHeaders) -> Bool {
        let l = lhs.fields, r = rhs.fields
        return l.count == r.count && zip(l, r).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for f in fields {
            hasher.combine(f.name)
            hasher.combine(f.value)
        }
    }
}

/// The header lines of a `text/event-plain` event: the text and, per line, where its name and
/// its (URL-encoded) value are. Immutable.
final class ESLHeaderLines: Sendable {
    struct Line: Sendable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
        /// The value holds a '%': it is decoded when read.
        var encoded: Bool
    }

    /// Native (contiguous UTF-8), so `lines` index its bytes.
    let text: String
    let lines: [Line]

    init(text: String, lines: [Line]) {
        self.text = text
        self.lines = lines
    }

    var count: Int { lines.count }

    private func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = text.utf8.withContiguousStorageIfAvailable(body) { return r }
        return Array(text.utf8).withUnsafeBufferPointer(body)
    }

    private static func value(_ line: Line, _ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let v = UnsafeBufferPointer(rebasing: bytes[Int(line.valueStart)..<Int(line.valueEnd)])
        return line.encoded ? ESLEvent.urlDecode(v) : String(decoding: v, as: UTF8.self)
    }

    /// The decoded value of the first line called `name` (ASCII case ignored), if any.
    func value(named name: String) -> String? {
        var name = name
        return name.withUTF8 { wanted in
            withBytes { bytes in
                for line in lines where Int(line.nameEnd - line.nameStart) == wanted.count {
                    let start = Int(line.nameStart)
                    if Self.foldedEqual(UnsafeBufferPointer(rebasing: bytes[start..<(start + wanted.count)]), wanted) {
                        return Self.value(line, bytes)
                    }
                }
                return nil
            }
        }
    }

    /// Equal but for the case of ASCII letters (as `String.caseInsensitiveEquals`).
    private static func foldedEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        for i in 0..<a.count where a[i] != b[i] {
            let x = a[i] | 0x20
            if x != (b[i] | 0x20) || x < 97 || x > 122 { return false }
        }
        return true
    }

    /// Every line as a (name, value) field.
    var fields: [(name: String, value: String)] {
        withBytes { bytes in
            lines.map { line in
                (
                    name: String(decoding: UnsafeBufferPointer(rebasing: bytes[Int(line.nameStart)..<Int(line.nameEnd)]), as: UTF8.self),
                    value: Self.value(line, bytes)
                )
            }
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
