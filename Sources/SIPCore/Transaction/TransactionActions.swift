/// The actions one event of a transaction machine returns, in order: a collection that keeps up
/// to six inline (no event returns more) instead of an array, which cost an allocation for
/// every message a transaction saw. Built like an array (literals, `append`, `+=`).
public struct TransactionActions: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral, CustomStringConvertible {
    public typealias Element = TransactionAction
    public typealias Index = Int

    private var inline: (Element?, Element?, Element?, Element?, Element?, Element?) = (nil, nil, nil, nil, nil, nil)
    /// Beyond six (never, today): kept rather than lost.
    private var spill: [Element] = []
    public private(set) var count = 0

    static let inlineCapacity = 6

    public init() {}

    public init(arrayLiteral elements: Element...) {
        for e in elements { append(e) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "index out of range")
        switch position {
        case 0: return inline.0!
        case 1: return inline.1!
        case 2: return inline.2!
        case 3: return inline.3!
        case 4: return inline.4!
        case 5: return inline.5!
        default: return spill[position - Self.inlineCapacity]
        }
    }

    public mutating func append(_ e: Element) {
        switch count {
        case 0: inline.0 = e
        case 1: inline.1 = e
        case 2: inline.2 = e
        case 3: inline.3 = e
        case 4: inline.4 = e
        case 5: inline.5 = e
        default: spill.append(e)
        }
        count += 1
    }

    public static func += (lhs: inout TransactionActions, rhs: TransactionActions) {
        for e in rhs { lhs.append(e) }
    }

    public static func == (lhs: TransactionActions, rhs: TransactionActions) -> Bool {
        lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for e in self { hasher.combine(e) }
    }

    public var description: String { Array(self).description }
}
