public import NIOCore

/// libFuzzer's driver (compiler-rt, linked by `-sanitize=fuzzer`). SwiftPM links an executable
/// with `main` aliased to `<Target>_main`, so each target defines that and hands over here
/// instead of relying on libFuzzer's own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer over `callback` with the process's arguments (`-max_total_time=…`, corpus dirs).
public func runFuzzer(
    argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, callback)
}

/// A stream input of the framer targets: the first byte sets the chunk size (1–64), the rest is
/// the stream, cut into buffers of that size as reads from a socket would be.
public func streamChunks(_ data: UnsafePointer<UInt8>, _ size: Int) -> [ByteBuffer] {
    guard size > 1 else { return [] }
    let chunk = Int(data[0]) % 64 + 1
    let bytes = UnsafeBufferPointer(start: data + 1, count: size - 1)
    return stride(from: 0, to: bytes.count, by: chunk).map { offset in
        let end = min(offset + chunk, bytes.count)
        var buffer = ByteBufferAllocator().buffer(capacity: end - offset)
        buffer.writeBytes(UnsafeBufferPointer(rebasing: bytes[offset..<end]))
        return buffer
    }
}
