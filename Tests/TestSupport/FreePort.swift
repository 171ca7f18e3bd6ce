import Foundation
import Synchronization

/// Loopback ports that are free for both UDP and TCP right now, never the same one twice in a
/// test run (so two helpers asking in a row cannot get the same port).
public enum FreePort {
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port on 127.0.0.1 where a UDP and a TCP bind both succeed.
    public static func next() throws -> Int {
        for _ in 0..<100 {
            let udp = try LoopbackSocket.bound(type: Int32(SOCK_DGRAM.rawValue), port: 0)
            let port = LoopbackSocket.localPort(udp)
            defer { close(udp) }
            guard let tcp = try? LoopbackSocket.bound(type: Int32(SOCK_STREAM.rawValue), port: port) else { continue }
            close(tcp)
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            if fresh { return port }
        }
        throw TestSupportError("no loopback port free for both UDP and TCP after 100 tries")
    }

    /// `count` distinct free ports.
    public static func next(_ count: Int) throws -> [Int] {
        try (0..<count).map { _ in try next() }
    }
}
