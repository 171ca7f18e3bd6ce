import NIOCore

/// Turns datagrams into events for the core; flushes batched writes once per read burst. Writes never go
/// through this channel (see `UDPSender`), so no send error can close it.
final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let layer: SIPTransportLayer

    init(layer: SIPTransportLayer) { self.layer = layer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Copy the datagram out of the 2 MiB vector-read buffer: transactions keep messages for
        // up to 32 s, and a slice would pin the whole buffer and defeat NIO's buffer reuse.
        var bytes = context.channel.allocator.buffer(capacity: envelope.data.readableBytes)
        bytes.writeImmutableBuffer(envelope.data)
        layer.delegate?.handle(.message(bytes, from: SIPEndpoint(transport: .udp, address: envelope.remoteAddress)), now: .now)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        layer.delegate?.handle(.tick, now: .now)
        layer.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Receive errors NIO tolerates (ECONNREFUSED after an ICMP, ENOMEM): counted, never fatal.
        layer.socketErrorCaught("udp", error)
    }
}
