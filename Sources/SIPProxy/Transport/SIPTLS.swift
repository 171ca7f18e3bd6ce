public import Dispatcher
import Glibc
import NIOCore
import NIOSSL
import X509

/// The proxy's TLS material, read from the files `proxy.tls` and `trunks[].tls_ca` name (at
/// start and on every reload): the server contexts, the client context towards TLS next hops,
/// and which trunk a client certificate identifies. Immutable; a reload builds a new one.
///
/// - A TLS connection from a trunk with its own `tls_ca` gets a context that requires a
///   certificate signed by that CA (the handshake fails without one).
/// - Any other connection gets the default context: when some CA is configured, a certificate
///   is asked for and, if presented, must chain to one of them; without any CA none is asked.
/// - After the handshake, `identify` checks a trunk's `tls_subject` and names the trunk the
///   connection's requests count for.
struct SIPTLSContexts: Sendable {
    struct TrunkIdentity: Sendable {
        let name: String
        let subject: String?
        /// The server context that requires this trunk's own CA (`tls_ca`), if it has one.
        let context: NIOSSLContext?
    }

    let server: NIOSSLContext
    /// Sources of the trunks with TLS settings, most specific first, with their trunk's index.
    private let rules: [(source: TrunkSource, trunk: Int)]
    let client: NIOSSLContext
    let trunks: [TrunkIdentity]
    /// The proxy certificate's expiry, seconds since 1970.
    let certificateNotAfter: Int

    init(settings: TLSSettings, trunks declared: [Trunk], now: Int = Int(time(nil))) throws(TLSMaterialError) {
        let chain = try Self.certificates(settings.certificate, role: "proxy.tls.certificate")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.key, format: .pem)
        } catch {
            throw TLSMaterialError(file: settings.key, role: "proxy.tls.key", problem: "not a PEM private key (\(error))")
        }
        let leaf = chain[0]
        guard Int(leaf.notValidAfter) > now else {
            throw TLSMaterialError(file: settings.certificate, role: "proxy.tls.certificate", problem: "expired \(Int(leaf.notValidAfter) - now) s ago")
        }
        certificateNotAfter = Int(leaf.notValidAfter)
        let ownChain = chain.map { NIOSSLCertificateSource.certificate($0) }

        var allCAs: [NIOSSLCertificate] = []
        if let file = settings.clientCA { allCAs += try Self.certificates(file, role: "proxy.tls.client_ca") }
        var identities: [TrunkIdentity] = []
        var rules: [(source: TrunkSource, trunk: Int)] = []
        for t in declared where t.tlsSubject != nil || t.tlsCA != nil {
            var context: NIOSSLContext?
            if let file = t.tlsCA {
                let ca = try Self.certificates(file, role: "trunks[\(t.name)].tls_ca")
                allCAs += ca
                var config = TLSConfiguration.makeServerConfiguration(certificateChain: ownChain, privateKey: .privateKey(key))
                config.certificateVerification = .noHostnameVerification
                config.trustRoots = .certificates(ca)
                context = try Self.context(config, file: file)
            }
            for source in t.sources { rules.append((source, identities.count)) }
            identities.append(TrunkIdentity(name: t.name, subject: t.tlsSubject, context: context))
        }
        rules.sort { $0.source.isMoreSpecific(than: $1.source) }
        self.rules = rules
        trunks = identities

        var serverConfig = TLSConfiguration.makeServerConfiguration(certificateChain: ownChain, privateKey: .privateKey(key))
        if !allCAs.isEmpty {
            serverConfig.certificateVerification = .optionalVerification
            serverConfig.trustRoots = .certificates(allCAs)
        } else {
            serverConfig.certificateVerification = .none
        }
        server = try Self.context(serverConfig, file: settings.certificate)

        var clientConfig = TLSConfiguration.makeClientConfiguration()
        clientConfig.certificateChain = ownChain
        clientConfig.privateKey = .privateKey(key)
        if let file = settings.nodeCA {
            clientConfig.trustRoots = .certificates(try Self.certificates(file, role: "proxy.tls.node_ca"))
            // Next hops are IP literals (no DNS on the hot path): the chain is checked, not a name.
            clientConfig.certificateVerification = .noHostnameVerification
        } else {
            clientConfig.certificateVerification = .none
        }
        client = try Self.context(clientConfig, file: settings.nodeCA ?? settings.certificate)
    }

    /// Reads the TLS files of `regions`, as the proxy does at start and on reload; nil when it
    /// has no `proxy.tls`.
    static func load(_ regions: RegionsConfig) throws(TLSMaterialError) -> SIPTLSContexts? {
        guard let settings = regions.proxy.tls else { return nil }
        return try SIPTLSContexts(settings: settings, trunks: regions.trunks)
    }

    /// The context for a connection from `remote`: its trunk's own-CA context, else the default.
    func serverContext(for remote: SocketAddress?) -> NIOSSLContext {
        remote.flatMap(sourceTrunk)?.context ?? server
    }

    /// Why a handshaken connection must be closed, or the trunk it belongs to (nil: none by
    /// certificate; its requests are judged by source address as over UDP and TCP).
    enum Identity: Equatable {
        case trunk(String)
        case anonymous
        case refused(String)
    }

    func identify(remote: SocketAddress?, certificate: NIOSSLCertificate?) -> Identity {
        let fromSource = remote.flatMap(sourceTrunk)
        let names = certificate.map(Self.names) ?? []
        if let t = fromSource {
            guard let subject = t.subject else { return .trunk(t.name) }
            guard !names.isEmpty else { return .refused("no-certificate") }
            return names.contains(subject) ? .trunk(t.name) : .refused("subject")
        }
        guard !names.isEmpty else { return .anonymous }
        // A certificate the default context verified: the trunk whose subject it carries.
        if let t = trunks.first(where: { $0.subject.map(names.contains) == true && $0.context == nil }) { return .trunk(t.name) }
        return .anonymous
    }

    /// The trunk with TLS settings whose most specific source `remote` is in.
    private func sourceTrunk(_ remote: SocketAddress) -> TrunkIdentity? {
        guard case .v4(let a) = remote else { return nil }
        let ip = UInt32(bigEndian: a.address.sin_addr.s_addr)
        let port = remote.port ?? 0
        return rules.first { $0.source.contains(ip: ip, port: port) }.map { trunks[$0.trunk] }
    }

    /// The names a certificate answers to: its subject (`CN=…,O=…`), its common name and the
    /// DNS names of its subjectAltName.
    static func names(_ certificate: NIOSSLCertificate) -> Set<String> {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return [] }
        var names: Set<String> = [parsed.subject.description]
        for rdn in parsed.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                names.insert(String(describing: attribute.value))
            }
        }
        if let san = try? parsed.extensions.subjectAlternativeNames {
            for case .dnsName(let dns) in san { names.insert(dns) }
        }
        return names
    }

    private static func certificates(_ file: String, role: String) throws(TLSMaterialError) -> [NIOSSLCertificate] {
        let certs: [NIOSSLCertificate]
        do {
            certs = try NIOSSLCertificate.fromPEMFile(file)
        } catch {
            throw TLSMaterialError(file: file, role: role, problem: "cannot be read as PEM certificates (\(error))")
        }
        guard !certs.isEmpty else { throw TLSMaterialError(file: file, role: role, problem: "holds no certificate") }
        return certs
    }

    private static func context(_ config: TLSConfiguration, file: String) throws(TLSMaterialError) -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: config)
        } catch {
            throw TLSMaterialError(file: file, role: "TLS context", problem: "\(error)")
        }
    }
}

/// A certificate, key or CA file that cannot be used: the proxy does not start with it, and a
/// reload that names it is refused (the running material stays).
public struct TLSMaterialError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let role: String
    public let problem: String

    public var description: String { "\(role) \(file): \(problem)" }
}

/// `switchyard check`: the TLS files of a configuration, read as the proxy reads them.
public enum SIPTLSCheck {
    /// Seconds until the proxy certificate expires; nil when the configuration has no TLS.
    public static func secondsLeft(_ regions: RegionsConfig) throws(TLSMaterialError) -> Int? {
        try SIPTLSContexts.load(regions).map { $0.certificateNotAfter - Int(time(nil)) }
    }
}
