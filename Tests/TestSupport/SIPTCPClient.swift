import Foundation

/// A TCP connection to 127.0.0.1 for talking SIP by hand: write bytes, read what comes back.
/// Peer resets are not errors here: reads then return what arrived before the reset.
public final class SIPTCPClient: @unchecked Sendable {
    // @unchecked: the descriptor is immutable after init; a test uses one connection from one
    // task at a time.
    private let fd: Int32
    public let localPort: Int

    /// Connects to 127.0.0.1:`port`, from 127.0.0.`fromHost` (another loopback address makes
    /// another source for per-source limits).
    public init(connectingTo port: Int, fromHost: UInt8 = 1) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket(): \(LoopbackSocket.errnoText())") }
        if fromHost != 1 {
            var local = LoopbackSocket.address(port: 0)
            local.sin_addr.s_addr = in_addr_t(0x7F00_0000 | UInt32(fromHost)).bigEndian
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard rc == 0 else {
                let text = LoopbackSocket.errnoText()
                close(fd)
                throw TestSupportError("bind(127.0.0.\(fromHost)): \(text)")
            }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = LoopbackSocket.address(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let text = LoopbackSocket.errnoText()
            close(fd)
            throw TestSupportError("connect(127.0.0.1:\(port)): \(text)")
        }
        self.fd = fd
        localPort = LoopbackSocket.localPort(fd)
    }

    deinit {
        close(fd)
    }

    /// Writes all of `bytes`; returns false if the peer closed or reset the connection first.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// Reads until `isComplete` accepts what arrived, the peer closes, or `timeout` passes;
    /// returns everything read.
    public func read(timeout: Duration, until isComplete: ([UInt8]) -> Bool = { _ in false }) -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !isComplete(received) {
            let left = deadline - ContinuousClock.now
            guard left > .zero, LoopbackSocket.waitReadable(fd, timeout: left) else { break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        return received
    }

    /// Reads one SIP message: the header section and a body of Content-Length bytes.
    public func readSIPMessage(timeout: Duration) -> [UInt8] {
        read(timeout: timeout, until: SIPTestMessages.isCompleteMessage)
    }

    /// The peer closed or reset the connection (checked without waiting, data left unread).
    public var isClosedByPeer: Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        if n == 0 { return true }
        return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
    }

    /// Half-closes the sending side (the peer sees end of stream).
    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }
}
