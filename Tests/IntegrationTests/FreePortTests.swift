import Foundation
import Testing
import TestSupport

/// The test helpers' ports: servers started by tests bind them after the check, so they must
/// not come from the range the kernel gives outgoing connections.
@Suite("Test support: free loopback ports")
struct FreePortTests {
    @Test("ports are distinct and below the ephemeral range")
    func portsStayOutOfTheEphemeralRange() throws {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let low = try #require(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) })
        let ports = try FreePort.next(50)
        #expect(Set(ports).count == 50)
        if low > 27000 { #expect(ports.allSatisfy { $0 >= 26000 && $0 < low }, "\(ports.filter { $0 >= low })") }
    }
}
