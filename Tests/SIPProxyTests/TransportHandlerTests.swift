import Dispatcher
import Logging
import NIOCore
import NIOEmbedded
import SIPCore
import Testing

@testable import SIPProxy

#if canImport(Glibc)
    import Glibc
#endif

/// The SIP channel handlers on an `EmbeddedChannel`: what they read becomes one `ProxyEvent`
/// each for the layer's delegate, framing errors are answered and close the stream, and the
/// slowloris deadlines close idle or slow connections. No sockets, no core.
@Suite struct TransportHandlerTests {
    /// The core's place: records every event the layer hands over.
    final class RecordingDelegate: SIPTransportDelegate {
        enum Seen: Equatable {
            case message(String, SIPEndpoint)
            case tick
            case transportFailed
            case identified(UInt64, String)
            case closed(UInt64)
        }
        var seen: [Seen] = []
        var banned: Set<String> = []

        func handle(_ event: ProxyEvent, now: ContinuousClock.Instant) {
            switch event {
            case .message(let bytes, let from): seen.append(.message(String(buffer: bytes), from))
            case .tick: seen.append(.tick)
            case .transportFailed: seen.append(.transportFailed)
            case .connectionIdentified(let id, let trunk): seen.append(.identified(id, trunk))
            case .connectionClosed(let id): seen.append(.closed(id))
            }
        }
        func isBanned(_ source: SIPEndpoint) -> Bool { banned.contains(source.address.ipAddress ?? "") }
        func isNodeIP(_ ip: String) -> Bool { false }
        var serverHeader: String? { "switchyard-test" }

        var messages: [String] { seen.compactMap { if case .message(let text, _) = $0 { text } else { nil } } }
    }

    static let options =
        "OPTIONS sip:proxy@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt1\r\n"
        + "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:proxy@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
        + "Max-Forwards: 70\r\nContent-Length: 4\r\n\r\nbody"

    struct Stream {
        let channel: EmbeddedChannel
        let layer: SIPTransportLayer
        let delegate = RecordingDelegate()
        let remote: SocketAddress

        init(tcp: TCPSettings = TCPSettings(), from ip: String = "127.0.0.1", banned: Bool = false) throws {
            channel = EmbeddedChannel()
            layer = SIPTransportLayer(loop: channel.embeddedEventLoop, limits: .default, tcp: tcp, logger: Logger(label: "test"))
            layer.delegate = delegate
            if banned { delegate.banned.insert(ip) }
            remote = try SocketAddress(ipAddress: ip, port: 5999)
            channel.remoteAddress = remote
            try channel.pipeline.syncOperations.addHandler(SIPStreamHandler(layer: layer, connectionID: 7, inbound: true))
            try channel.connect(to: remote).wait()
        }

        func read(_ text: String) throws {
            try channel.writeInbound(channel.allocator.buffer(string: text))
        }

        func written() throws -> [String] {
            var out: [String] = []
            while let b = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: b)) }
            return out
        }
    }

    // MARK: UDP

    @Test func eachDatagramIsOneMessageEventAndEveryReadBurstEndsWithATick() throws {
        let channel = EmbeddedChannel()
        let layer = SIPTransportLayer(loop: channel.embeddedEventLoop, limits: .default, logger: Logger(label: "test"))
        let delegate = RecordingDelegate()
        layer.delegate = delegate
        try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(layer: layer))
        let source = try SocketAddress(ipAddress: "127.0.0.1", port: 5071)
        for text in ["first", "second"] {
            channel.pipeline.fireChannelRead(AddressedEnvelope(remoteAddress: source, data: channel.allocator.buffer(string: text)))
        }
        channel.pipeline.fireChannelReadComplete()
        let from = SIPEndpoint(transport: .udp, address: source)
        #expect(delegate.seen == [.message("first", from), .message("second", from), .tick])
    }

    @Test func aReceiveErrorIsCountedAndNeverClosesTheUDPSocket() throws {
        let channel = EmbeddedChannel()
        let layer = SIPTransportLayer(loop: channel.embeddedEventLoop, limits: .default, logger: Logger(label: "test"))
        try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(layer: layer))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5060)).wait()
        for errno in [ECONNREFUSED, ENOMEM, EHOSTUNREACH] {
            channel.pipeline.fireErrorCaught(IOError(errnoCode: errno, reason: "recvmmsg"))
        }
        #expect(channel.isActive)
        let source = try SocketAddress(ipAddress: "127.0.0.1", port: 5071)
        let delegate = RecordingDelegate()
        layer.delegate = delegate
        channel.pipeline.fireChannelRead(AddressedEnvelope(remoteAddress: source, data: channel.allocator.buffer(string: "after")))
        #expect(delegate.messages == ["after"])
    }

    // MARK: TCP

    @Test(arguments: [1, 3, 17, 1000])
    func streamMessagesAreFramedWhateverTheChunkingAndCarryTheConnection(chunk: Int) throws {
        let s = try Stream()
        let bytes = Array((Self.options + Self.options).utf8)
        var start = 0
        while start < bytes.count {
            let end = min(start + chunk, bytes.count)
            try s.read(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        }
        #expect(s.delegate.messages == [Self.options, Self.options])
        let endpoints = s.delegate.seen.compactMap { if case .message(_, let e) = $0 { e } else { nil } }
        #expect(endpoints.allSatisfy { $0.transport == .tcp && $0.connectionID == 7 && $0.address == s.remote })
        #expect(s.layer.tcpConnectionCount == 1)
    }

    @Test func aBadContentLengthIsAnswered400AndClosesTheConnection() throws {
        let s = try Stream()
        try s.read(Self.options.replacingOccurrences(of: "Content-Length: 4", with: "Content-Length: -4"))
        let out = try s.written()
        #expect(out.count == 1)
        #expect(out.first?.hasPrefix("SIP/2.0 400 ") == true)
        #expect(out.first?.contains("Server: switchyard-test\r\n") == true)
        #expect(s.delegate.messages.isEmpty)
        s.channel.embeddedEventLoop.run()
        #expect(!s.channel.isActive)
        #expect(s.delegate.seen.contains(.closed(7)))
        #expect(s.layer.tcpConnectionCount == 0)
    }

    @Test func bytesAfterAFramingErrorAreNotRead() throws {
        let s = try Stream()
        try s.read(Self.options.replacingOccurrences(of: "Content-Length: 4", with: "Content-Length: x") + Self.options)
        #expect(s.delegate.messages.isEmpty)
        #expect(try s.written().count == 1)
    }

    @Test func aMessageNotCompleteWithinTheHeaderTimeoutClosesTheConnection() throws {
        var tcp = TCPSettings()
        tcp.headerTimeout = .seconds(2)
        let s = try Stream(tcp: tcp)
        try s.read(String(Self.options.prefix(40)))
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(s.channel.isActive)
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(!s.channel.isActive)
        #expect(s.delegate.messages.isEmpty)
        #expect(s.delegate.seen.contains(.closed(7)))
    }

    @Test func aConnectionThatNeverSendsAMessageIsClosedAfterTheFirstMessageTimeout() throws {
        var tcp = TCPSettings()
        tcp.firstMessageTimeout = .seconds(5)
        tcp.idleTimeout = .seconds(60)
        let s = try Stream(tcp: tcp)
        s.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!s.channel.isActive)

        // One complete message earns the longer idle timeout.
        let t = try Stream(tcp: tcp)
        try t.read(Self.options)
        t.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(t.channel.isActive)
        t.channel.embeddedEventLoop.advanceTime(by: .seconds(61))
        #expect(!t.channel.isActive)
    }

    @Test func aBannedSourceGetsNoConnection() throws {
        let s = try Stream(banned: true)
        #expect(!s.channel.isActive)
        #expect(s.layer.tcpConnectionCount == 0)
        try? s.read(Self.options)
        #expect(s.delegate.messages.isEmpty)
        #expect(!s.delegate.seen.contains(.closed(7)), "a refused connection was never registered")
    }

    @Test func thePerSourceConnectionLimitRefusesTheNextConnection() throws {
        var tcp = TCPSettings()
        tcp.maxConnectionsPerSource = 1
        let channel = EmbeddedChannel()
        let layer = SIPTransportLayer(loop: channel.embeddedEventLoop, limits: .default, tcp: tcp, logger: Logger(label: "test"))
        let delegate = RecordingDelegate()
        layer.delegate = delegate
        let remote = try SocketAddress(ipAddress: "127.0.0.5", port: 6000)
        var channels: [EmbeddedChannel] = []
        for id in [UInt64(1), 2] {
            let c = EmbeddedChannel(loop: channel.embeddedEventLoop)
            c.remoteAddress = remote
            try c.pipeline.syncOperations.addHandler(SIPStreamHandler(layer: layer, connectionID: id, inbound: true))
            try c.connect(to: remote).wait()
            channels.append(c)
        }
        #expect(channels.map(\.isActive) == [true, false])
        #expect(layer.tcpConnectionCount == 1)
        _ = try channels[0].close().wait()
        #expect(delegate.seen == [.closed(1)])
        #expect(layer.tcpConnectionCount == 0)
    }
}
