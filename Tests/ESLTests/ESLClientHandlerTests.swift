import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ESL

/// The ESL client handler on an `EmbeddedChannel`, behind the real frame decoder: the bytes it
/// writes, replies matched to commands in order, events and background jobs routed, and every
/// promise failed with a typed error when the connection goes. No sockets, no emulator.
@Suite struct ESLClientHandlerTests {
    struct Wire {
        let channel = EmbeddedChannel()
        let handler: ESLClientHandler
        let events: AsyncStream<ESLEvent>

        init(password: String = "ClueCon") throws {
            let (stream, continuation) = AsyncStream.makeStream(of: ESLEvent.self)
            events = stream
            handler = ESLClientHandler(
                password: password, eventLoop: channel.embeddedEventLoop, events: continuation, logger: Logger(label: "test"), peer: "test")
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ESLFrameDecoder(direction: .fromServer)))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8021)).wait()
        }

        func server(_ frame: ESLFrame) throws { try channel.writeInbound(frame.encoded()) }
        func server(raw: String) throws { try channel.writeInbound(channel.allocator.buffer(string: raw)) }

        func written() throws -> [String] {
            var out: [String] = []
            while let b = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: b)) }
            return out
        }

        /// Banner, auth, +OK: a ready connection.
        static func authenticated() throws -> Wire {
            let w = try Wire()
            try w.server(ESLFrame(headers: ESLHeaders([("Content-Type", "auth/request")])))
            _ = try w.written()
            try w.server(.commandReply("+OK accepted"))
            try w.handler.authenticated.futureResult.wait()
            return w
        }
    }

    /// The error a future already failed with (nil while it is pending or when it succeeded).
    static func failure<T>(of future: EventLoopFuture<T>) -> ESLError? {
        let error = Mutex<ESLError?>(nil)
        future.whenFailure { e in error.withLock { $0 = e as? ESLError } }
        return error.withLock { $0 }
    }

    static func isDone<T>(_ future: EventLoopFuture<T>) -> Bool {
        let done = Mutex(false)
        future.whenComplete { _ in done.withLock { $0 = true } }
        return done.withLock { $0 }
    }

    @Test func theBannerIsAnsweredWithAuthAndPlusOKAuthenticates() throws {
        let w = try Wire(password: "s3cret")
        #expect(try w.written().isEmpty, "nothing is sent before the banner")
        try w.server(raw: "Content-Type: auth/request\n\n")
        #expect(try w.written() == ["auth s3cret\n\n"])
        #expect(!Self.isDone(w.handler.authenticated.futureResult))
        try w.server(raw: "Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        #expect(Self.isDone(w.handler.authenticated.futureResult))
        #expect(Self.failure(of: w.handler.authenticated.futureResult) == nil)
    }

    @Test func aRefusedPasswordFailsAuthenticationAndClosesTheSocket() throws {
        let w = try Wire()
        try w.server(raw: "Content-Type: auth/request\n\n")
        try w.server(raw: "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
        #expect(Self.failure(of: w.handler.authenticated.futureResult)?.code == .authenticationFailed)
        w.channel.embeddedEventLoop.run()
        #expect(!w.channel.isActive)
    }

    @Test func repliesCompleteCommandsInOrderAndMinusERRFailsOnlyItsCommand() throws {
        let w = try Wire.authenticated()
        let status = w.handler.send(ESLFrame(command: "api status"), what: "status", timeout: nil)
        let bad = w.handler.send(ESLFrame(command: "api nonsense"), what: "nonsense", timeout: nil)
        let sub = w.handler.send(ESLFrame(command: "event plain CHANNEL_CREATE"), what: "event", timeout: nil)
        #expect(try w.written() == ["api status\n\n", "api nonsense\n\n", "event plain CHANNEL_CREATE\n\n"])
        try w.server(raw: "Content-Type: api/response\nContent-Length: 6\n\nUP 0\n\n")
        try w.server(raw: "Content-Type: api/response\nContent-Length: 22\n\n-ERR nonsense Command!")
        try w.server(raw: "Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
        #expect(try status.wait().body == "UP 0\n\n")
        #expect(Self.failure(of: bad)?.code == .commandFailed)
        #expect(try sub.wait().replyText == "+OK event listener enabled plain")
        #expect(w.channel.isActive, "a failed command leaves the connection up")
    }

    @Test func aCommandWithoutAReplyInTimeClosesTheConnectionAndFailsTheRest() throws {
        let w = try Wire.authenticated()
        let slow = w.handler.send(ESLFrame(command: "api status"), what: "status", timeout: .seconds(2))
        let next = w.handler.send(ESLFrame(command: "api uptime"), what: "uptime", timeout: nil)
        w.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(w.channel.isActive)
        w.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(Self.failure(of: slow)?.code == .connectionClosed)
        #expect(Self.failure(of: next)?.code == .connectionClosed)
        #expect(try w.handler.closed.futureResult.wait().code == .timeout)
        #expect(!w.channel.isActive)
        let after = w.handler.send(ESLFrame(command: "api status"), what: "status", timeout: nil)
        #expect(Self.failure(of: after)?.code == .connectionClosed, "a closed connection refuses new commands at once")
        #expect(Self.failure(of: w.handler.awaitJob("late", timeout: .seconds(1)))?.code == .connectionClosed)
    }

    @Test func eventsReachTheStreamAndABackgroundJobCompletesItsWaiter() async throws {
        let w = try Wire.authenticated()
        let job = w.handler.awaitJob("job-1", timeout: .seconds(30))
        var headers = ESLHeaders()
        headers.add("Event-Name", "BACKGROUND_JOB")
        headers.add("Job-UUID", "job-1")
        try w.server(.event(ESLEvent(headers: headers, body: "+OK uuid-1\n"), format: .plain))
        var create = ESLHeaders()
        create.add("Event-Name", "CHANNEL_CREATE")
        create.add("Unique-ID", "uuid-1")
        try w.server(.event(ESLEvent(headers: create), format: .json))
        #expect(try await job.get().body == "+OK uuid-1\n")
        var names: [String] = []
        for await event in w.events {
            names.append(event.name)
            if names.count == 2 { break }
        }
        #expect(names == ["BACKGROUND_JOB", "CHANNEL_CREATE"])
    }

    @Test func aBackgroundJobThatNeverReportsTimesOutAlone() throws {
        let w = try Wire.authenticated()
        let job = w.handler.awaitJob("job-2", timeout: .seconds(5))
        w.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(Self.failure(of: job)?.code == .timeout)
        #expect(w.channel.isActive)
    }

    @Test(arguments: ["disconnect", "close", "garbage"])
    func losingTheConnectionFailsEverythingInFlightWithATypedError(how: String) throws {
        let w = try Wire.authenticated()
        let command = w.handler.send(ESLFrame(command: "api status"), what: "status", timeout: nil)
        let job = w.handler.awaitJob("job-3", timeout: .seconds(30))
        switch how {
        case "disconnect": try w.server(raw: "Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
        case "close": _ = try? w.channel.close().wait()
        default: _ = try? w.server(raw: "Content-Type: api/response\nContent-Length: 99999999999\n\n")
        }
        w.channel.embeddedEventLoop.run()
        #expect(Self.failure(of: command)?.code == .connectionClosed)
        #expect(Self.failure(of: job)?.code == .connectionClosed)
        #expect(!w.channel.isActive)
        #expect(Self.isDone(w.handler.closed.futureResult))
    }

    @Test func aServerThatDoesNotStartWithTheBannerIsRefused() throws {
        let w = try Wire()
        try w.server(raw: "Content-Type: command/reply\nReply-Text: +OK\n\n")
        #expect(Self.failure(of: w.handler.authenticated.futureResult)?.code == .unexpectedReply)
        #expect(try w.written().isEmpty, "no password is sent to something that is not an ESL server")
    }
}
