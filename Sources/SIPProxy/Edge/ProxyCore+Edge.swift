import Dispatcher
import Logging
import NIOCore
import SIPCore

/// The edge toward the internet, before RFC 3261 processing: flood control on every message,
/// the scanner filter and the unknown-source policy on requests, and per-trunk call limits on
/// new INVITEs. Our own nodes (by SIP address) are never subject to any of it.
extension ProxyCore {
    /// `pike`: false when the message must be dropped unparsed, its source being banned.
    func floodAdmits(_ source: SIPEndpoint, trunk: Int?) -> Bool {
        guard config.edge.flood.enabled, trunk == nil || config.edge.flood.applyToTrunks, !isNodeAddress(source) else { return true }
        switch flood.admit(source.sourceKey, address: source.address.ipAddress ?? "\(source.address)", now: now) {
        case .pass:
            return true
        case .banned:
            metrics.floodDropped.increment()
            return false
        case .newlyBanned:
            metrics.floodDropped.increment()
            metrics.floodBans.increment()
            metrics.bannedSources.record(flood.bans.count)
            logger.warning(
                "source flooding: banned",
                metadata: [
                    "source": "\(source)", "requests": "\(config.edge.flood.requests)", "window": "\(config.edge.flood.window)",
                    "ban": "\(config.edge.flood.ban)",
                ])
            return false
        }
    }

    /// The source's address is banned for flooding right now (TCP refuses its connections).
    func isBanned(_ source: SIPEndpoint) -> Bool {
        guard let ban = flood.bans[source.sourceKey] else { return false }
        return ContinuousClock.now < ban.until
    }

    /// A request the edge turns away before §16.3: from a known scanner (dropped), or from no
    /// trunk (403 or dropped, by `edge.unknown_source`). True when it was handled here.
    func edgeRefuses(_ msg: SIPMessage, from source: SIPEndpoint, trunk: Int?, inDialog: Bool) -> Bool {
        if !inDialog, !config.scannerPatterns.isEmpty, isScanner(msg), !isNodeAddress(source) {
            metrics.scannerDropped.increment()
            if droppedLogBudget.allow(now: now) {
                logger.info(
                    "request from a SIP scanner dropped",
                    metadata: ["source": "\(source)", "user-agent": "\(msg.userAgentRange.map(msg.text) ?? "")", "method": "\(msg.method)"])
            }
            return true
        }
        guard trunk == nil, !isNodeAddress(source) else { return false }
        switch config.edge.unknownSource {
        case .reject:
            metrics.unknownRejected.increment()
            reply(msg, source, 403, "Forbidden")
        case .drop:
            metrics.unknownDropped.increment()
        }
        if droppedLogBudget.allow(now: now) {
            logger.info(
                "request from no trunk refused",
                metadata: ["source": "\(source)", "method": "\(msg.method)", "action": "\(config.edge.unknownSource.rawValue)"])
        }
        return true
    }

    /// The User-Agent contains one of the scanner patterns (ASCII case-insensitive, no copy).
    func isScanner(_ msg: SIPMessage) -> Bool {
        guard let range = msg.userAgentRange, !range.isEmpty else { return false }
        return msg.bytes.withUnsafeReadableBytes { raw in
            let ua = UnsafeRawBufferPointer(rebasing: raw[range])
            return config.scannerPatterns.contains { Self.containsFolded(ua, $0) }
        }
    }

    static func containsFolded(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        @inline(__always) func fold(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }
        for start in 0...(haystack.count - needle.count) {
            var i = 0
            while i < needle.count, fold(haystack[start + i]) == needle[i] { i += 1 }
            if i == needle.count { return true }
        }
        return false
    }

    /// A new INVITE from a trunk with limits: false when it may go on (it is counted), true when
    /// it was refused here with a 503.
    func trunkRefuses(_ msg: SIPMessage, from source: SIPEndpoint, trunk: Int?) -> Bool {
        guard let trunk, trunkGate.hasLimits(trunk), !isNodeAddress(source) else { return false }
        let name = trunkGate.trunks[trunk].trunk.name
        guard let refusal = trunkGate.admitCall(trunk: trunk, callID: msg.callID, now: now) else {
            metrics.trunkCall(name, active: trunkGate.trunks[trunk].active)
            return false
        }
        metrics.trunkRefused(name, refusal.rawValue)
        if droppedLogBudget.allow(now: now) {
            logger.notice(
                "trunk over its limit: INVITE refused with 503", metadata: ["trunk": "\(name)", "limit": "\(refusal.rawValue)", "source": "\(source)"])
        }
        // Over the rate, a second is enough; over the concurrency, calls must end first.
        let retryAfter = refusal == .rate ? 1 : config.retryAfterSeconds
        reply(msg, source, 503, "Service Unavailable", extraHeaders: ["Retry-After: \(retryAfter)"])
        return true
    }

    /// A trunk call ended (BYE seen, or the INVITE failed): it stops counting.
    func trunkCallEnded(callID: String) {
        trunkGate.callEnded(callID: callID)
    }

    func sweepEdge(now: ContinuousClock.Instant) {
        flood.sweepIfDue(now: now)
        trunkGate.sweepIfDue(now: now, maxAge: config.edge.maxCallDuration)
    }

    // MARK: Admin

    /// The ban list and the trunks' counters (`GET /edge`).
    public func edgeStatus(now: ContinuousClock.Instant) -> EdgeStatus {
        let bans = flood.bans.values.filter { now < $0.until }.sorted { $0.since < $1.since }.map {
            EdgeStatus.BannedSource(
                address: $0.address, bannedForSeconds: seconds(now - $0.since), secondsLeft: seconds($0.until - now), dropped: $0.dropped)
        }
        let trunks = trunkGate.trunks.map {
            EdgeStatus.TrunkStatus(
                name: $0.trunk.name, sources: $0.trunk.sources.map(\.description), callsPerSecond: $0.trunk.callsPerSecond,
                maxConcurrent: $0.trunk.maxConcurrent, activeCalls: $0.trunk.maxConcurrent == nil ? nil : $0.active, accepted: $0.accepted,
                refusedRate: $0.refusedRate, refusedConcurrency: $0.refusedConcurrency)
        }
        return EdgeStatus(
            unknownSource: config.edge.unknownSource.rawValue, floodControl: config.edge.flood.enabled, trackedSources: flood.trackedSources,
            floodTableFull: flood.tableFull, banned: bans, trunks: trunks)
    }

    /// Lifts a ban by address; false when the address is not banned.
    public func unban(_ address: String) -> Bool {
        let keys = flood.bans.filter { $0.value.address == address }.map(\.key)
        for k in keys { _ = flood.unban(k) }
        metrics.bannedSources.record(flood.bans.count)
        return !keys.isEmpty
    }

    private func seconds(_ d: Duration) -> Double {
        ((Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }
}

/// The admin view of the edge: banned sources and trunk counters.
public struct EdgeStatus: Sendable, Codable, Hashable {
    public struct BannedSource: Sendable, Codable, Hashable {
        public var address: String
        public var bannedForSeconds: Double
        public var secondsLeft: Double
        /// Messages dropped from it since the ban began.
        public var dropped: Int
    }
    public struct TrunkStatus: Sendable, Codable, Hashable {
        public var name: String
        public var sources: [String]
        public var callsPerSecond: Int?
        public var maxConcurrent: Int?
        /// Calls from INVITE to BYE; counted only for a trunk with `max_concurrent`.
        public var activeCalls: Int?
        public var accepted: Int
        public var refusedRate: Int
        public var refusedConcurrency: Int
    }
    public var unknownSource: String
    public var floodControl: Bool
    public var trackedSources: Int
    public var floodTableFull: Bool
    public var banned: [BannedSource]
    public var trunks: [TrunkStatus]
}

extension ProxyCore {
    /// The trunk a TLS request counts for: the one its connection's certificate named, else
    /// the one its source address matches.
    func tlsTrunk(_ source: SIPEndpoint) -> Int? {
        if let id = source.connectionID, let name = connectionTrunks[id], let i = trunkGate.index(named: name) { return i }
        return trunkGate.rules.match(source)
    }

    /// A TLS handshake verified a certificate naming `trunk` (see `SIPTLSContexts.identify`).
    func bindConnection(_ id: UInt64, trunk: String) {
        connectionTrunks[id] = trunk
    }

    func connectionClosed(_ id: UInt64) {
        connectionTrunks[id] = nil
    }
}
