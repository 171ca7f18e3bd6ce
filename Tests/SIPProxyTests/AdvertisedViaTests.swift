import Dispatcher
import SIPCore
import Testing

@testable import SIPProxy

@Suite struct AdvertisedViaTests {
    /// The Via the core tells the value cache about is exactly what parsing our Via value gives,
    /// for every transport and for a name, an IPv4 and an IPv6 address.
    @Test(arguments: ["127.0.0.1:5060", "proxy.example.com:5070", "[2001:db8::7]:5080"])
    func theRememberedViaIsTheParseOfOurVia(_ advertise: String) throws {
        let forms = AdvertisedForms(
            advertise: try #require(HostPort(parsing: advertise)),
            listen: [
                ListenAddress(transport: .udp, address: HostPort(host: "0.0.0.0", port: 5060)),
                ListenAddress(transport: .tls, address: HostPort(host: "0.0.0.0", port: 5061)),
            ])
        for transport in [SIPEndpoint.Transport.udp, .tcp, .tls] {
            for branch in ["z9hG4bKsy0123abcd4f2e.00000000002a", "z9hG4bKsyffffffff0000.ffffffffffff"] {
                let parsed = SIPMessageParser.parseVia(forms.viaValuePrefix(transport) + branch)
                #expect(parsed != nil)
                #expect(forms.via(transport, branch: branch) == parsed, "\(transport) \(advertise)")
            }
        }
    }
}
