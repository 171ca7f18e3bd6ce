import FuzzSupport
import ESL
import NIOCore

/// libFuzzer target: one input is an Event Socket byte stream (both directions), fed in
/// chunks whose sizes come from the first byte; every decoded frame's headers and event body
/// are read as the client does.
@_cdecl("FuzzESLFrameDecoder_main")
public func fuzzESLFrameDecoderMain(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv) { data, size in fuzzESLFrameDecoder(data, size) }
}

func fuzzESLFrameDecoder(_ input: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data = input else { return 0 }
    let chunks = streamChunks(data, size)
    for direction in [ESLFrameDecoder.Direction.fromServer, .fromClient] {
        let processor = NIOSingleStepByteToMessageProcessor(ESLFrameDecoder(direction: direction, maxHeaderBytes: 8192, maxBodyBytes: 65536))
        do {
            for buffer in chunks {
                try processor.process(buffer: buffer) { frame in read(frame) }
            }
            try processor.finishProcessing(seenEOF: true) { frame in read(frame) }
        } catch {
            // A framing error closes the connection; nothing more to read.
        }
    }
    return 0
}

private func read(_ frame: ESLFrame) {
    _ = (frame.contentType, frame.replyText, frame.command)
    // An event frame's body is itself a header block (text/event-plain), parsed as the client does.
    if let body = frame.body, let event = try? ESLEvent.parsePlain(body) {
        _ = event.name
    }
}
