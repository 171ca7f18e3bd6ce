import NIOCore

extension FSNode {
    /// `originate`: creates an outbound channel and plays the outcome model (`CallOutcome`).
    /// The output is `+OK <uuid>` once answered, `-ERR <cause>` if the call fails, as
    /// mod_commands' originate returns.
    func originate(_ args: String) -> EventLoopFuture<String> {
        let command: OriginateCommand
        do {
            command = try OriginateCommand.parse(args)
        } catch {
            guard case .invalid(let text) = error else { return loop.makeSucceededFuture("-ERR INVALID_URL\n") }
            return loop.makeSucceededFuture(text + "\n")
        }
        let uuid = command.variables["origination_uuid"] ?? newUUID()
        guard channels[uuid] == nil else {
            // The uuid is taken: FreeSWITCH cannot create the session.
            return loop.makeSucceededFuture("-ERR NORMAL_TEMPORARY_FAILURE\n")
        }
        guard !atCapacity else { return loop.makeSucceededFuture("-ERR NORMAL_TEMPORARY_FAILURE\n") }

        let caller = command.variables["origination_caller_id_number"] ?? "0000000000"
        let channel = EmulatedChannel(
            uuid: uuid, direction: .outbound, name: command.dialString, callerNumber: caller, destination: command.destination,
            createdMicros: FSClock.nowMicros())
        for (k, v) in command.variables.sorted(by: { $0.key < $1.key }) { channel.setVariable(k, v) }
        channel.setVariable("uuid", uuid)
        channel.setVariable("call_uuid", uuid)
        channel.setVariable("direction", "outbound")
        channel.setVariable("is_outbound", "true")
        channel.setVariable("originate_early_media", "false")
        channel.setVariable("sip_to_user", command.destination)
        channel.setVariable("dialed_user", command.destination)
        let promise = loop.makePromise(of: String.self)
        channel.originateResult = promise
        addChannel(channel)
        deliver(channelEvent("CHANNEL_CREATE", channel, function: "switch_core_session_request_uuid"))

        let outcome = CallOutcome.forDestination(command.destination, override: command.variables["fsnode_outcome"])
        let ring = command.variables["fsnode_ring_ms"].flatMap { Int($0) }.map { Duration.milliseconds($0) } ?? config.ringTime
        let talk = command.variables["fsnode_talk_ms"].flatMap { Int($0) }.map { Duration.milliseconds($0) } ?? config.talkTime
        let timeout = Duration.seconds(command.timeoutSeconds ?? 60)

        if outcome == .unallocated {
            hangup(channel, cause: "UNALLOCATED_NUMBER", sipStatus: 404, disposition: "recv_refuse")
            return promise.futureResult
        }
        // The far end rings at once (180 Ringing: CHANNEL_PROGRESS).
        schedule(channel, after: .milliseconds(1)) { [self] in markProgress(channel) }
        if outcome == .noAnswer || (outcome == .answer && ring >= timeout) {
            schedule(channel, after: timeout) { [self] in hangup(channel, cause: "NO_ANSWER", sipStatus: 480, disposition: "recv_refuse") }
        } else if let failure = outcome.failure {
            schedule(channel, after: ring) { [self] in hangup(channel, cause: failure.cause, sipStatus: failure.sipStatus, disposition: "recv_refuse") }
        } else {
            schedule(channel, after: ring) { [self] in
                markAnswered(channel)
                schedule(channel, after: talk) { [self] in
                    hangup(channel, cause: "NORMAL_CLEARING", sipStatus: 200, disposition: "recv_bye")
                }
            }
        }
        return promise.futureResult
    }
}
