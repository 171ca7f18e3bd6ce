import Foundation
import Testing
import TestSupport

extension Integration {
    /// RFC 4475's torture messages and out-of-dialog non-INVITE requests against the real binary.
    @Suite("RFC 4475 and out-of-dialog methods", .serialized, .timeLimit(.minutes(1)))
    struct TortureTests {
        struct Expectation: Decodable {
            var expect: String
            var switchyard: String?
        }

        /// A node that answers probes (200), INVITEs (100 Trying) and other requests (200), and
        /// records the Call-IDs of the requests it got.
        final class RespondingNode: @unchecked Sendable {
            // @unchecked: `seen` is guarded by `lock`; the socket is used by the responder task only.
            let socket: SIPUDPClient
            private let lock = NSLock()
            private var seen: Set<String> = []
            private var task: Task<Void, Never>?

            init(proxyPort: @escaping @Sendable () -> Int) throws {
                socket = try SIPUDPClient()
                let socket = self.socket
                task = Task { [weak self] in
                    while !Task.isCancelled {
                        guard let d = socket.receive(timeout: .milliseconds(20)) else { continue }
                        let text = String(decoding: d, as: UTF8.self)
                        guard !text.hasPrefix("SIP/2.0"), !text.hasPrefix("ACK ") else { continue }
                        if let line = text.components(separatedBy: "\r\n").first(where: {
                            $0.lowercased().hasPrefix("call-id:") || $0.lowercased().hasPrefix("i:")
                        }) {
                            self?.record(String(line[line.index(after: line.firstIndex(of: ":")!)...]).trimmingCharacters(in: .whitespaces))
                        }
                        let status = text.hasPrefix("INVITE ") ? "100 Trying" : "200 OK"
                        try? socket.send(TortureTests.answer(text, status), to: proxyPort())
                    }
                }
            }

            private func record(_ callID: String) { lock.withLock { _ = seen.insert(callID) } }
            func saw(_ callID: String) -> Bool { lock.withLock { seen.contains(callID) } }
            func stop() { task?.cancel() }
        }

        @Test("each RFC 4475 message sent over TCP is forwarded to the node or gets the answer expectations.json names")
        func rfc4475OverTCP() async throws {
            let dir = try TemporaryDirectory()
            let portBox = PortBox()
            let node = try RespondingNode { portBox.port }
            defer { node.stop() }
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.socket.localPort], failover: .init(inviteTimeout: "2s"), in: dir)
            portBox.port = proxy.port
            let expectations: [String: Expectation] = try Fixtures.json("sip/rfc4475/expectations.json")
            var disagreements: [String] = []
            let files = try Fixtures.files(in: "sip/rfc4475", withExtension: "sip")
            #expect(files.count == 50)
            for file in files {
                let name = String(file.split(separator: "/").last!)
                guard let e = expectations[name] else {
                    disagreements.append("\(name): not in expectations.json")
                    continue
                }
                var wanted = e.switchyard ?? e.expect
                // On a stream, a Content-Length beyond the bytes sent is a message still arriving
                // (RFC 4475 §3.1.2.2): no answer; the header deadline closes the connection later.
                if name == "clerr.sip" { wanted = "drop" }
                let bytes = try Fixtures.bytes(file)
                let text = String(decoding: bytes, as: UTF8.self)
                let callID = text.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("call-id:") || $0.lowercased().hasPrefix("i:") }
                    .map { String($0[$0.index(after: $0.firstIndex(of: ":")!)...]).trimmingCharacters(in: .whitespaces) }
                let connection = try SIPTCPClient(connectingTo: proxy.port)
                connection.write(bytes)
                if wanted == "forward" {
                    let reached = await Poll.until(timeout: .seconds(2), interval: .milliseconds(10)) { callID.map(node.saw) ?? false }
                    if !reached { disagreements.append("\(name): expected to reach the node, did not") }
                    continue
                }
                // What comes back first, 100 Trying aside.
                var got = "none"
                let deadline = ContinuousClock.now + .milliseconds(wanted == "drop" ? 300 : 2_000)
                var buffer: [UInt8] = []
                while ContinuousClock.now < deadline {
                    buffer += connection.read(timeout: .milliseconds(50))
                    let statuses = String(decoding: buffer, as: UTF8.self).components(separatedBy: "\r\n")
                        .filter { $0.hasPrefix("SIP/2.0 ") && !$0.hasPrefix("SIP/2.0 100 ") }
                    if let first = statuses.first {
                        got = String(first.dropFirst(8).prefix(3))
                        break
                    }
                }
                if wanted == "drop" ? got != "none" : got != wanted {
                    disagreements.append("\(name): expected \(wanted == "drop" ? "no answer" : wanted), got \(got)")
                }
            }
            #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))\n\(proxy.logTail())")
            #expect(proxy.isRunning)
        }

        final class PortBox: @unchecked Sendable {
            // @unchecked: written once before the responder needs it, read afterwards.
            var port = 0
        }

        /// A node's answer to `request`: its Via, From, To (+tag), Call-ID and CSeq lines.
        static func answer(_ request: String, _ status: String) -> String {
            var lines = ["SIP/2.0 \(status)"]
            for line in request.components(separatedBy: "\r\n") {
                // Header names as written, compact forms included (RFC 3261 §7.3.3).
                let name = line.split(separator: ":", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
                if ["via", "v", "from", "f", "call-id", "i", "cseq"].contains(name) {
                    lines.append(line)
                } else if name == "to" || name == "t" {
                    lines.append(line + ";tag=node")
                }
            }
            return (lines + ["Content-Length: 0"]).joined(separator: "\r\n") + "\r\n\r\n"
        }

        @Test("an out-of-dialog MESSAGE reaches a node and its 200 reaches the sender; an unknown method gets 405 with Allow")
        func messageIsDispatched() async throws {
            let dir = try TemporaryDirectory()
            let node = try SIPUDPClient()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.localPort], in: dir)
            let sender = try SIPUDPClient()
            func request(_ method: String, _ n: Int) -> String {
                "\(method) sip:+12125551212@127.0.0.1:\(proxy.port) SIP/2.0\r\n"
                    + "Via: SIP/2.0/UDP 127.0.0.1:\(sender.localPort);rport;branch=z9hG4bKmsg\(n)\r\n"
                    + "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=m\(n)\r\nTo: <sip:+12125551212@127.0.0.1>\r\n"
                    + "Call-ID: msg-\(n)\r\nCSeq: 1 \(method)\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
            }
            try sender.send(request("MESSAGE", 1), to: proxy.port)
            // The node may get probes too: find the MESSAGE.
            var forwarded: String?
            _ = await Poll.until(timeout: .seconds(2), interval: .milliseconds(10)) {
                while let d = node.receive(timeout: .milliseconds(10)) {
                    let text = String(decoding: d, as: UTF8.self)
                    if text.hasPrefix("MESSAGE ") { forwarded = text }
                }
                return forwarded != nil
            }
            let message = try #require(forwarded, "the MESSAGE reaches the node\n\(proxy.logTail())")
            #expect(message.hasSuffix("\r\n\r\nhi"), "with its body")
            try node.send(Self.answer(message, "200 OK"), to: proxy.port)
            let reply = sender.receive(timeout: .seconds(2)).map { String(decoding: $0, as: UTF8.self) }
            #expect(reply?.hasPrefix("SIP/2.0 200 OK") == true, "the node's 200 reaches the sender: \(reply ?? "nothing")")

            try sender.send(request("FROBNICATE", 2), to: proxy.port)
            let refused = sender.receive(timeout: .seconds(2)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(refused.hasPrefix("SIP/2.0 405 Method Not Allowed"))
            #expect(refused.contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH, REFER, INFO\r\n"))
        }
    }
}
