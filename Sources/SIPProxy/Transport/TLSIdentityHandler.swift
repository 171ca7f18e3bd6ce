import NIOCore
import NIOSSL
import NIOTLS

/// Sits behind the TLS handler of one SIP-over-TLS connection. When the handshake completes it
/// checks who the peer is (`SIPTLSContexts.identify`): a trunk's `tls_subject` not matched
/// closes the connection before any request is read; a certificate that names a trunk makes
/// the connection's requests count for that trunk. A failed handshake (no certificate where one
/// is required, an untrusted or expired one) is counted and logged at a bounded rate.
final class TLSIdentityHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let layer: SIPTransportLayer
    let connectionID: UInt64
    /// nil for connections the proxy opened (the peer is checked by the client context).
    let contexts: SIPTLSContexts?
    /// The handshake has ended, well or badly (a failure is counted once).
    private var handshaken = false
    /// Set when the peer was refused: bytes that were decrypted in the same read as the
    /// handshake's end (TLS 1.3 clients send at once) are dropped, never handed on.
    private var refused = false

    init(layer: SIPTransportLayer, connectionID: UInt64, contexts: SIPTLSContexts?) {
        self.layer = layer
        self.connectionID = connectionID
        self.contexts = contexts
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            handshaken = true
            layer.metrics.tlsHandshakesOK.increment()
            if let contexts {
                let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
                switch contexts.identify(remote: context.channel.remoteAddress, certificate: certificate) {
                case .trunk(let name):
                    layer.delegate?.handle(.connectionIdentified(connectionID, trunk: name), now: .now)
                case .anonymous:
                    break
                case .refused(let reason):
                    refused = true
                    layer.metrics.tlsRefused(reason)
                    layer.logNotice(
                        "TLS client certificate does not identify its trunk; connection closed",
                        ["remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(reason)"])
                    context.close(promise: nil)
                    return
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !refused else { return }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !handshaken, error is NIOSSLError || error is BoringSSLError {
            handshaken = true
            layer.metrics.tlsHandshakesFailed.increment()
            layer.logNotice(
                "TLS handshake failed", ["remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error)"])
        }
        context.fireErrorCaught(error)
    }
}
