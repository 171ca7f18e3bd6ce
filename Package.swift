// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The SIP hot path (per message): exclusivity is proven by construction there (one event loop
/// owns the core), and the runtime checks cost ~2 % of CPU per call in `perf`.
let hotPath: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "switchyard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
    ],
    targets: [
        // C libraries, wrapped once; their types never leave the module that imports them.
        .systemLibrary(name: "COSIP", pkgConfig: "libosip2", providers: [.apt(["libosip2-dev"])]),
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // mallopt for the executable (not in Swift's Glibc module).
        .target(name: "CMallocTuning"),
        // The proxy's UDP sends (sendmmsg on a socket of our own, errors per datagram).
        .target(name: "CDatagramSocket"),
        // libosip2's allocations during one header parse, from a per-thread scratch arena.
        .target(name: "COSIPArena", dependencies: ["COSIP"]),
        .target(name: "SIPCore", dependencies: ["COSIP", "COSIPArena", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: hotPath),
        .target(name: "Dispatcher", dependencies: [.product(name: "Yams", package: "Yams")], swiftSettings: strict),
        .target(
            name: "SIPProxy",
            dependencies: [
                "SIPCore", "Dispatcher", "ESL", "CDatagramSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: hotPath
        ),
        .target(
            name: "ESL",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Store",
            dependencies: [
                "CLibPQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Bus",
            dependencies: [
                "CNATS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CallPlane", dependencies: ["Bus", "Store"], swiftSettings: strict),
        .target(
            name: "API",
            dependencies: [
                "Store", "Bus", "CallPlane",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Workers",
            dependencies: [
                "ESL", "Store", "Bus", "Dispatcher", "CallPlane",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "FSEmulator",
            dependencies: [
                "ESL", "SIPCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "SIPProxy", "Dispatcher", "CMallocTuning", "ESL", "FSEmulator", "Store", "Bus", "API", "Workers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // Shared test helpers: process launcher, free ports, sipp runner, fixture loading.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "SIPCoreTests", dependencies: ["SIPCore", "COSIPArena", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "DispatcherTests", dependencies: ["Dispatcher", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "SIPProxyTests",
            dependencies: [
                "SIPProxy", "SIPCore", "Dispatcher", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "BusTests", dependencies: ["Bus", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "WorkersTests", dependencies: ["Store", "Bus", "Workers", "ESL", "Dispatcher", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "APITests",
            dependencies: ["API", "Bus", "CallPlane", "Store", "TestSupport", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ESLTests",
            dependencies: [
                "ESL", "FSEmulator", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "SIPCore", "Store", "Bus",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)

// libFuzzer targets (`make fuzz`, scripts/fuzz): only with SWITCHYARD_FUZZ=1, built with
// `-Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld` (coverage in every module under test; gold
// fails on the link) into their own scratch path, so normal builds never see them. Each target
// defines `<Target>_main` (SwiftPM's entry point) and hands over to libFuzzer's driver.
if Context.environment["SWITCHYARD_FUZZ"] == "1" {
    let fuzzer: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]
    let fuzzerLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer"])]
    package.targets += [
        .target(name: "FuzzSupport", dependencies: [.product(name: "NIOCore", package: "swift-nio")], path: "Fuzz/Support"),
        .executableTarget(
            name: "FuzzSIPParser", dependencies: ["FuzzSupport", "SIPCore", .product(name: "NIOCore", package: "swift-nio")], path: "Fuzz/SIPParser",
            swiftSettings: fuzzer, linkerSettings: fuzzerLink),
        .executableTarget(
            name: "FuzzSIPStreamFramer", dependencies: ["FuzzSupport", "SIPCore", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/SIPStreamFramer",
            swiftSettings: fuzzer, linkerSettings: fuzzerLink),
        .executableTarget(
            name: "FuzzESLFrameDecoder", dependencies: ["FuzzSupport", "ESL", .product(name: "NIOCore", package: "swift-nio")], path: "Fuzz/ESLFrameDecoder",
            swiftSettings: fuzzer, linkerSettings: fuzzerLink),
        .executableTarget(
            name: "FuzzRegionsConfig", dependencies: ["FuzzSupport", "Dispatcher"], path: "Fuzz/RegionsConfig", swiftSettings: fuzzer,
            linkerSettings: fuzzerLink),
    ]
}

// A microbenchmark of the proxy core (`Bench/ProxyCoreBench`): only with SWITCHYARD_BENCH=1, so
// normal builds and tests never build it. `SWITCHYARD_BENCH=1 swift run -c release proxy-core-bench`.
if Context.environment["SWITCHYARD_BENCH"] == "1" {
    package.targets.append(
        .executableTarget(
            name: "proxy-core-bench",
            dependencies: ["SIPProxy", "Dispatcher", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Bench/ProxyCoreBench", swiftSettings: strict))
}
