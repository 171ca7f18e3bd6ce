import Foundation
import Testing
import TestSupport

extension Integration {
    /// UDP requests bigger than a typical MTU (a video or ICE-rich SDP easily passes 2 KiB) are
    /// valid SIP up to 65,535 bytes (RFC 3261 §18.1.1 only says to prefer TCP above ~1300 bytes).
    @Suite("UDP datagram sizes", .serialized, .timeLimit(.minutes(1)))
    struct DatagramSizeTests {
        @Test("a UDP request of any size up to the limits is read whole and answered", arguments: [1_000, 2_100, 4_000, 8_000, 15_000])
        func largeUDPRequestIsReadWholeAndAnswered(size: Int) async throws {
            let dir = try TemporaryDirectory()
            let node = try SIPUDPClient()
            let proxy = try await SwitchyardProxy.start(nodePorts: [node.localPort], in: dir)
            let client = try SIPUDPClient()

            // An OPTIONS to the proxy padded with an extension header to `size` bytes; the header
            // section stays under the 16 KiB limit.
            let base = SIPTestMessages.options(toPort: proxy.port, fromPort: client.localPort)
            let padding = "X-Padding: " + String(repeating: "a", count: max(0, size - base.utf8.count - 13)) + "\r\n"
            let request = base.replacingOccurrences(of: "Content-Length: 0\r\n", with: padding + "Content-Length: 0\r\n")
            let reply = try client.request(Array(request.utf8), to: proxy.port, timeout: .seconds(2))
            proxy.stop()

            #expect(
                reply.flatMap(SIPTestMessages.statusCode) == 200,
                """
                a \(request.utf8.count)-byte OPTIONS over UDP gets 200, got \(reply.map(SIPTestMessages.firstLine) ?? "no response")
                \(proxy.logTail(lines: 5))
                """
            )
        }
    }
}
