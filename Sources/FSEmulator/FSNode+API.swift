import Foundation
import NIOCore

extension FSNode {
    func newUUID() -> String { UUID().uuidString.lowercased() }

    /// Runs an API command (`api <command>` / `bgapi <command>`) and produces its text output.
    func api(_ commandLine: String) -> EventLoopFuture<String> {
        let (command, args) = commandLine.splitVerb()
        switch command {
        case "status":
            return loop.makeSucceededFuture(statusText())
        case "show":
            return loop.makeSucceededFuture(show(args))
        case "originate":
            return originate(args)
        case "uuid_kill":
            let words = args.split(separator: " ").map(String.init)
            guard let uuid = words.first else { return loop.makeSucceededFuture("-USAGE: <uuid> [cause]\n") }
            guard let channel = channels[uuid] else { return loop.makeSucceededFuture("-ERR No such channel!\n") }
            kill(channel, cause: words.count > 1 ? words[1].uppercased() : "NORMAL_CLEARING")
            return loop.makeSucceededFuture("+OK\n")
        case "sched_hangup":
            // sched_hangup [+]<time> <uuid> [<cause>]
            let words = args.split(separator: " ").map(String.init)
            guard words.count >= 2 else { return loop.makeSucceededFuture("-USAGE: [+]<time> <uuid> [<cause>]\n") }
            guard let channel = channels[words[1]] else { return loop.makeSucceededFuture("-ERR No such channel!\n") }
            guard scheduleHangup(channel, words[0], cause: words.count > 2 ? words[2] : nil) else {
                return loop.makeSucceededFuture("-USAGE: [+]<time> <uuid> [<cause>]\n")
            }
            return loop.makeSucceededFuture("+OK\n")
        case "uuid_exists":
            return loop.makeSucceededFuture(channels[args.trimmingCharacters()] != nil ? "true" : "false")
        case "hupall":
            let cause = args.split(separator: " ").first.map { $0.uppercased() } ?? "MANAGER_REQUEST"
            for channel in Array(channels.values) { kill(channel, cause: cause) }
            return loop.makeSucceededFuture("+OK hangup all channels with cause \(cause)\n")
        case "sofia":
            return loop.makeSucceededFuture(sofiaStatus())
        case "version":
            return loop.makeSucceededFuture("FreeSWITCH Version 1.10.12-release+switchyard-emulator (64bit)\n")
        case "global_getvar":
            switch args.trimmingCharacters() {
            case "core_uuid": return loop.makeSucceededFuture(coreUUID)
            case "hostname": return loop.makeSucceededFuture(config.name)
            default: return loop.makeSucceededFuture("")
            }
        case "fsnode":
            return loop.makeSucceededFuture(emulatorCommand(args))
        default:
            return loop.makeSucceededFuture("-ERR \(command) Command not found!\n")
        }
    }

    /// Hangs a channel up from this side (uuid_kill, hupall): BYE or a final response on SIP.
    func kill(_ channel: EmulatedChannel, cause: String) {
        if let dialog = channel.dialog {
            if channel.answeredMicros != nil {
                sendBye(dialog)
            } else {
                respondFinal(dialog, status: cause == "USER_BUSY" ? 486 : 480, reason: cause == "USER_BUSY" ? "Busy Here" : "Temporarily Unavailable")
            }
        }
        hangup(channel, cause: cause, sipStatus: nil, disposition: "send_bye")
    }

    func statusText() -> String {
        let upMillis = (FSClock.nowMicros() - startedMicros) / 1000
        return """
            UP \(FSClock.upTimeText(millis: upMillis))
            FreeSWITCH (Version 1.10.12-release+switchyard-emulator 64bit) is ready
            \(sessionsSinceStartup) session(s) since startup
            \(channels.count) session(s) - peak \(sessionPeak), last 5min \(sessionPeak)
            0 session(s) per Sec out of max 30, peak 0, last 5min 0
            \(config.maxChannels) session(s) max
            min idle cpu 0.00/98.50
            Current Stack Size/Max 240K/8192K

            """
    }

    func show(_ args: String) -> String {
        let words = args.lowercased().split(separator: " ").map(String.init)
        switch words {
        case ["channels", "count"], ["calls", "count"]:
            return "\n\(channels.count) total.\n"
        case ["channels", "as", "json"], ["calls", "as", "json"]:
            return channelsJSON()
        case ["channels"], ["calls"]:
            var out = "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,callstate\n"
            for c in channels.values.sorted(by: { $0.createdMicros < $1.createdMicros }) {
                out += "\(c.uuid),\(c.direction.rawValue),\(FSClock.localDate(c.createdMicros)),\(c.createdMicros / 1_000_000),\(c.name),"
                out += "CS_EXECUTE,\(c.callerNumber),\(c.callerNumber),\(config.sipHost),\(c.destination),\(c.callState.rawValue)\n"
            }
            out += "\n\(channels.count) total.\n"
            return out
        default:
            return "-USAGE: show channels [count|as json]\n"
        }
    }

    func channelsJSON() -> String {
        guard !channels.isEmpty else { return "{\"row_count\":0}" }
        let rows: [[String: String]] = channels.values.sorted(by: { $0.createdMicros < $1.createdMicros }).map { c in
            [
                "uuid": c.uuid, "direction": c.direction.rawValue, "created": FSClock.localDate(c.createdMicros),
                "created_epoch": String(c.createdMicros / 1_000_000), "name": c.name, "state": "CS_EXECUTE",
                "cid_name": c.callerNumber, "cid_num": c.callerNumber, "ip_addr": config.sipHost, "dest": c.destination,
                "application": "park", "application_data": "", "dialplan": "XML", "context": "default",
                "read_codec": "PCMU", "read_rate": "8000", "read_bit_rate": "64000",
                "write_codec": "PCMU", "write_rate": "8000", "write_bit_rate": "64000", "secure": "", "hostname": config.name,
                "presence_id": "", "presence_data": "", "accountcode": "", "callstate": c.callState.rawValue,
                "callee_name": "", "callee_num": "", "callee_direction": "", "call_uuid": c.uuid,
                "sent_callee_name": "", "sent_callee_num": "", "initial_cid_name": c.callerNumber, "initial_cid_num": c.callerNumber,
                "initial_ip_addr": config.sipHost, "initial_dest": c.destination, "initial_dialplan": "XML", "initial_context": "default",
            ]
        }
        let object: [String: Any] = ["row_count": rows.count, "rows": rows]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    func sofiaStatus() -> String {
        let line = String(repeating: "=", count: 93)
        return """
                                 Name          Type                                       Data      State
            \(line)
                             external       profile          sip:mod_sofia@\(config.sipHost):\(config.sipPort)      RUNNING (0)
                       \(config.sipHost)         alias                                   internal      ALIASED
            \(line)
            1 profile 1 alias

            """
    }

    /// `fsnode status` and `fsnode fault <stall|slow <ms>|refuse|mute-esl|hang-esl|drop-esl|die|clear>`: the
    /// emulator's own commands, for drills.
    func emulatorCommand(_ args: String) -> String {
        let words = args.lowercased().split(separator: " ").map(String.init)
        switch words.first {
        case "status", nil:
            return "+OK name=\(config.name) channels=\(channels.count) max=\(config.maxChannels) faults=\(faults)\n"
        case "fault":
            guard words.count >= 2 else { return "-ERR usage: fsnode fault <stall|slow <ms>|refuse|mute-esl|hang-esl|drop-esl|die|clear>\n" }
            switch words[1] {
            case "stall": faults.stall = true
            case "slow":
                guard words.count >= 3, let ms = Int(words[2]), ms >= 0 else { return "-ERR usage: fsnode fault slow <ms>\n" }
                faults.slow = ms == 0 ? nil : .milliseconds(ms)
            case "refuse": faults.refuse = true
            case "mute-esl": faults.muteESL = true
            case "hang-esl": faults.hangESL = true
            case "clear": faults = FSFaults()
            case "drop-esl":
                // After this reply has been written.
                loop.assumeIsolated().execute { [self] in
                    for l in Array(listeners.values) { l.close(notice: true) }
                }
            case "die":
                logger.warning("fault: die")
                let die = onDie
                loop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { die() }
            default:
                return "-ERR unknown fault \(words[1])\n"
            }
            logger.notice("fault set", metadata: ["faults": "\(faults)", "command": "\(args)"])
            return "+OK faults=\(faults)\n"
        default:
            return "-ERR usage: fsnode status | fsnode fault <stall|slow <ms>|refuse|mute-esl|hang-esl|drop-esl|die|clear>\n"
        }
    }
}
