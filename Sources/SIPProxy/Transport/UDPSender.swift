import CDatagramSocket
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes datagrams on a UDP socket whose reads NIO does, with sendmmsg batches of our own. A
/// datagram the kernel refuses (EACCES, EPERM, ENETUNREACH, EINVAL, ENOBUFS, EAGAIN, ...) is
/// dropped and reported through `onError`; the socket stays open. NIO's own datagram writes
/// close the channel on any error but EMSGSIZE and EHOSTUNREACH.
///
/// Not thread-safe: it lives on the proxy's event loop, like the rest of the transport layer.
final class UDPSender {
    let fd: CInt
    private var pending: [(bytes: ByteBuffer, to: SocketAddress, token: ClientTransactionKey?)] = []
    private var offsets: [Int] = []
    private var scratch: ByteBuffer
    private var datagrams: UnsafeMutablePointer<cdgram_datagram>
    private var capacity: Int
    private let onError: (SocketAddress, CInt, ClientTransactionKey?) -> Void

    init(fd: CInt, allocator: ByteBufferAllocator, onError: @escaping (SocketAddress, CInt, ClientTransactionKey?) -> Void) {
        self.fd = fd
        self.onError = onError
        scratch = allocator.buffer(capacity: 64 * 1024)
        capacity = 64
        datagrams = .allocate(capacity: capacity)
        pending.reserveCapacity(capacity)
        offsets.reserveCapacity(capacity)
    }

    deinit { datagrams.deallocate() }

    var hasPending: Bool { !pending.isEmpty }

    /// Queues a datagram; `token` names the client transaction to fail if the kernel refuses it.
    func enqueue(_ bytes: ByteBuffer, to address: SocketAddress, token: ClientTransactionKey?) {
        pending.append((bytes, address, token))
    }

    /// Sends everything queued, in order, in as few syscalls as the kernel allows.
    func flush() {
        let n = pending.count
        guard n > 0 else { return }
        var failed: [(SocketAddress, CInt, ClientTransactionKey?)] = []
        defer {
            pending.removeAll(keepingCapacity: true)
            // Reported after the queue is empty, so a handler that sends again starts afresh.
            for f in failed { onError(f.0, f.1, f.2) }
        }
        if n > capacity {
            datagrams.deallocate()
            capacity = max(n, capacity * 2)
            datagrams = .allocate(capacity: capacity)
        }
        for i in 0..<n {
            datagrams[i] = cdgram_datagram()
            pending[i].to.withSockAddr { addr, len in
                withUnsafeMutableBytes(of: &datagrams[i].address) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(addr), count: min(len, dst.count)))
                }
                datagrams[i].address_length = socklen_t(len)
            }
            datagrams[i].length = pending[i].bytes.readableBytes
        }
        if n == 1 {
            pending[0].bytes.withUnsafeReadableBytes { raw in
                datagrams[0].base = raw.baseAddress.map { UnsafeRawPointer($0) }
                _ = cdgram_send(fd, datagrams, 1)
            }
        } else {
            // One contiguous copy: every datagram's bytes stay valid for the whole sendmmsg.
            scratch.clear()
            offsets.removeAll(keepingCapacity: true)
            for p in pending {
                offsets.append(scratch.writerIndex)
                scratch.writeImmutableBuffer(p.bytes)
            }
            scratch.withUnsafeReadableBytes { raw in
                let base = raw.baseAddress.map { UnsafeRawPointer($0) }
                for i in 0..<n { datagrams[i].base = base.map { $0 + offsets[i] } }
                _ = cdgram_send(fd, datagrams, CUnsignedInt(n))
            }
        }
        for i in 0..<n where datagrams[i].error != 0 {
            failed.append((pending[i].to, datagrams[i].error, pending[i].token))
        }
    }

    /// The symbolic errno name, for metrics and logs.
    static func errnoName(_ code: CInt) -> String {
        String(cString: cdgram_errno_name(code))
    }

    /// A non-blocking UDP socket bound to `address` (see `cdgram_open`).
    static func openSocket(bindingTo address: SocketAddress, receiveBuffer: Int, sendBuffer: Int) throws -> CInt {
        let fd = address.withSockAddr { addr, len in
            cdgram_open(addr, socklen_t(len), CInt(receiveBuffer), CInt(sendBuffer))
        }
        guard fd >= 0 else { throw IOError(errnoCode: -fd, reason: "binding UDP socket to \(address)") }
        return fd
    }
}
