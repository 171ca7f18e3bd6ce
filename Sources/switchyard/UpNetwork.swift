import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where the parts of the `up` stack live on the network.
///
/// - **Loopback** (the default): everything on 127.0.0.1, fixed ports.
/// - **Namespaces** (`up --netns`): each region in its own network namespace
///   (`sy-us-east-1`, `sy-us-west-2`), joined by a WAN link that holds every packet 35 ms each
///   way (about the us-east-1 ↔ us-west-2 round trip; this kernel has no netem, so a TUN pair
///   relayed by `delaylink.py`, as measured in shared/REGIONS.md). Each region's processes bind
///   its region address (east 10.77.0.1, west 10.77.0.2: its end of the WAN link); the witness
///   (etcd and the third nats-server) stays in the root namespace on 10.77.9.1, and the root
///   namespace (where `up`, the drill and your sipp/curl run) reaches each region over a veth
///   without delay (10.77.1.0/24 east, 10.77.2.0/24 west, with routes to the region addresses).
///   Ports stay as in loopback mode. The addresses are private ones on veth and TUN devices of
///   this machine: nothing leaves it. (Not 127/8: the root namespace's loopback owns all of
///   it, and narrowing that would break the host.)
struct UpNetwork: Sendable {
    /// Per region (Layout.regions order): its namespace, or nil on the host's loopback.
    let namespaces: [String?]
    /// Per region: the address its processes bind and everyone else dials.
    let regionHost: [String]
    /// etcd and the third nats-server.
    let witnessHost: String
    /// Per region: the root namespace's own address toward that region (sipp's `-i`).
    let callerHost: [String]
    /// One-way delay of the WAN link, if any.
    let wanDelayMs: Int?

    static let loopback = UpNetwork(
        namespaces: [nil, nil], regionHost: ["127.0.0.1", "127.0.0.1"], witnessHost: "127.0.0.1", callerHost: ["127.0.0.1", "127.0.0.1"], wanDelayMs: nil)

    static func namespaced(delayMs: Int) -> UpNetwork {
        UpNetwork(
            namespaces: ["sy-us-east-1", "sy-us-west-2"], regionHost: ["10.77.0.1", "10.77.0.2"], witnessHost: "10.77.9.1",
            callerHost: ["10.77.1.1", "10.77.2.1"], wanDelayMs: delayMs)
    }

    var isNamespaced: Bool { namespaces.contains { $0 != nil } }

    /// The host of NATS server `i` (0, 1: the regions; 2: the witness).
    func natsHost(_ i: Int) -> String { i < regionHost.count ? regionHost[i] : witnessHost }

    /// `regions.yaml` as seen in this network: each node's SIP and ESL address on its region's
    /// host, and the namespaces' addresses trusted.
    func rewrite(config text: String, regions: RegionsConfigView) -> String {
        guard isNamespaced else { return text }
        var out = text.replacingOccurrences(of: "trusted: [", with: "trusted: [ \"10.77.0.0/16\",")
        for (r, name) in UpCommand.Layout.regions.enumerated() {
            for address in regions.addresses(in: name) {
                out = out.replacingOccurrences(of: "\"\(address.host):\(address.port)\"", with: "\"\(regionHost[r]):\(address.port)\"")
            }
        }
        return out
    }

    // MARK: Namespaces and links

    /// Creates the namespaces, veths, routes, and starts the delayed WAN link (as a stack
    /// process, so it stops with the stack). Stale namespaces of an earlier run go first.
    func setUp(_ stack: UpCommand.Stack, root: URL) throws {
        guard isNamespaced, let east = namespaces[0], let west = namespaces[1], let delay = wanDelayMs else { return }
        guard geteuid() == 0 else { throw UpNetworkError("--netns needs root (network namespaces, veth and TUN devices)") }
        tearDown()
        func ip(_ args: String) throws {
            let r = stack.runCapturing("/usr/sbin/ip", args.split(separator: " ").map(String.init))
            guard r.status == 0 else { throw UpNetworkError("ip \(args): \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))") }
        }
        func sysctl(_ ns: String, _ setting: String) throws {
            let r = stack.runCapturing("/usr/sbin/ip", ["netns", "exec", ns, "sysctl", "-q", "-w", setting])
            guard r.status == 0 else { throw UpNetworkError("sysctl \(setting) in \(ns): \(r.output)") }
        }
        let taken = Self.run("/usr/sbin/ip", ["route", "show", "10.77.0.0/16"]) + Self.run("/usr/sbin/ip", ["route", "show", "match", "10.77.0.1"])
        if taken.split(separator: "\n").contains(where: { !$0.hasPrefix("default") && !$0.isEmpty }) {
            throw UpNetworkError(
                "10.77.0.0/16 is already routed on this machine (\(taken.trimmingCharacters(in: .whitespacesAndNewlines))): --netns needs it free")
        }
        for ns in [east, west] {
            try ip("netns add \(ns)")
            try ip("-n \(ns) link set lo up")
            try sysctl(ns, "net.ipv4.conf.all.rp_filter=0")
        }
        // The witness address, on the root namespace's loopback.
        try ip("addr add \(witnessHost)/32 dev lo")
        // Root ↔ each region, no delay: how up, the drill and the witness reach the regions.
        for (r, ns) in [east, west].enumerated() {
            let rootSide = "sy-root\(r)", nsSide = "sy-up\(r)"
            try ip("link add \(rootSide) type veth peer name \(nsSide) netns \(ns)")
            try ip("addr add \(callerHost[r]) peer \(vethPeer(r)) dev \(rootSide)")
            try ip("link set \(rootSide) up")
            try ip("-n \(ns) addr add \(vethPeer(r)) peer \(callerHost[r]) dev \(nsSide)")
            try ip("-n \(ns) link set \(nsSide) up")
            try ip("-n \(ns) route add \(witnessHost)/32 via \(callerHost[r])")
            try ip("route add \(regionHost[r])/32 via \(vethPeer(r))")
        }
        // The delayed WAN link between the regions.
        let script = root.appendingPathComponent("delaylink.py")
        try Self.delayLink.write(to: script, atomically: true, encoding: .utf8)
        try stack.start("wan-link", "/usr/bin/python3", [script.path, east, "sy-wan", west, "sy-wan", String(delay), "86400"])
        try stack.waitFor("the WAN link", timeout: 10) {
            stack.runCapturing("/usr/sbin/ip", ["-n", east, "link", "show", "sy-wan"]).status == 0
                && stack.runCapturing("/usr/sbin/ip", ["-n", west, "link", "show", "sy-wan"]).status == 0
        }
        try ip("-n \(east) addr add \(regionHost[0]) peer \(regionHost[1]) dev sy-wan")
        try ip("-n \(east) link set sy-wan up")
        try ip("-n \(west) addr add \(regionHost[1]) peer \(regionHost[0]) dev sy-wan")
        try ip("-n \(west) link set sy-wan up")
        stack.say("network: \(east) (\(regionHost[0])) and \(west) (\(regionHost[1])) joined by a \(delay) ms each-way link; witness on \(witnessHost)")
    }

    /// The region side of root's veth toward region `r`.
    func vethPeer(_ r: Int) -> String { r == 0 ? "10.77.1.2" : "10.77.2.2" }

    /// Removes what `setUp` made (the namespaces take their veths and TUNs with them). Any
    /// process still inside a namespace is killed first.
    func tearDown() {
        guard isNamespaced else { return }
        for case let ns? in namespaces {
            let pids = Self.run("/usr/sbin/ip", ["netns", "pids", ns]).split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
            for pid in pids { kill(pid, SIGKILL) }
            _ = Self.run("/usr/sbin/ip", ["netns", "del", ns])
        }
        for r in 0..<regionHost.count { _ = Self.run("/usr/sbin/ip", ["route", "del", "\(regionHost[r])/32"]) }
        for r in 0..<callerHost.count { _ = Self.run("/usr/sbin/ip", ["link", "del", "sy-root\(r)"]) }
        _ = Self.run("/usr/sbin/ip", ["addr", "del", "\(witnessHost)/32", "dev", "lo"])
    }

    static func run(_ exe: String, _ args: [String]) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return "" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// shared/REGIONS.md's TUN delay relay: a TUN device in each namespace, every packet held
    /// DELAY_MS before it is passed across.
    static let delayLink = #"""
        #!/usr/bin/env python3
        # delaylink.py NS_A IF_A NS_B IF_B DELAY_MS SECONDS -- TUN pair between two netns, each packet held DELAY_MS
        import asyncio, ctypes, fcntl, os, signal, struct, sys
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        def setns(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                assert libc.setns(fd, 0x40000000) == 0, "setns failed (need root)"   # CLONE_NEWNET
            finally:
                os.close(fd)
        def tun(ns, name):                       # the device is created in the netns we are in
            setns(f"/run/netns/{ns}")
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
            return fd
        async def main(nsa, ifa, nsb, ifb, ms, secs):
            a, b = tun(nsa, ifa), tun(nsb, ifb)
            loop, stop = asyncio.get_running_loop(), asyncio.Event()
            def write(dst, pkt):
                try: os.write(dst, pkt)
                except OSError: pass             # peer down: drop, like a wire
            def pump(src, dst):
                while True:
                    try: pkt = os.read(src, 65535)
                    except BlockingIOError: return
                    loop.call_later(int(ms) / 1000, write, dst, pkt)
            loop.add_reader(a, pump, a, b); loop.add_reader(b, pump, b, a)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            try: await asyncio.wait_for(stop.wait(), float(secs))
            except asyncio.TimeoutError: pass
        # SIGTERM ends the relay at once (up ignores and blocks SIGTERM itself, and both are inherited).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
        asyncio.run(main(*sys.argv[1:7]))
        """#
}

/// The node addresses of a regions file, by region (what `rewrite` moves).
struct RegionsConfigView {
    let byRegion: [String: [(host: String, port: Int)]]
    func addresses(in region: String) -> [(host: String, port: Int)] { byRegion[region] ?? [] }
}

struct UpNetworkError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
