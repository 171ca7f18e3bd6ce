import Dispatcher
import Logging
import NIOCore
import SIPCore

/// A running proxy on its event loop: the transport layer and the core, built together and
/// owned here. The core sends through the layer; the layer hands events to the core, its weak
/// delegate. The admin handle and the service reach both through this object.
final class ProxyRuntime {
    let layer: SIPTransportLayer
    let core: ProxyCore

    init(
        loop: any EventLoop, configuration: ProxyConfiguration, dispatcher: NodeDispatcher, tls: SIPTLSContexts?, logger: Logger,
        now: ContinuousClock.Instant
    ) {
        layer = SIPTransportLayer(loop: loop, limits: configuration.limits, tcp: configuration.tcp, logger: logger)
        layer.tls = tls
        core = ProxyCore(configuration: configuration, dispatcher: dispatcher, transport: layer, logger: logger, now: now)
        layer.delegate = core
    }
}
