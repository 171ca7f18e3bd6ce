import Foundation
import TestSupport
import Testing

@testable import Dispatcher

@Suite struct RegionsConfigLoaderTests {
    static var repoRoot: URL { Fixtures.repositoryRoot }

    @Test(arguments: ["regions.yaml", "Fixtures/bench-regions.yaml"])
    func shippedConfigurationsAreValid(_ file: String) throws {
        let text = try String(contentsOf: Self.repoRoot.appendingPathComponent(file), encoding: .utf8)
        let config = try RegionsConfigLoader.load(yaml: text, file: file)
        #expect(!config.allNodes.isEmpty)
    }

    @Test func benchConfigurationIsTheHarnessLayout() throws {
        let text = try String(contentsOf: Self.repoRoot.appendingPathComponent("Fixtures/bench-regions.yaml"), encoding: .utf8)
        let config = try RegionsConfigLoader.load(yaml: text)
        #expect(config.proxy.listen.map(\.description) == ["udp://127.0.0.1:5060", "tcp://127.0.0.1:5060"])
        #expect(config.allNodes.map(\.sip.description) == ["127.0.0.1:5071", "127.0.0.1:5072"])
        // The harness's sipp backends have no channel limit: a capped node would turn the
        // max-rate ramp (up to 6,000 calls/s, calls held up to 1 s) into 503s of our own making.
        #expect(config.allNodes.allSatisfy { $0.maxChannels >= 10_000 })
    }

    @Test func defaultsFillWhatIsLeftOut() throws {
        let config = try RegionsConfigLoader.load(yaml: "regions:\n  east:\n    nodes:\n      - { name: a, sip: \"127.0.0.1:5080\" }\n")
        #expect(config.proxy.listen.count == 2)
        #expect(config.proxy.advertise == HostPort(host: "127.0.0.1", port: 5060))
        #expect(config.failover.inviteTimeout == .seconds(2))
        #expect(config.failover.retryOn == [408, 500, 502, 503, 504])
        #expect(config.allNodes[0].maxChannels == 500)
        #expect(config.proxy.maxTransactions == 500_000)
    }

    @Test(arguments: [
        ("regions:\n  east:\n    nodes:\n      - { name: a, sip: \"127.0.0.1\" }\n", "regions.east.nodes[0].sip"),
        ("regions:\n  east:\n    nodes:\n      - { sip: \"127.0.0.1:5080\" }\n", "regions.east.nodes[0].name"),
        ("regions:\n  east:\n    nodez: []\n", "regions.east.nodez"),
        ("regions:\n  east:\n    nodes:\n      - { name: a, sip: \"127.0.0.1:5080\", max_channels: abc }\n", "regions.east.nodes[0].max_channels"),
        ("proxy:\n  listen: [\"sctp://1.2.3.4:5060\"]\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "proxy.listen[0]"),
        ("dispatch:\n  policy: fastest\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "dispatch.policy"),
        (
            "dispatch:\n  failover: { invite_timeout: soon }\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n",
            "dispatch.failover.invite_timeout"
        ),
        ("dispatch:\n  failover: { retry_on: [200] }\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "dispatch.failover.retry_on[0]"),
        ("regions: {}\n", "regions"),
        ("proxy:\n  trusted: [\"10.0.0.0/33\"]\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "proxy.trusted[0]"),
        ("regions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }, { name: a, sip: \"127.0.0.1:2\" }]\n", "regions.e.nodes[1].name"),
        ("regions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }, { name: b, sip: \"127.0.0.1:1\" }]\n", "regions.e.nodes[1].sip"),
        ("proxy: [1, 2\n", ""),
        ("proxy:\n  max_transactions: 0\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "proxy.max_transactions"),
        // SIP over TLS needs a certificate and key; a subject needs a CA that checks it.
        ("proxy:\n  listen: [\"tls://127.0.0.1:5061\"]\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "proxy.tls"),
        ("regions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\", transport: tls }]\n", "proxy.tls"),
        (
            "proxy:\n  listen: [\"tls://127.0.0.1:5061\"]\n  tls: { certificate: c.pem }\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n",
            "proxy.tls.key"
        ),
        ("regions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\", transport: sctp }]\n", "regions.e.nodes[0].transport"),
        (
            "proxy:\n  listen: [\"tls://127.0.0.1:5061\"]\n  tls: { certificate: c.pem, key: k.pem }\ntrunks:\n  - { name: t, tls_subject: a.example }\n"
                + "regions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n", "trunks"
        ),
        (
            "trunks:\n  - { name: t, sources: [\"10.0.0.1\"], tls_ca: ca.pem }\nregions:\n  e:\n    nodes: [{ name: a, sip: \"127.0.0.1:1\" }]\n",
            "trunks"
        ),
    ])
    func everyErrorNamesItsKey(_ yaml: String, _ path: String) {
        do {
            _ = try RegionsConfigLoader.load(yaml: yaml)
            Issue.record("accepted invalid config, expected an error at \(path)")
        } catch {
            #expect(error.issues.contains { $0.path == path }, "\(error)")
        }
    }

    @Test func tlsPathsAreTakenFromTheFilesDirectory() throws {
        let yaml = """
            proxy:
              listen: [ "udp://127.0.0.1:5060", "tls://127.0.0.1:5061" ]
              tls: { certificate: certs/proxy.pem, key: /abs/proxy.key, client_ca: ca.pem }
            trunks:
              - { name: carrier, sources: [ "192.0.2.0/24" ], tls_ca: carrier-ca.pem, tls_subject: " sip.carrier.example " }
            regions:
              e:
                nodes: [{ name: a, sip: "127.0.0.1:1", transport: TLS }]
            """
        let config = try RegionsConfigLoader.load(yaml: yaml, file: "/etc/switchyard/regions.yaml")
        #expect(config.proxy.tls == TLSSettings(certificate: "/etc/switchyard/certs/proxy.pem", key: "/abs/proxy.key", clientCA: "/etc/switchyard/ca.pem"))
        #expect(config.trunks[0].tlsCA == "/etc/switchyard/carrier-ca.pem")
        #expect(config.trunks[0].tlsSubject == "sip.carrier.example")
        #expect(config.allNodes[0].transport == .tls)
        #expect(config.proxy.listen.map(\.transport) == [.udp, .tls])
    }

    @Test func allErrorsAreReportedAtOnce() {
        let yaml = "proxy:\n  bogus: 1\nregions:\n  e:\n    nodes: [{ name: a, sip: \"x\" }, { name: b }]\n"
        do {
            _ = try RegionsConfigLoader.load(yaml: yaml)
            Issue.record("accepted")
        } catch {
            #expect(Set(error.issues.map(\.path)) == ["proxy.bogus", "regions.e.nodes[0].sip", "regions.e.nodes[1].sip"])
        }
    }

    @Test(arguments: [("250ms", Duration.milliseconds(250)), ("2s", .seconds(2)), ("1.5s", .milliseconds(1500)), ("1m", .seconds(60))])
    func durationsParse(_ text: String, _ expected: Duration) {
        #expect(RegionsConfigLoader.parseDuration(text) == expected)
    }
}
