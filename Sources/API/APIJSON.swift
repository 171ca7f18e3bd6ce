import Foundation

/// The API's JSON coders, one per use: Foundation's coders read their settings under a lock,
/// and one coder shared by every request measured slower (alternating runs of
/// `scripts/bench-api --surface v1`: 3,629–3,823 creates/s shared, 3,711–4,116 a coder each).
enum APIJSON {
    /// Bodies: keys sorted, slashes unescaped.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
