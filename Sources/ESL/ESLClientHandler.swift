import Logging
import Metrics
import NIOCore

/// The NIO handler around `ESLClientStateMachine`: writes commands, matches replies to their
/// promises in order, routes events to the connection's stream, and fails everything in flight
/// with a typed error when the socket goes away (so no caller waits forever).
final class ESLClientHandler: ChannelInboundHandler {
    typealias InboundIn = ESLFrame

    private var machine = ESLClientStateMachine()
    private let password: String
    private let logger: Logger
    private let lag: Timer
    private let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    private var pending: CircularBuffer<(promise: EventLoopPromise<ESLFrame>, what: String, timeout: Scheduled<Void>?)> = []
    private var jobs: [String: (promise: EventLoopPromise<ESLEvent>, timeout: Scheduled<Void>?)] = [:]
    private let eventsContinuation: AsyncStream<ESLEvent>.Continuation
    let authenticated: EventLoopPromise<Void>
    let closed: EventLoopPromise<ESLError>
    /// When the last frame of any kind arrived (the heartbeat watchdog reads it).
    private(set) var lastFrameAt: NIODeadline = .now()
    var subscribed: Set<String> = []

    init(password: String, eventLoop: any EventLoop, events: AsyncStream<ESLEvent>.Continuation, logger: Logger, peer: String) {
        self.password = password
        self.eventsContinuation = events
        self.logger = logger
        self.eventLoop = eventLoop
        self.authenticated = eventLoop.makePromise()
        self.closed = eventLoop.makePromise()
        self.lag = Timer(label: "esl_event_lag_seconds", dimensions: [("peer", peer)], preferredDisplayUnit: .seconds)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Completes the promises of a connection that never got going, and breaks the
        // handler ↔ context cycle (one leaked pipeline per reconnect attempt otherwise).
        run(machine.connectionClosed(ESLError(.connectionClosed, "handler removed")), context: context)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastFrameAt = .now()
        run(machine.frameReceived(frame), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.connectionClosed(ESLError(.connectionClosed, "socket closed by peer")), context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let eslError = (error as? ESLError) ?? ESLError(.connectionClosed, "\(error)")
        run(machine.connectionClosed(eslError), context: context)
    }

    /// Sends one command; the future completes with its reply frame (`-ERR` replies fail it).
    /// After the connection is gone (the handler removed, its context released) it fails with
    /// `.connectionClosed` at once: a caller that has not noticed the close yet must not crash.
    func send(_ frame: ESLFrame, what: String, timeout: TimeAmount?) -> EventLoopFuture<ESLFrame> {
        guard let context else { return eventLoop.makeFailedFuture(ESLError(.connectionClosed, "\(what): connection is closed")) }
        let promise = context.eventLoop.makePromise(of: ESLFrame.self)
        switch machine.commandSubmitted() {
        case .sendCommand:
            let scheduled: Scheduled<Void>? = timeout.map { t in
                context.eventLoop.assumeIsolated().scheduleTask(in: t) { [weak self] in
                    // A late reply would be matched to the next command: the connection is done.
                    guard let self else { return }
                    self.closeWith(ESLError(.timeout, "no reply to \(what.debugDescription) within \(t)"))
                }
            }
            pending.append((promise: promise, what: what, timeout: scheduled))
            context.writeAndFlush(NIOAny(frame.encoded(allocator: context.channel.allocator)), promise: nil)
        case .rejectCommand(let error):
            promise.fail(error)
        default:
            promise.fail(ESLError(.connectionClosed, "connection is closed"))
        }
        return promise.futureResult
    }

    /// Registers interest in the BACKGROUND_JOB event of `jobUUID`.
    func awaitJob(_ jobUUID: String, timeout: TimeAmount) -> EventLoopFuture<ESLEvent> {
        guard let context, machine.state != .closed else {
            return eventLoop.makeFailedFuture(ESLError(.connectionClosed, "background job \(jobUUID): connection is closed"))
        }
        let promise = context.eventLoop.makePromise(of: ESLEvent.self)
        let scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let entry = self?.jobs.removeValue(forKey: jobUUID) else { return }
            entry.promise.fail(ESLError(.timeout, "no BACKGROUND_JOB for \(jobUUID) within \(timeout)"))
        }
        jobs[jobUUID] = (promise: promise, timeout: scheduled)
        return promise.futureResult
    }

    func forgetJob(_ jobUUID: String) {
        jobs.removeValue(forKey: jobUUID)?.timeout?.cancel()
    }

    func closeWith(_ error: ESLError) {
        guard let context else { return }
        run(machine.connectionClosed(error), context: context)
    }

    private func run(_ action: ESLClientStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .sendAuth:
            context.writeAndFlush(NIOAny(ESLFrame(command: "auth \(password)").encoded(allocator: context.channel.allocator)), promise: nil)
        case .authenticated:
            authenticated.succeed(())
        case .completeCommand(let frame):
            let entry = pending.removeFirst()
            entry.timeout?.cancel()
            let text = frame.contentType == "api/response" ? (frame.body ?? "") : (frame.replyText ?? "")
            if text.hasPrefix("-ERR") {
                entry.promise.fail(ESLError(.commandFailed, "\(entry.what): \(text.trimmingNewlines())"))
            } else {
                entry.promise.succeed(frame)
            }
        case .deliverEvent(let frame):
            do {
                let event = try ESLEvent.from(frame: frame)
                if let ts = event.timestampMicros {
                    let nowMicros = Int64(NIODeadline.wallClockMicros)
                    lag.recordNanoseconds(max(0, nowMicros - ts) * 1000)
                }
                if event.name == "BACKGROUND_JOB", let job = event["Job-UUID"], let entry = jobs.removeValue(forKey: job) {
                    entry.timeout?.cancel()
                    entry.promise.succeed(event)
                }
                eventsContinuation.yield(event)
            } catch {
                logger.warning("undecodable ESL event dropped", metadata: ["error": "\(error)"])
            }
        case .rejectCommand, .sendCommand, .none:
            break
        case .close(let error):
            authenticated.fail(error)
            while let entry = pending.popFirst() {
                entry.timeout?.cancel()
                entry.promise.fail(ESLError(.connectionClosed, "\(entry.what): \(error)"))
            }
            for (_, entry) in jobs {
                entry.timeout?.cancel()
                entry.promise.fail(ESLError(.connectionClosed, "background job: \(error)"))
            }
            jobs.removeAll()
            eventsContinuation.finish()
            closed.succeed(error)
            context.close(promise: nil)
        }
    }
}

extension NIODeadline {
    /// Wall-clock microseconds since the Unix epoch (ESL timestamps are wall-clock).
    static var wallClockMicros: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
