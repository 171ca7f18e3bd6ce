// A microbenchmark of the proxy core alone (no sockets, no event loop): whole calls as the
// shared bench's sipp scenarios make them (INVITE → 100/180/200 → ACK, and the BYE → 200 some
// calls later, so that many dialogs are open at once), fed to `ProxyCore.handle` on fake time,
// 1,000 calls a second. Arguments: calls (200,000) and dialogs open at once (500). Prints the core's time per call (user space only, hot caches)
// and, with Bench/malloc-count.c preloaded, its allocations per call. `scripts/bench-core` runs
// it, and counts its instructions with callgrind: figures for before/after comparisons of the
// message path that the sipp bench (kernel, wake-ups, a loaded machine) cannot give.
import Dispatcher
import Logging
import NIOCore
import SIPProxy

#if canImport(Glibc)
    import Glibc
#endif

/// With a malloc-counting shim preloaded (`mc_count`), allocations inside the core are counted too.
typealias CountFunction = @convention(c) () -> Int
let mallocCount: CountFunction? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mc_count").map { unsafeBitCast($0, to: CountFunction.self) }

final class Sink: SIPTransportSender {
    var sent: [(ByteBuffer, SIPEndpoint)] = []
    func send(_ bytes: ByteBuffer, to destination: SIPEndpoint, failureToken: ClientTransactionKey?) { sent.append((bytes, destination)) }
    func flush() {}
}

let yaml = """
    proxy:
      listen: [ "udp://127.0.0.1:5060" ]
      trusted: [ "127.0.0.0/8" ]
      region: bench
    dispatch:
      policy: round-robin
      failover: { invite_timeout: 2s, retry_on: [408, 500, 502, 503, 504], max_attempts: 2, hold_down: 5s }
    regions:
      bench:
        nodes:
          - { name: b1, sip: "127.0.0.1:5071", max_channels: 100000 }
          - { name: b2, sip: "127.0.0.1:5072", max_channels: 100000 }
    """
func run() throws {
    let regions = try RegionsConfigLoader.load(yaml: yaml)
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    var now = ContinuousClock.now
    var configuration = ProxyConfiguration(regions: regions)
    configuration.probeEnabled = false
    let sink = Sink()
    let core = ProxyCore(
        configuration: configuration, dispatcher: NodeDispatcher(config: regions, localRegion: "bench"), transport: sink, logger: logger, now: now)
    let caller = SIPEndpoint(transport: .udp, address: try SocketAddress(ipAddress: "127.0.0.1", port: 5999))

    func lines(_ b: ByteBuffer) -> [Substring] { String(buffer: b).split(separator: "\r\n", omittingEmptySubsequences: false) }
    func header(_ ls: [Substring], _ name: String) -> [Substring] { ls.filter { $0.lowercased().hasPrefix(name.lowercased() + ":") } }

    /// The node's response to a forwarded request: its Via, Record-Route, From, To (+tag), Call-ID, CSeq.
    func response(_ request: ByteBuffer, _ status: String, toTag: String?) -> ByteBuffer {
        let ls = lines(request)
        var out = ["SIP/2.0 " + status]
        for l in ls.dropFirst() {
            let lower = l.lowercased()
            if lower.hasPrefix("via:") || lower.hasPrefix("record-route:") || lower.hasPrefix("from:") || lower.hasPrefix("call-id:")
                || lower.hasPrefix("cseq:")
            {
                out.append(String(l))
            } else if lower.hasPrefix("to:") {
                out.append(toTag.map { l.contains("tag=") ? String(l) : l + ";tag=" + $0 } ?? String(l))
            }
        }
        out.append("Contact: <sip:127.0.0.1:5071;transport=UDP>")
        out.append("Content-Length: 0")
        return ByteBuffer(string: out.joined(separator: "\r\n") + "\r\n\r\n")
    }

    let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

    let calls = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
    let inFlight = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 500 : 500
    var coreTime = Duration.zero
    var allocations = 0
    let clock = ContinuousClock()
    func feed(_ bytes: ByteBuffer, _ from: SIPEndpoint) {
        let a0 = mallocCount?() ?? 0
        let t0 = clock.now
        core.handle(.message(bytes, from: from), now: now)
        core.handle(.tick, now: now)
        coreTime += clock.now - t0
        allocations += (mallocCount?() ?? 0) - a0
    }

    /// A call between its ACK and its BYE.
    struct Established {
        var index: Int
        var to: String
        var routes: String
    }
    func inDialog(_ method: String, _ i: Int, _ cseq: Int, _ to: String, _ routes: String) -> ByteBuffer {
        ByteBuffer(
            string: "\(method) sip:127.0.0.1:5071;transport=UDP SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-4242-\(i)-\(cseq)\r\n"
                + "From: sipp <sip:sipp@127.0.0.1:5999>;tag=4242SIPpTag00\(i)\r\n\(to)\r\n\(routes)\r\nCall-ID: \(i)-4242@127.0.0.1\r\n"
                + "CSeq: \(cseq) \(method)\r\nContact: sip:sipp@127.0.0.1:5999\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    }
    // INVITE → 100/180/200 → ACK, then the BYE `inFlight` calls later, as sipp's callers do at
    // 1,000 calls a second with calls held half a second: that many dialogs are open at once.
    var established: [Established] = []
    established.reserveCapacity(calls)
    for i in 0..<(calls + inFlight) {
        if i < calls {
            let invite = ByteBuffer(
                string: "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-4242-\(i)-0\r\n"
                    + "From: sipp <sip:sipp@127.0.0.1:5999>;tag=4242SIPpTag00\(i)\r\nTo: service <sip:service@127.0.0.1:5060>\r\n"
                    + "Call-ID: \(i)-4242@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:5999\r\nMax-Forwards: 70\r\n"
                    + "Subject: switchyard bench\r\nContent-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n" + sdp)
            sink.sent.removeAll(keepingCapacity: true)
            feed(invite, caller)
            guard let (forwarded, node) = sink.sent.first(where: { $0.1 != caller }) else { fatalError("INVITE not forwarded") }
            sink.sent.removeAll(keepingCapacity: true)
            feed(response(forwarded, "100 Trying", toTag: nil), node)
            feed(response(forwarded, "180 Ringing", toTag: "4242SIPpTag01\(i)"), node)
            feed(response(forwarded, "200 OK", toTag: "4242SIPpTag01\(i)"), node)
            guard let ok = sink.sent.last(where: { $0.1 == caller }) else { fatalError("200 not relayed") }
            let okLines = lines(ok.0)
            let call = Established(
                index: i, to: String(header(okLines, "To")[0]),
                routes: header(okLines, "Record-Route").map { "Route" + $0.dropFirst("Record-Route".count) }.joined(separator: "\r\n"))
            sink.sent.removeAll(keepingCapacity: true)
            feed(inDialog("ACK", i, 1, call.to, call.routes), caller)
            established.append(call)
        }
        if i >= inFlight {
            let call = established[i - inFlight]
            sink.sent.removeAll(keepingCapacity: true)
            feed(inDialog("BYE", call.index, 2, call.to, call.routes), caller)
            guard let (bye, byeNode) = sink.sent.first(where: { $0.1 != caller }) else { fatalError("BYE not forwarded") }
            feed(response(bye, "200 OK", toTag: nil), byeNode)
        }
        // 1,000 calls a second of fake time: transactions expire as they would under that load.
        now += .milliseconds(1)
    }
    let perCall = coreTime / calls
    print(
        "proxy-core-bench: \(calls) calls, \(perCall.components.attoseconds / 1_000_000_000) ns per call in ProxyCore.handle (7 messages in, 8 out)"
            + (mallocCount == nil ? "" : ", \(Double(allocations) / Double(calls)) allocations per call"))
}

try run()
