public import Logging
public import NIOCore
public import NIOPosix
import Foundation

/// One authenticated inbound Event Socket connection to a FreeSWITCH node.
///
/// Commands are answered in order (FreeSWITCH runs `api` synchronously per connection), so a
/// slow `api` delays the commands behind it: use `bgapi` for anything that can take long
/// (`originate`). When the socket drops, every command in flight fails with
/// `ESLError.connectionClosed`; a command without a reply before its timeout closes the
/// connection (a late reply would otherwise answer the next command).
public final class ESLConnection: Sendable {
    public let peer: String
    private let channel: any Channel
    private let handler: NIOLoopBound<ESLClientHandler>
    /// Events the connection is subscribed to, as they arrive. Finishes when the connection closes.
    public let events: AsyncStream<ESLEvent>

    private init(peer: String, channel: any Channel, handler: NIOLoopBound<ESLClientHandler>, events: AsyncStream<ESLEvent>) {
        self.peer = peer
        self.channel = channel
        self.handler = handler
        self.events = events
    }

    /// Connects, reads the `auth/request` banner and authenticates.
    public static func connect(
        host: String, port: Int, password: String, connectTimeout: TimeAmount = .seconds(3),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "switchyard.esl")
    ) async throws(ESLError) -> ESLConnection {
        let peer = "\(host):\(port)"
        let (stream, continuation) = AsyncStream.makeStream(of: ESLEvent.self)
        let watch = HandshakeWatch()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(ESLFrameDecoder(direction: .fromServer)))
                        let handler = ESLClientHandler(password: password, eventLoop: ch.eventLoop, events: continuation, logger: logger, peer: peer)
                        watch.authenticated = handler.authenticated.futureResult
                        try ch.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            continuation.finish()
            throw ESLError(.connectFailed, "\(peer): \(error)")
        }
        // TCP simultaneous open: connecting to a free loopback port can pick that same port as
        // the source and connect the socket to itself, which would then hold the port.
        if let local = channel.localAddress, let remote = channel.remoteAddress, local == remote {
            channel.close(promise: nil)
            throw ESLError(.connectFailed, "\(peer): connected to itself (nothing listening)")
        }
        let bound: NIOLoopBound<ESLClientHandler>
        do {
            bound = try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<NIOLoopBound<ESLClientHandler>> in
                // The handler is gone when the peer closed during the handshake.
                guard let h = try? channel.pipeline.syncOperations.handler(type: ESLClientHandler.self) else {
                    // A server that refused the password and closed at once: report the refusal.
                    let closed = ESLError(.connectionClosed, "\(peer): closed during the handshake")
                    guard let authenticated = watch.authenticated else { return channel.eventLoop.makeFailedFuture(closed) }
                    return authenticated.flatMapThrowing { throw closed }
                }
                let b = NIOLoopBound(h, eventLoop: channel.eventLoop)
                let authTimeout = channel.eventLoop.scheduleTask(in: connectTimeout + .seconds(2)) {
                    b.value.closeWith(ESLError(.timeout, "\(peer): no auth/request and reply within \(connectTimeout + .seconds(2))"))
                }
                return h.authenticated.futureResult.always { _ in authTimeout.cancel() }.map { b }
            }.get()
        } catch {
            channel.close(promise: nil)
            throw (error as? ESLError) ?? ESLError(.connectFailed, "\(peer): \(error)")
        }
        return ESLConnection(peer: peer, channel: channel, handler: bound, events: stream)
    }

    private func send(_ frame: ESLFrame, what: String, timeout: TimeAmount?) async throws(ESLError) -> ESLFrame {
        let handler = self.handler
        do {
            return try await channel.eventLoop.flatSubmit {
                handler.value.send(frame, what: what, timeout: timeout)
            }.get()
        } catch {
            throw (error as? ESLError) ?? ESLError(.connectionClosed, "\(what): \(error)")
        }
    }

    private static func checked(_ command: String) throws(ESLError) -> String {
        guard !command.isEmpty, !command.contains(where: { $0 == "\n" || $0 == "\r" }) else {
            throw ESLError(.invalidCommand, "command is empty or contains a line break: \(command.prefix(80).debugDescription)")
        }
        return command
    }

    /// `api <command>`: the API's output. An output starting with `-ERR` throws `.commandFailed`.
    @discardableResult
    public func api(_ command: String, timeout: TimeAmount = .seconds(30)) async throws(ESLError) -> String {
        let reply = try await send(ESLFrame(command: try "api " + Self.checked(command)), what: "api \(command)", timeout: timeout)
        return reply.body ?? ""
    }

    /// `bgapi <command>`: returns the Job-UUID at once; the output arrives later as a
    /// BACKGROUND_JOB event (see `bgapiResult`). `jobUUID` chooses the id.
    @discardableResult
    public func bgapi(_ command: String, jobUUID: String? = nil, timeout: TimeAmount = .seconds(10)) async throws(ESLError) -> String {
        let jobUUID = jobUUID ?? UUID().uuidString.lowercased()
        let frame = ESLFrame(command: try "bgapi " + Self.checked(command), headers: ["Job-UUID": jobUUID])
        let reply = try await send(frame, what: "bgapi \(command)", timeout: timeout)
        return reply.headers["Job-UUID"] ?? jobUUID
    }

    /// `bgapi <command>` and wait for its BACKGROUND_JOB: the API's output (`+OK <uuid>` for an
    /// originate that was answered). Output starting with `-ERR` throws `.commandFailed`. Needs
    /// a subscription to BACKGROUND_JOB (or ALL).
    public func bgapiResult(_ command: String, timeout: TimeAmount = .seconds(90)) async throws(ESLError) -> String {
        let jobUUID = UUID().uuidString.lowercased()
        let frame = ESLFrame(command: try "bgapi " + Self.checked(command), headers: ["Job-UUID": jobUUID])
        let handler = self.handler
        let loop = channel.eventLoop
        let event: ESLEvent
        do {
            event = try await loop.flatSubmit { () -> EventLoopFuture<ESLEvent> in
                let h = handler.value
                guard h.subscribed.contains("BACKGROUND_JOB") || h.subscribed.contains("ALL") else {
                    return loop.makeFailedFuture(ESLError(.notSubscribed, "bgapi \(command): subscribe to BACKGROUND_JOB first"))
                }
                // Wait for the job before sending, so a fast result cannot slip past.
                let job = h.awaitJob(jobUUID, timeout: timeout)
                return h.send(frame, what: "bgapi \(command)", timeout: .seconds(10))
                    .assumeIsolated()
                    .flatMapError { error in
                        h.forgetJob(jobUUID)
                        return loop.makeFailedFuture(error)
                    }
                    .flatMap { _ in job }
                    .nonisolated()
            }.get()
        } catch {
            throw (error as? ESLError) ?? ESLError(.connectionClosed, "\(error)")
        }
        let output = event.body ?? ""
        if output.hasPrefix("-ERR") { throw ESLError(.commandFailed, "bgapi \(command): \(output.trimmingNewlines())") }
        return output
    }

    /// `event <format> <names>`: cumulative, like FreeSWITCH.
    public func subscribe(_ names: [String], format: ESLEventFormat = .plain) async throws(ESLError) {
        guard !names.isEmpty else { throw ESLError(.invalidCommand, "event: no event names") }
        let command = try Self.checked("event \(format.rawValue) \(names.joined(separator: " "))")
        _ = try await send(ESLFrame(command: command), what: command, timeout: .seconds(10))
        let handler = self.handler
        channel.eventLoop.execute { handler.value.subscribed.formUnion(names.map { $0.uppercased() }) }
    }

    /// `nixevent <names>`.
    public func unsubscribe(_ names: [String]) async throws(ESLError) {
        let command = try Self.checked("nixevent \(names.joined(separator: " "))")
        _ = try await send(ESLFrame(command: command), what: command, timeout: .seconds(10))
        let handler = self.handler
        channel.eventLoop.execute { handler.value.subscribed.subtract(names.map { $0.uppercased() }) }
    }

    /// `filter <header> <value>`: once any filter exists, only matching events are delivered.
    public func filter(_ header: String, _ value: String) async throws(ESLError) {
        let command = try Self.checked("filter \(header) \(value)")
        _ = try await send(ESLFrame(command: command), what: command, timeout: .seconds(10))
    }

    /// `filter delete <header> [value]`.
    public func filterDelete(_ header: String, _ value: String? = nil) async throws(ESLError) {
        let command = try Self.checked("filter delete \(header)" + (value.map { " \($0)" } ?? ""))
        _ = try await send(ESLFrame(command: command), what: command, timeout: .seconds(10))
    }

    /// `exit`: the server answers `+OK bye` and closes.
    public func exit() async {
        _ = try? await send(ESLFrame(command: "exit"), what: "exit", timeout: .seconds(5))
        close()
    }

    /// Closes the socket; commands in flight fail with `.connectionClosed`.
    public func close() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.closeWith(ESLError(.connectionClosed, "closed by client")) }
    }

    /// Completes with the reason when the connection closes, whoever closed it.
    public func waitUntilClosed() async -> ESLError {
        let handler = self.handler
        let future = channel.eventLoop.flatSubmit { handler.value.closed.futureResult }
        return (try? await future.get()) ?? ESLError(.connectionClosed, "closed")
    }

    /// Time since the last frame of any kind (replies, events, heartbeats) arrived.
    public func silence() async -> TimeAmount {
        let handler = self.handler
        return (try? await channel.eventLoop.submit { NIODeadline.now() - handler.value.lastFrameAt }.get()) ?? .zero
    }

    public var isOpen: Bool { channel.isActive }
}

/// The handshake's outcome, kept from the channel initializer for `connect`: both run on the
/// channel's event loop, one after the other, so the unsynchronised field is safe.
private final class HandshakeWatch: @unchecked Sendable {
    var authenticated: EventLoopFuture<Void>?
}
