/// Header values parsed moments ago, by their exact bytes, so the same value is not parsed again:
/// the From of a dialog comes in its INVITE, ACK and BYE; the Route to this proxy and the
/// Request-URI of in-dialog requests to one node are the same bytes for every call.
///
/// Parsing a value is a pure function of its bytes, so a hit returns exactly what parsing would
/// (failures included); libosip2 still parses every distinct value once. Each kind is a small
/// direct-mapped table (a new value takes its slot), so memory stays bounded whatever arrives,
/// and values longer than `maxKeyLength` are not kept. Not thread-safe: one per event loop (the
/// proxy core owns one), passed to `SIPMessageParser.parse`.
public final class SIPValueCache {
    struct Entry<Value> {
        var key: [UInt8]
        var value: Value
    }

    /// Slots per kind (a power of two).
    let slots: Int
    static let maxKeyLength = 160
    var uris: [Entry<SIPURI?>?]
    var routes: [Entry<SIPURI?>?]
    var nameAddrs: [Entry<String??>?]
    /// Via values this proxy wrote (`remember(viaPrefix:branch:as:)`): a response's top Via is one of them.
    var vias: [Entry<Via?>?]
    /// Lookups answered from the table and lookups that parsed (for tests and tuning).
    public private(set) var hits = 0
    public private(set) var misses = 0

    public init(slots: Int = 256) {
        precondition(slots > 0 && slots & (slots - 1) == 0, "slots must be a power of two")
        self.slots = slots
        uris = Array(repeating: nil, count: slots)
        routes = Array(repeating: nil, count: slots)
        nameAddrs = Array(repeating: nil, count: slots)
        vias = Array(repeating: nil, count: slots)
    }

    /// Keeps `via` as the parse of the Via value `prefix` + `branch` (no header name, no CRLF),
    /// for the responses that will carry it back. Only for a value this process wrote and whose
    /// parse it knows exactly: the parse of `prefix` + a plain branch token, with the branch put in.
    public func remember(viaPrefix prefix: String, branch: String, as via: Via) {
        var key: [UInt8] = []
        key.reserveCapacity(prefix.utf8.count + branch.utf8.count)
        key.append(contentsOf: prefix.utf8)
        key.append(contentsOf: branch.utf8)
        guard key.count <= Self.maxKeyLength else { return }
        key.withUnsafeBytes { vias[slot($0)] = Entry(key: key, value: via) }
    }

    @inline(__always)
    func slot(_ bytes: UnsafeRawBufferPointer) -> Int { Int(fnv1a(bytes) & UInt32(slots - 1)) }

    /// The value for `bytes` in `table`, parsed by `parse` (and kept) when it is not there.
    @inline(__always)
    func lookup<Value>(
        _ table: ReferenceWritableKeyPath<SIPValueCache, [Entry<Value>?]>, _ bytes: UnsafeRawBufferPointer, parse: () -> Value
    ) -> Value {
        guard bytes.count <= Self.maxKeyLength else { return parse() }
        let slot = slot(bytes)
        // Equal lengths, so both are empty or neither (and then both have storage).
        if let entry = self[keyPath: table][slot], entry.key.count == bytes.count,
            bytes.isEmpty || entry.key.withUnsafeBytes({ memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 })
        {
            hits += 1
            return entry.value
        }
        misses += 1
        let value = parse()
        self[keyPath: table][slot] = Entry(key: Array(bytes), value: value)
        return value
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
