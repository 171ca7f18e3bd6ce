import Foundation

/// A UDP socket on 127.0.0.1 for talking SIP to a local server by hand: send a datagram, wait
/// for a reply with a timeout. Bound to a given port it also serves as a silent "blackhole" node
/// that swallows whatever arrives (read it later with `drain()`).
public final class SIPUDPClient: @unchecked Sendable {
    // @unchecked: the descriptor is immutable after init and socket calls are thread-safe; a
    // test uses one client from one task at a time.
    private let fd: Int32
    /// The local port the socket is bound to.
    public let localPort: Int

    /// Binds 127.0.0.1:`port` (0: any free port).
    public init(port: Int = 0) throws {
        fd = try LoopbackSocket.bound(type: Int32(SOCK_DGRAM.rawValue), port: port)
        localPort = LoopbackSocket.localPort(fd)
        var size: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        close(fd)
    }

    /// Sends one datagram to 127.0.0.1:`port`.
    public func send(_ bytes: [UInt8], to port: Int) throws {
        var addr = LoopbackSocket.address(port: port)
        let sent = bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == bytes.count else {
            throw TestSupportError("sendto(127.0.0.1:\(port), \(bytes.count) bytes): \(LoopbackSocket.errnoText())")
        }
    }

    public func send(_ text: String, to port: Int) throws {
        try send(Array(text.utf8), to: port)
    }

    /// The next datagram that arrives within `timeout`, or nil.
    public func receive(timeout: Duration) -> [UInt8]? {
        guard LoopbackSocket.waitReadable(fd, timeout: timeout) else { return nil }
        return readOne(flags: 0)
    }

    /// Sends `bytes` and returns the first reply within `timeout`.
    public func request(_ bytes: [UInt8], to port: Int, timeout: Duration) throws -> [UInt8]? {
        try send(bytes, to: port)
        return receive(timeout: timeout)
    }

    /// Every datagram already waiting in the socket, without blocking.
    public func drain() -> [[UInt8]] {
        var all: [[UInt8]] = []
        while let datagram = readOne(flags: Int32(MSG_DONTWAIT)) { all.append(datagram) }
        return all
    }

    private func readOne(flags: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, flags) }
        guard n >= 0 else { return nil }
        return Array(buffer[0..<n])
    }
}
