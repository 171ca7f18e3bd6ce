import Foundation
import NIOPosix
#if canImport(Glibc)
    import Glibc
#endif

/// Where a status callback may go: the URL's host is resolved and refused when any of its
/// addresses is loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64/10),
/// unspecified, broadcast or multicast, so a customer's `status_callback` cannot reach the
/// platform's own network (SSRF). Only http and https.
///
/// Known limit: the HTTP client resolves the name again to connect, so a name that answers
/// differently the second time (DNS rebinding) is not caught here.
enum DestinationPolicy {
    enum Verdict: Sendable, Equatable {
        case allowed
        case refused(String)
    }

    static func check(_ url: String) async -> Verdict {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return .refused("not an http(s) URL")
        }
        guard let raw = u.host, !raw.isEmpty else { return .refused("no host") }
        let host = raw.hasPrefix("[") && raw.hasSuffix("]") ? String(raw.dropFirst().dropLast()) : raw
        let addresses: [[UInt8]]
        do {
            addresses = try await NIOThreadPool.singleton.runIfActive { try resolve(host) }
        } catch {
            return .refused("\(host) does not resolve: \(error)")
        }
        guard !addresses.isEmpty else { return .refused("\(host) has no address") }
        for a in addresses {
            if let why = internalRange(a) { return .refused("\(host) resolves to \(format(a)) (\(why))") }
        }
        return .allowed
    }

    struct ResolveError: Error, CustomStringConvertible {
        var description: String
    }

    /// Every IPv4 (4 bytes) and IPv6 (16 bytes) address of `host`.
    static func resolve(_ host: String) throws -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &res)
        guard rc == 0 else { throw ResolveError(description: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(res) }
        var out: [[UInt8]] = []
        var p = res
        while let ai = p {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    out.append(withUnsafeBytes(of: &a) { Array($0) })
                }
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var a = sin6.pointee.sin6_addr
                    out.append(withUnsafeBytes(of: &a) { Array($0) })
                }
            }
            p = ai.pointee.ai_next
        }
        return out
    }

    /// Why the address is internal, or nil for a public one.
    static func internalRange(_ a: [UInt8]) -> String? {
        if a.count == 4 {
            switch (a[0], a[1]) {
            case (0, _): return "unspecified"
            case (10, _): return "private"
            case (127, _): return "loopback"
            case (169, 254): return "link-local"
            case (172, 16...31): return "private"
            case (192, 168): return "private"
            case (100, 64...127): return "shared (CGNAT)"
            case (198, 18...19): return "benchmarking"
            case (224...239, _): return "multicast"
            case (240...255, _): return "reserved"
            default: return nil
            }
        }
        guard a.count == 16 else { return "unknown family" }
        if a.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return "loopback" }
        if a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xff && a[11] == 0xff { return internalRange(Array(a[12..<16])) }  // IPv4-mapped
        if a[0] == 0xfe && (a[1] & 0xc0) == 0x80 { return "link-local" }
        if (a[0] & 0xfe) == 0xfc { return "private (unique local)" }
        if a[0] == 0xff { return "multicast" }
        return nil
    }

    static func format(_ a: [UInt8]) -> String {
        if a.count == 4 { return a.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: a.count, by: 2).map { String(UInt16(a[$0]) << 8 | UInt16(a[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
