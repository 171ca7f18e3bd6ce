/// The client side of one Event Socket connection as a pure state machine:
/// banner (`auth/request`) → `auth` → ready, then replies matched in order to the commands in
/// flight (mod_event_socket answers strictly in order on a connection), events passed through.
/// No sockets, clocks or logging: the NIO handler around it performs the returned actions.
public struct ESLClientStateMachine: Sendable {
    public enum State: Sendable, Hashable {
        case awaitingAuthRequest
        case authenticating
        /// `inFlight` commands await a reply, oldest first.
        case ready(inFlight: Int)
        case closed
    }

    public enum Action: Sendable, Hashable {
        /// Send `auth <password>`.
        case sendAuth
        /// The connection is usable.
        case authenticated
        /// Send the command (it was counted as in flight).
        case sendCommand
        /// The oldest command in flight got this reply (success or `-ERR`).
        case completeCommand(ESLFrame)
        /// An event to hand to the consumer.
        case deliverEvent(ESLFrame)
        /// Fail the command being submitted without sending it.
        case rejectCommand(ESLError)
        /// Close the socket and fail everything in flight with the error.
        case close(ESLError)
        /// Nothing to do (log frames, a second disconnect notice ...).
        case none
    }

    public private(set) var state: State = .awaitingAuthRequest

    public init() {}

    public mutating func frameReceived(_ frame: ESLFrame) -> Action {
        let type = frame.contentType ?? ""
        if type == "text/disconnect-notice" {
            guard state != .closed else { return .none }
            state = .closed
            return .close(ESLError(.connectionClosed, "server sent disconnect-notice"))
        }
        if type == "text/rude-rejection" {
            state = .closed
            return .close(ESLError(.rejected, (frame.body ?? "rejected").trimmingNewlines()))
        }
        switch state {
        case .awaitingAuthRequest:
            guard type == "auth/request" else {
                state = .closed
                return .close(ESLError(.unexpectedReply, "expected auth/request, got \(type.isEmpty ? "no Content-Type" : type)"))
            }
            state = .authenticating
            return .sendAuth
        case .authenticating:
            guard type == "command/reply" else { return .none }
            if frame.replyText?.hasPrefix("+OK") == true {
                state = .ready(inFlight: 0)
                return .authenticated
            }
            state = .closed
            return .close(ESLError(.authenticationFailed, frame.replyText ?? "no Reply-Text"))
        case .ready(let inFlight):
            switch type {
            case "command/reply", "api/response":
                guard inFlight > 0 else {
                    state = .closed
                    return .close(ESLError(.unexpectedReply, "\(type) with no command in flight"))
                }
                state = .ready(inFlight: inFlight - 1)
                return .completeCommand(frame)
            case "text/event-plain", "text/event-json":
                return .deliverEvent(frame)
            default:
                // log/data and anything newer: not ours to interpret.
                return .none
            }
        case .closed:
            return .none
        }
    }

    /// A command is about to be sent.
    public mutating func commandSubmitted() -> Action {
        switch state {
        case .ready(let inFlight):
            state = .ready(inFlight: inFlight + 1)
            return .sendCommand
        case .awaitingAuthRequest, .authenticating:
            return .rejectCommand(ESLError(.notConnected, "not authenticated yet"))
        case .closed:
            return .rejectCommand(ESLError(.connectionClosed, "connection is closed"))
        }
    }

    /// The socket closed, or the handler decided to close it (timeout, decode error).
    public mutating func connectionClosed(_ error: ESLError) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close(error)
    }
}

extension String {
    func trimmingNewlines() -> String {
        var s = Substring(self)
        while s.last == "\n" { s = s.dropLast() }
        while s.first == "\n" { s = s.dropFirst() }
        return String(s)
    }
}
