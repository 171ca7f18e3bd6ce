public import NIOCore

/// Destinations the proxy never sends to, whatever a message asks for: a Via sent-by or a
/// Route may name anything, and a datagram to broadcast, multicast or an unspecified address
/// is either refused by the kernel or reaches hosts that asked for nothing.
public enum DestinationCheck {
    /// Why a destination is refused.
    public enum Refusal: String, Sendable, Hashable {
        case broadcast, multicast, unspecified, reserved
        case portZero = "port-zero"
        case notIP = "not-ip"
    }

    /// nil when `address` may be sent to.
    public static func refusal(for address: SocketAddress) -> Refusal? {
        switch address {
        case .v4(let a):
            if a.address.sin_port == 0 { return .portZero }
            let ip = UInt32(bigEndian: a.address.sin_addr.s_addr)
            return refusal(ipv4: ip)
        case .v6(let a):
            if a.address.sin6_port == 0 { return .portZero }
            let bytes = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            if bytes[0] == 0xFF { return .multicast }
            if bytes.allSatisfy({ $0 == 0 }) { return .unspecified }
            // ::ffff:a.b.c.d carries an IPv4 destination.
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                let ip = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
                return refusal(ipv4: ip)
            }
            return nil
        case .unixDomainSocket:
            return .notIP
        }
    }

    /// nil when the IPv4 address (host order) may be sent to.
    public static func refusal(ipv4 ip: UInt32) -> Refusal? {
        if ip == 0xFFFF_FFFF { return .broadcast }
        if ip >> 24 == 0 { return .unspecified }  // 0.0.0.0/8: "this network" (RFC 1122 §3.2.1.3)
        if ip >> 28 == 0xE { return .multicast }  // 224.0.0.0/4
        if ip >> 28 == 0xF { return .reserved }  // 240.0.0.0/4 (RFC 1112 §4)
        return nil
    }
}
