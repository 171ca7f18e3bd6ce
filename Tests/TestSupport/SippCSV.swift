import Foundation

/// Reads sipp's ';'-separated statistics files (`-trace_stat`, `-trace_counts`): a header line,
/// then one row per dump; the last row holds the final (cumulative) values.
enum SippCSV {
    /// The last row of `url` as column name → value, or nil when the file has no data row yet.
    static func lastRow(_ url: URL) -> [String: String]? {
        guard let text = try? String(contentsOf: url, encoding: .isoLatin1) else { return nil }
        let lines = text.split(whereSeparator: \.isNewline).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard lines.count >= 2, let header = lines.first, let last = lines.last else { return nil }
        let names = header.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let values = last.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        guard values.count >= names.count - 1 else { return nil }
        var row: [String: String] = [:]
        for (name, value) in zip(names, values) where !name.isEmpty { row[name] = value }
        return row
    }

    /// The integer columns of the last row (sipp's counters), skipping the time columns.
    static func lastCounters(_ url: URL) -> [String: Int]? {
        lastRow(url).map { row in row.compactMapValues { Int($0) } }
    }

    /// The single file in `directory` whose name ends with `suffix` (sipp names traces
    /// `<scenario>_<pid>_<suffix>`).
    static func file(in directory: URL, endingWith suffix: String) -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.first { $0.hasSuffix(suffix) }.map { directory.appendingPathComponent($0) }
    }
}
