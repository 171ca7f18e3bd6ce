import FuzzSupport
import NIOCore
import SIPCore

/// libFuzzer target: one input is a TCP byte stream, fed to the framer in chunks whose sizes
/// come from the first byte, then closed (`decodeLast`). Every framed message is parsed.
@_cdecl("FuzzSIPStreamFramer_main")
public func fuzzSIPStreamFramerMain(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzSIPStreamFramer(data, size) }
}

func fuzzSIPStreamFramer(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let processor = NIOSingleStepByteToMessageProcessor(SIPStreamDecoder(limits: .default))
    do {
        for buffer in streamChunks(data, size) {
            try processor.process(buffer: buffer) { message in
                _ = SIPMessageParser.parse(message, datagram: false)
            }
        }
        try processor.finishProcessing(seenEOF: true) { message in
            _ = SIPMessageParser.parse(message, datagram: false)
        }
    } catch let error as SIPStreamError {
        _ = error.rejection()?.readableBytes
    } catch {
        // Any other error is a framing error of NIO's own: the connection would be closed.
    }
    return 0
}
