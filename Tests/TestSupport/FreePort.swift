import Foundation
import Synchronization

/// Loopback ports that are free for both UDP and TCP right now, never the same one twice in a
/// test run (so two helpers asking in a row cannot get the same port).
///
/// They come from below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), never
/// from it: a port handed out there could be taken, between the check and the server's own
/// bind, as the local port of any outgoing connection the tests open meanwhile (seen in CI: a
/// nats-server's route port, "address already in use").
public enum FreePort {
    private static let handedOut = Mutex<Set<Int>>([])
    /// The ports searched: from 26000 (above the fixed ports of `switchyard up` and the
    /// benches) to just below the ephemeral range.
    /// (With an ephemeral range that starts lower, the whole range above 26000.)
    static let range: Range<Int> = {
        let low = ephemeralLow()
        return low > 27000 ? 26000..<low : 26000..<65536
    }()

    /// A port on 127.0.0.1 where a UDP and a TCP bind both succeed.
    public static func next() throws -> Int {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let port = Int.random(in: range, using: &rng)
            guard !handedOut.withLock({ $0.contains(port) }) else { continue }
            guard let udp = try? LoopbackSocket.bound(type: Int32(SOCK_DGRAM.rawValue), port: port) else { continue }
            defer { close(udp) }
            guard let tcp = try? LoopbackSocket.bound(type: Int32(SOCK_STREAM.rawValue), port: port) else { continue }
            close(tcp)
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestSupportError("no loopback port in \(range) free for both UDP and TCP after 500 tries")
    }

    /// `count` distinct free ports.
    public static func next(_ count: Int) throws -> [Int] {
        try (0..<count).map { _ in try next() }
    }

    /// The first port of the kernel's ephemeral range (32768 when it cannot be read).
    static func ephemeralLow() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
            let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap({ Int($0) })
        else { return 32768 }
        return low
    }
}
