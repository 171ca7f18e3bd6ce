import Foundation

/// Parent links of the processes on this machine, from /proc (Linux).
enum ProcessTree {
    /// The parent PID of `pid` (from /proc/PID/stat: the field after the `(comm)` field).
    static func parent(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .isoLatin1),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// Every descendant of `root` (children, their children, …), not `root` itself.
    static func descendants(of root: pid_t) -> [pid_t] {
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        var children: [pid_t: [pid_t]] = [:]
        for pid in all {
            if let ppid = parent(of: pid) { children[ppid, default: []].append(pid) }
        }
        var found: [pid_t] = []
        var pending = children[root] ?? []
        while let pid = pending.popLast() {
            found.append(pid)
            pending += children[pid] ?? []
        }
        return found
    }

    /// SIGKILL to `pid` and everything below it, the descendants first so that none is left
    /// orphaned by its parent's death.
    static func killTree(_ pid: pid_t) {
        for child in descendants(of: pid) { kill(child, SIGKILL) }
        kill(pid, SIGKILL)
    }
}
