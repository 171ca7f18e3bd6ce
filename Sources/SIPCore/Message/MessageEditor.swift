public import NIOCore

/// Byte-level edits to a message, applied in one pass ("lumps", as Kamailio calls them).
///
/// A proxy inserts its Via and Record-Route, rewrites Max-Forwards and removes Route or Via
/// elements without re-serializing: every byte it does not touch goes out as it came in.
public struct MessageEditor: Sendable {
    @usableFromInline
    struct Edit: Sendable {
        var offset: Int
        var removeCount: Int
        var text: String
        var order: Int
    }

    @usableFromInline var edits: [Edit] = []

    public init() { edits.reserveCapacity(6) }

    /// Inserts `text` before the byte at `offset`. Insertions at one offset keep their order.
    public mutating func insert(_ text: String, at offset: Int) {
        edits.append(Edit(offset: offset, removeCount: 0, text: text, order: edits.count))
    }

    /// Replaces the bytes in `range` with `text`.
    public mutating func replace(_ range: Range<Int>, with text: String) {
        edits.append(Edit(offset: range.lowerBound, removeCount: range.count, text: text, order: edits.count))
    }

    /// Removes the bytes in `range`.
    public mutating func delete(_ range: Range<Int>) {
        replace(range, with: "")
    }

    public var isEmpty: Bool { edits.isEmpty }

    /// Writes `message` with the edits applied into a new buffer. Overlapping edits are a
    /// programming error of the caller; the later one is skipped rather than corrupting output.
    public func apply(to message: SIPMessage, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        let source = message.bytes
        if edits.isEmpty { return source }
        // Callers add edits in message order nearly always: sort (a copy) only when they did not.
        var ordered = true
        for i in edits.indices.dropFirst() where (edits[i - 1].offset, edits[i - 1].order) > (edits[i].offset, edits[i].order) {
            ordered = false
            break
        }
        return ordered ? write(edits, source, allocator) : write(edits.sorted { ($0.offset, $0.order) < ($1.offset, $1.order) }, source, allocator)
    }

    /// The source with `sorted` applied, in one buffer of the exact size, by plain copies.
    private func write(_ sorted: [Edit], _ source: ByteBuffer, _ allocator: ByteBufferAllocator) -> ByteBuffer {
        var total = source.readableBytes
        var cursor = 0
        for e in sorted where e.offset >= cursor {
            total += e.text.utf8.count - e.removeCount
            cursor = e.offset + e.removeCount
        }
        var out = allocator.buffer(capacity: total)
        source.withUnsafeReadableBytes { src in
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { dst in
                var at = 0
                func copy(_ bytes: UnsafeRawBufferPointer) {
                    guard !bytes.isEmpty else { return }
                    UnsafeMutableRawBufferPointer(rebasing: dst[at..<(at + bytes.count)]).copyMemory(from: bytes)
                    at += bytes.count
                }
                var cursor = 0
                for e in sorted where e.offset >= cursor {
                    if e.offset > cursor { copy(UnsafeRawBufferPointer(rebasing: src[cursor..<e.offset])) }
                    var text = e.text
                    text.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
                    cursor = e.offset + e.removeCount
                }
                if cursor < src.count { copy(UnsafeRawBufferPointer(rebasing: src[cursor...])) }
                return at
            }
        }
        return out
    }
}

extension SIPMessage {
    /// The range to delete to remove the top Via value: the whole field when it holds one
    /// value, else the first element and the comma after it (RFC 3261 §16.7 step 3).
    public var topViaRemovalRange: Range<Int> {
        let field = layout.first(.via)!
        guard topViaFieldHasMore else { return field.lineStart..<field.lineEnd }
        // Skip the comma and whitespace after the first element.
        var end = topViaRange.upperBound
        bytes.withUnsafeReadableBytes { raw in
            while end < field.valueEnd, raw[end] != UInt8(ascii: ",") { end += 1 }
            end += 1
            while end < field.valueEnd, raw[end] == 32 || raw[end] == 9 || raw[end] == 13 || raw[end] == 10 { end += 1 }
        }
        return topViaRange.lowerBound..<end
    }

    /// Ranges to delete to remove the first `count` Route elements, whole fields where every
    /// element of a field goes (RFC 3261 §16.4, §16.12).
    public func routeRemovalRanges(count: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let fields = layout.all(.route)
        var result: [Range<Int>] = []
        var i = 0
        while i < count {
            let fieldIndex = routes[i].fieldIndex
            let field = fields[fieldIndex]
            let elementsInField = routes.lazy.filter { $0.fieldIndex == fieldIndex }.count
            let firstOfField = routes.firstIndex { $0.fieldIndex == fieldIndex }!
            let removeHere = min(count, firstOfField + elementsInField) - i
            if removeHere == elementsInField {
                result.append(field.lineStart..<field.lineEnd)
            } else {
                // Remove the leading elements of this field up to the next element's start.
                let next = routes[i + removeHere].range.lowerBound
                result.append(routes[i].range.lowerBound..<next)
            }
            i += removeHere
        }
        return result
    }

    /// The whole first header field of `kind` (name to line end), if present.
    public func headerFieldRange(_ kind: HeaderKind) -> Range<Int>? {
        layout.first(kind).map { $0.lineStart..<$0.lineEnd }
    }

    /// Retry-After's delta-seconds (RFC 3261 §20.33), if present and numeric.
    public var retryAfterSeconds: Int? {
        guard let f = layout.first(.retryAfter) else { return nil }
        return bytes.withUnsafeReadableBytes { raw in
            var end = f.valueStart
            while end < f.valueEnd, raw[end] >= 48, raw[end] <= 57 { end += 1 }
            return SIPMessageParser.parseDecimal(raw, f.valueStart, end, max: 86_400)
        }
    }

    /// Where the first Via field starts: a proxy inserts its own Via line here.
    public var firstViaLineStart: Int { layout.first(.via)!.lineStart }
    /// Where the first Record-Route field starts, if any.
    public var firstRecordRouteLineStart: Int? { layout.first(.recordRoute)?.lineStart }
    /// The byte range of the Max-Forwards value, if the header is present.
    public var maxForwardsValueRange: Range<Int>? { layout.first(.maxForwards).map { $0.valueStart..<$0.valueEnd } }
}
