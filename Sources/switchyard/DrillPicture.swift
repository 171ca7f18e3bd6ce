import Foundation

/// The drill at a glance, one self-contained SVG: calls per second per node (INVITEs the
/// proxies routed, from their counters), and the API's create success rate per region, with the
/// fault, the last INVITE to a dead node, the write recovery and the restore marked.
enum DrillPicture {
    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

    static func svg(
        recorder: DrillCommand.Recorder, creates: [DrillCommand.Create], faultAt: Double, detectedAt: Double?, recoveredAt: Double?,
        restoredAt: Double?, end: Double, title: String
    ) -> String {
        let width = 900.0, panel = 220.0, left = 60.0, right = 170.0, top = 40.0, gap = 60.0
        let plotW = width - left - right
        let seconds = max(1, Int(end.rounded(.up)))
        func x(_ t: Double) -> Double { left + plotW * min(max(t, 0), Double(seconds)) / Double(seconds) }

        // Calls per second per node: per 1 s bucket, the counter increase summed over proxies.
        var perNode: [String: [Double]] = [:]
        let samples = recorder.routedSamples
        var previous: [String: Double] = [:]
        for s in samples {
            let key = "\(s.proxy)|\(s.node)"
            if let p = previous[key], s.count >= p {
                let bucket = min(seconds - 1, max(0, Int(s.t)))
                perNode[s.node, default: Array(repeating: 0, count: seconds)][bucket] += s.count - p
            }
            previous[key] = s.count
        }
        let nodes = perNode.keys.sorted()
        let maxRate = max(1, perNode.values.flatMap { $0 }.max() ?? 1)

        // API success rate per second per region.
        let regions = Array(Set(creates.map(\.region))).sorted()
        var success: [String: [Double?]] = [:]
        for region in regions {
            var ok = Array(repeating: 0.0, count: seconds), all = Array(repeating: 0.0, count: seconds)
            for c in creates where c.region == region {
                let b = min(seconds - 1, max(0, Int(c.t)))
                all[b] += 1
                if c.status == 201 { ok[b] += 1 }
            }
            success[region] = zip(ok, all).map { $1 > 0 ? $0 / $1 : nil }
        }

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(top + 2 * panel + gap + 50))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15" font-weight="bold">\(escape(title))</text>

            """
        func axes(_ y0: Double, _ label: String, _ maxLabel: String) {
            out += "<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(plotW)\" height=\"\(panel)\" fill=\"none\" stroke=\"#999\"/>\n"
            out += "<text x=\"\(left)\" y=\"\(y0 - 6)\">\(escape(label))</text>\n"
            out += "<text x=\"\(left - 6)\" y=\"\(y0 + 10)\" text-anchor=\"end\">\(maxLabel)</text>\n"
            out += "<text x=\"\(left - 6)\" y=\"\(y0 + panel)\" text-anchor=\"end\">0</text>\n"
            for t in stride(from: 0, through: seconds, by: max(1, seconds / 10)) {
                out += "<text x=\"\(x(Double(t)))\" y=\"\(y0 + panel + 14)\" text-anchor=\"middle\" fill=\"#555\">\(t)s</text>\n"
            }
        }
        func marker(_ t: Double?, _ color: String, _ label: String, _ row: Int) {
            guard let t else { return }
            out += "<line x1=\"\(x(t))\" y1=\"\(top)\" x2=\"\(x(t))\" y2=\"\(top + 2 * panel + gap)\" stroke=\"\(color)\" stroke-dasharray=\"4 3\"/>\n"
            out += "<text x=\"\(x(t) + 3)\" y=\"\(top + 12 + Double(row) * 14)\" fill=\"\(color)\">\(escape(label)) \(String(format: "%.1f", t))s</text>\n"
        }
        axes(top, "INVITEs routed per second, per node (top line: \(String(format: "%.0f", maxRate))/s)", "")
        for (i, node) in nodes.enumerated() {
            let color = colors[i % colors.count]
            let points = perNode[node]!.enumerated().map { "\(x(Double($0.offset) + 0.5)),\(top + panel - 0.9 * panel * $0.element / maxRate)" }.joined(
                separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            out += "<text x=\"\(left + plotW + 10)\" y=\"\(top + 14 + Double(i) * 16)\" fill=\"\(color)\">\(escape(node))</text>\n"
        }
        let y1 = top + panel + gap
        axes(y1, "API creates answered 201, per second, per region (top line: 100 %)", "")
        for (i, region) in regions.enumerated() {
            let color = colors[(i + 4) % colors.count]
            var segment: [String] = []
            func flush() {
                if segment.count > 0 {
                    out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(segment.joined(separator: " "))\"/>\n"
                }
                segment = []
            }
            for (b, rate) in success[region]!.enumerated() {
                guard let rate else {
                    flush()
                    continue
                }
                segment.append("\(x(Double(b) + 0.5)),\(y1 + panel - 0.9 * panel * rate)")
            }
            flush()
            out += "<text x=\"\(left + plotW + 10)\" y=\"\(y1 + 14 + Double(i) * 16)\" fill=\"\(color)\">\(escape(region))</text>\n"
        }
        marker(faultAt, "#d62728", "fault", 0)
        marker(detectedAt, "#ff7f0e", "last INVITE to a dead node", 1)
        marker(recoveredAt, "#2ca02c", "API writes recovered", 2)
        marker(restoredAt, "#1f77b4", "restored", 3)
        out += "</svg>\n"
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
