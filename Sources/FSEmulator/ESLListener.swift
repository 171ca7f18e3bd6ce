import ESL
import Logging
import NIOCore

/// One inbound Event Socket connection to the emulated node, served as mod_event_socket's
/// `listener_run` does: `auth/request` on connect, commands answered strictly in order (an
/// `api` blocks the connection until its output is ready), events queued per subscription
/// and filter. Garbage gets `-ERR command not found`; a frame over the limits closes this
/// connection only.
final class ESLListener: ChannelInboundHandler {
    typealias InboundIn = ESLFrame

    private let node: FSNode
    private var context: ChannelHandlerContext?
    private(set) var authenticated = false
    private(set) var format: ESLEventFormat = .plain
    private var subscribed: Set<String> = []
    private var all = false
    private var filters: [(String, String)] = []
    private var queue: CircularBuffer<ESLFrame> = []
    private var busy = false
    private var authTimeout: Scheduled<Void>?
    private var closing = false

    init(node: FSNode) { self.node = node }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        node.listeners[ObjectIdentifier(self)] = self
        write(ESLFrame.authRequest)
        // listener_run: the auth command must arrive within 25 s.
        authTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(25)) { [self] in
            guard !authenticated else { return }
            close()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        node.listeners.removeValue(forKey: ObjectIdentifier(self))
        authTimeout?.cancel()
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        node.logger.notice("ESL client dropped", metadata: ["error": "\(error)", "peer": "\(context.remoteAddress?.description ?? "?")"])
        write(ESLFrame.commandReply("-ERR \(error)".replacingNewlines()))
        close()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        queue.append(unwrapInboundIn(data))
        runQueue()
    }

    /// Whether an event passes this listener's subscriptions and filters.
    func wants(_ event: ESLEvent) -> Bool {
        guard authenticated, !closing, all || subscribed.contains(event.name) else { return false }
        guard !filters.isEmpty else { return true }
        return filters.contains { event[$0.0] == $0.1 }
    }

    func send(_ bytes: ByteBuffer) {
        guard let context, !closing else { return }
        context.writeAndFlush(NIOAny(bytes), promise: nil)
    }

    func write(_ frame: ESLFrame) {
        guard let context else { return }
        context.writeAndFlush(NIOAny(frame.encoded(allocator: context.channel.allocator)), promise: nil)
    }

    /// Sends the disconnect notice and closes (the `drop-esl` fault, `exit`, auth failure).
    func close(notice: Bool = false) {
        guard let context, !closing else { return }
        if notice { write(ESLFrame.disconnectNotice) }
        closing = true
        context.close(promise: nil)
    }

    private func runQueue() {
        while !busy, !closing, let frame = queue.popFirst() {
            let command = frame.command?.trimmingCharacters() ?? ""
            if command.isEmpty { continue }
            handle(command, frame)
        }
    }

    private func handle(_ line: String, _ frame: ESLFrame) {
        let (verb, args) = line.splitVerb()
        guard authenticated else {
            if verb == "auth" {
                if args == node.config.eslPassword {
                    authenticated = true
                    authTimeout?.cancel()
                    write(.commandReply("+OK accepted"))
                } else {
                    node.logger.notice("ESL auth failed", metadata: ["peer": "\(context?.remoteAddress?.description ?? "?")"])
                    write(.commandReply("-ERR invalid"))
                    close()
                }
            } else {
                write(.commandReply("-ERR command not found"))
            }
            return
        }
        // The hang-esl fault: carry the command out, answer nothing (fsnode commands excepted).
        let hung = node.faults.hangESL && !(verb == "api" && args.splitVerb().0 == "fsnode")
        switch verb {
        case "api":
            busy = true
            node.api(args).assumeIsolated().whenComplete { [self] result in
                let output = (try? result.get()) ?? "-ERR internal error\n"
                if !hung { write(.apiResponse(output.isEmpty ? "-ERR no reply\n" : output)) }
                busy = false
                runQueue()
            }
        case "bgapi":
            let job = frame.headers["Job-UUID"] ?? node.newUUID()
            if !hung { write(.commandReply("+OK Job-UUID: \(job)", extra: [("Job-UUID", job)])) }
            let (command, commandArgs) = args.splitVerb()
            node.api(args).assumeIsolated().whenComplete { [node] result in
                let output = (try? result.get()) ?? "-ERR internal error\n"
                var e = node.baseEvent("BACKGROUND_JOB", callingFile: "mod_event_socket.c", callingFunction: "api_exec", line: 1572)
                e.headers.add("Job-UUID", job)
                e.headers.add("Job-Command", command)
                if !commandArgs.isEmpty { e.headers.add("Job-Command-Arg", commandArgs) }
                e.body = output.isEmpty ? "-ERR no reply\n" : output
                node.deliver(e)
            }
        case "event":
            var words = args.split(separator: " ").map(String.init)
            if let first = words.first, let f = ESLEventFormat(rawValue: first.lowercased()) {
                format = f
                words.removeFirst()
            } else if let first = words.first, first.lowercased() == "xml" {
                write(.commandReply("-ERR xml events are not supported by this emulator"))
                return
            }
            guard !words.isEmpty else {
                write(.commandReply("-ERR no keywords supplied"))
                return
            }
            for w in words {
                let name = w.uppercased()
                if name == "ALL" { all = true } else { subscribed.insert(name) }
            }
            write(.commandReply("+OK event listener enabled \(format.rawValue)"))
        case "nixevent":
            for w in args.split(separator: " ") {
                let name = w.uppercased()
                if name == "ALL" {
                    all = false
                    subscribed.removeAll()
                } else {
                    subscribed.remove(name)
                }
            }
            write(.commandReply("+OK events nixed"))
        case "noevents":
            all = false
            subscribed.removeAll()
            write(.commandReply("+OK no longer listening for events"))
        case "filter":
            filter(args)
        case "exit":
            write(.commandReply("+OK bye"))
            close(notice: true)
        case "log":
            write(.commandReply("+OK log level \(args.isEmpty ? "7" : args) [\(args.isEmpty ? "7" : args)]"))
        case "nolog":
            write(.commandReply("+OK no longer spewing logs."))
        case "auth":
            write(.commandReply("-ERR already authenticated"))
        default:
            write(.commandReply("-ERR command not found"))
        }
    }

    private func filter(_ args: String) {
        var words = args.split(separator: " ", maxSplits: 1).map(String.init)
        if words.first?.lowercased() == "add" {
            words = (words.count > 1 ? words[1] : "").split(separator: " ", maxSplits: 1).map(String.init)
        }
        if words.first?.lowercased() == "delete" {
            let rest = (words.count > 1 ? words[1] : "").split(separator: " ", maxSplits: 1).map(String.init)
            guard let header = rest.first else {
                write(.commandReply("-ERR invalid syntax"))
                return
            }
            if header.lowercased() == "all" {
                filters.removeAll()
                write(.commandReply("+OK filter deleted. [all]"))
            } else {
                let value = rest.count > 1 ? rest[1] : nil
                filters.removeAll { $0.0.lowercased() == header.lowercased() && (value == nil || $0.1 == value) }
                write(.commandReply("+OK filter deleted. [\(header)][\(value ?? "")]"))
            }
            return
        }
        guard words.count == 2 else {
            write(.commandReply("-ERR invalid syntax"))
            return
        }
        filters.append((words[0], words[1]))
        write(.commandReply("+OK filter added. [\(words[0])]=[\(words[1])]"))
    }
}

extension String {
    /// `"api show channels"` → ("api", "show channels"); the verb lower-cased.
    func splitVerb() -> (String, String) {
        let trimmed = trimmingCharacters()
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed.lowercased(), "") }
        return (trimmed[..<space].lowercased(), String(trimmed[trimmed.index(after: space)...]).trimmingCharacters())
    }

    func replacingNewlines() -> String { String(map { $0 == "\n" || $0 == "\r" ? " " : $0 }) }
}
