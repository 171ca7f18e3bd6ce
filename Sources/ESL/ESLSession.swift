public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

/// A long-lived Event Socket session to one node: connects, authenticates, subscribes and sets
/// filters, and reconnects with exponential backoff whenever the connection drops or goes
/// silent (no frame for `heartbeatTimeout`: FreeSWITCH sends HEARTBEAT every 20 s, and ESL users
/// report streams that stall without closing). Everything it sees comes out of `updates`.
public final class ESLSession: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var password: String
        /// Event names to subscribe to; BACKGROUND_JOB and HEARTBEAT are always added.
        public var events: [String]
        public var format: ESLEventFormat
        /// `filter <header> <value>` pairs set after every (re)connect.
        public var filters: [(String, String)]
        /// No frame for this long ⇒ the connection is presumed dead and replaced.
        public var heartbeatTimeout: Duration
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        public var connectTimeout: Duration

        public init(
            host: String, port: Int, password: String = "ClueCon", events: [String] = [], format: ESLEventFormat = .plain,
            filters: [(String, String)] = [], heartbeatTimeout: Duration = .seconds(45), initialBackoff: Duration = .milliseconds(100),
            maxBackoff: Duration = .seconds(5), connectTimeout: Duration = .seconds(2)
        ) {
            self.host = host
            self.port = port
            self.password = password
            self.events = events
            self.format = format
            self.filters = filters
            self.heartbeatTimeout = heartbeatTimeout
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.connectTimeout = connectTimeout
        }
    }

    public enum Update: Sendable {
        /// Authenticated and subscribed; `attempt` counts connections made by this session.
        case connected(attempt: Int)
        /// The connection ended (or a connect failed); the session retries after `retryIn`.
        case disconnected(ESLError, retryIn: Duration)
        case event(ESLEvent)
    }

    public let configuration: Configuration
    public let updates: AsyncStream<Update>
    private let continuation: AsyncStream<Update>.Continuation
    private let current = Mutex<ESLConnection?>(nil)
    private let logger: Logger
    private let group: any EventLoopGroup

    public init(
        _ configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "switchyard.esl")
    ) {
        self.configuration = configuration
        self.group = group
        var logger = logger
        logger[metadataKey: "esl"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
        (updates, continuation) = AsyncStream.makeStream(of: Update.self)
    }

    /// The live connection, if any.
    public var connection: ESLConnection? { current.withLock { $0 } }

    private func live() throws(ESLError) -> ESLConnection {
        guard let c = connection, c.isOpen else {
            throw ESLError(.notConnected, "\(configuration.host):\(configuration.port) is not connected")
        }
        return c
    }

    public func api(_ command: String, timeout: TimeAmount = .seconds(30)) async throws(ESLError) -> String {
        try await live().api(command, timeout: timeout)
    }

    /// `bgapi`; `jobUUID` chooses the job's id (register interest in its BACKGROUND_JOB first).
    public func bgapi(_ command: String, jobUUID: String? = nil) async throws(ESLError) -> String {
        try await live().bgapi(command, jobUUID: jobUUID)
    }

    public func bgapiResult(_ command: String, timeout: TimeAmount = .seconds(90)) async throws(ESLError) -> String {
        try await live().bgapiResult(command, timeout: timeout)
    }

    /// Runs until the task is cancelled: connect, serve, reconnect.
    public func run() async {
        var backoff = configuration.initialBackoff
        var attempt = 0
        let c = configuration
        let events = Array(Set(c.events.map { $0.uppercased() } + ["BACKGROUND_JOB", "HEARTBEAT"])).sorted()
        while !Task.isCancelled {
            let connection: ESLConnection
            do {
                connection = try await ESLConnection.connect(
                    host: c.host, port: c.port, password: c.password, connectTimeout: .init(c.connectTimeout), group: group, logger: logger)
                try await connection.subscribe(events, format: c.format)
                for (header, value) in c.filters { try await connection.filter(header, value) }
            } catch {
                logger.debug("ESL connect failed", metadata: ["error": "\(error)", "retry-in": "\(backoff)"])
                continuation.yield(.disconnected(error, retryIn: backoff))
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, c.maxBackoff)
                continue
            }
            attempt += 1
            backoff = c.initialBackoff
            current.withLock { $0 = connection }
            logger.info("ESL connected", metadata: ["attempt": "\(attempt)"])
            continuation.yield(.connected(attempt: attempt))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in connection.events { self.continuation.yield(.event(event)) }
                }
                group.addTask {
                    // Heartbeat watchdog.
                    while !Task.isCancelled, connection.isOpen {
                        try? await Task.sleep(for: .milliseconds(500))
                        if await connection.silence() > .init(c.heartbeatTimeout) {
                            self.logger.warning("ESL connection silent, reconnecting", metadata: ["silence": "\(c.heartbeatTimeout)"])
                            connection.close()
                            return
                        }
                    }
                }
                group.addTask {
                    await withTaskCancellationHandler {
                        _ = await connection.waitUntilClosed()
                    } onCancel: {
                        connection.close()
                    }
                }
                await group.next()
                connection.close()
                group.cancelAll()
            }
            let reason = await connection.waitUntilClosed()
            current.withLock { $0 = nil }
            if Task.isCancelled { break }
            logger.warning("ESL connection lost", metadata: ["error": "\(reason)"])
            continuation.yield(.disconnected(reason, retryIn: backoff))
            try? await Task.sleep(for: backoff)
        }
        current.withLock { $0 = nil }
        continuation.finish()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (s, a) = duration.components
        self = .nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
    }
}
