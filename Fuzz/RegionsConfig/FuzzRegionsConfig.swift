import FuzzSupport
import Dispatcher

/// libFuzzer target: one input is a `regions.yaml`. Loading either yields a valid config or a
/// `ConfigError` naming the bad keys; nothing else may happen.
@_cdecl("FuzzRegionsConfig_main")
public func fuzzRegionsConfigMain(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzRegionsConfig(data, size) }
}

func fuzzRegionsConfig(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let config = try RegionsConfigLoader.load(yaml: text, file: "/fuzz/regions.yaml")
        _ = NodeDispatcher(config: config, localRegion: config.regions.first?.name ?? "")
    } catch {
        _ = error.issues.count
    }
    return 0
}
