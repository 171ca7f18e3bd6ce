import Foundation
import Synchronization

/// Every child a `ManagedProcess` started and has not yet seen exit. At normal exit of the test
/// process (including after failed tests) an `atexit` hook stops whatever is still listed, so a
/// test that forgot to stop something cannot leave it running.
enum ProcessRegistry {
    private static let entries = Mutex<Set<pid_t>>([])

    private static let installHook: Void = {
        atexit {
            ProcessRegistry.killAll()
        }
    }()

    static func add(_ pid: pid_t) {
        _ = installHook
        _ = entries.withLock { $0.insert(pid) }
    }

    static func remove(_ pid: pid_t) {
        _ = entries.withLock { $0.remove(pid) }
    }

    /// SIGTERM to all, a short grace, then SIGKILL to whatever is left and its descendants.
    static func killAll() {
        let all = entries.withLock { entries in
            defer { entries.removeAll() }
            return entries
        }
        // Only PIDs that are still our children (unreaped ones included), which nothing else can
        // have reused.
        let mine = all.filter { ProcessTree.parent(of: $0) == getpid() }
        guard !mine.isEmpty else { return }
        for pid in mine { kill(pid, SIGTERM) }
        usleep(300_000)
        for pid in mine where ProcessTree.parent(of: pid) == getpid() {
            ProcessTree.killTree(pid)
        }
    }
}
