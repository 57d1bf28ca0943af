import CZstd
import Synchronization

// Every call into libzstd goes through this file (STYLE.md "C interop").

/// A zstd failure (corrupt frame, wrong prefix, wrong length); callers map it to a `RepositoryError`.
struct CompressionFailure: Error, CustomStringConvertible {
    var description: String
}

private func check(_ code: Int, _ what: String) throws(CompressionFailure) -> Int {
    if ZSTD_isError(code) != 0 {
        throw CompressionFailure(description: "\(what): \(String(cString: ZSTD_getErrorName(code)))")
    }
    return code
}

/// The smallest window log that covers `size` bytes (zstd accepts 10...31 on 64-bit).
private func windowLog(covering size: Int) -> Int32 {
    var log: Int32 = 10
    while log < 31 && (1 << log) < size { log += 1 }
    return log
}

/// One zstd compression context; reused across blobs because creating one costs more than compressing a leaf.
///
/// Not thread-safe: take one from a `ZstdPool` for the duration of a call.
final class ZstdCompressor: @unchecked Sendable {
    private let context: OpaquePointer
    let level: Int32

    init(level: Int32 = 3) {
        guard let context = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed") }
        self.context = context
        self.level = level
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `input` into one zstd frame that records its content size.
    func compress(_ input: UnsafeRawBufferPointer) throws(CompressionFailure) -> [UInt8] {
        try compress(input, prefix: nil)
    }

    /// Compresses `input` with `prefix` as a raw-content dictionary (zstd "patch-from").
    ///
    /// The window covers prefix and input so matches may reach anywhere in the prefix;
    /// decompression needs the same prefix.
    func compress(_ input: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer?) throws(CompressionFailure) -> [UInt8] {
        _ = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        let bound = ZSTD_compressBound(input.count)
        if let prefix, prefix.count > 0 {
            _ = try check(ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, windowLog(covering: prefix.count + input.count)), "set windowLog")
            _ = try check(ZSTD_CCtx_refPrefix(context, prefix.baseAddress, prefix.count), "refPrefix")
        }
        defer {
            if prefix != nil { _ = ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, 0) }
        }
        let context = self.context
        // Not zero-filled first: zstd writes every byte it reports.
        var written = 0
        let output = [UInt8](unsafeUninitializedCapacity: bound) { out, count in
            written = ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count)
            count = ZSTD_isError(written) != 0 ? 0 : written
        }
        _ = try check(written, "compress")
        return output
    }
}

/// One zstd decompression context; reused across blobs.
///
/// Not thread-safe: take one from a `ZstdPool` for the duration of a call.
final class ZstdDecompressor: @unchecked Sendable {
    private let context: OpaquePointer

    init() {
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx failed") }
        self.context = context
        // Patch-from frames may declare windows up to 2 GiB; our own frames are trusted after authentication.
        _ = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, 31)
    }

    deinit { ZSTD_freeDCtx(context) }

    /// The content size a frame records (zstd writes it for every one-shot compression).
    /// - Throws: `CompressionFailure` when the frame does not say, or claims over 1 GiB.
    static func contentSize(_ frame: [UInt8]) throws(CompressionFailure) -> Int {
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard size <= 1 << 30 else { throw CompressionFailure(description: "frame has no usable content size") }
        return Int(size)
    }

    /// Decompresses one frame whose content is exactly `rawLength` bytes.
    /// - Throws: `CompressionFailure` when the frame is corrupt or its content length differs.
    func decompress(_ input: UnsafeRawBufferPointer, rawLength: Int, prefix: UnsafeRawBufferPointer? = nil) throws(CompressionFailure) -> [UInt8] {
        _ = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        if let prefix, prefix.count > 0 {
            _ = try check(ZSTD_DCtx_refPrefix(context, prefix.baseAddress, prefix.count), "refPrefix")
        }
        var output = [UInt8](repeating: 0, count: rawLength)
        let context = self.context
        let written = output.withUnsafeMutableBytes { out in
            // ZSTD wants a non-null destination even for empty content.
            var scratch: UInt8 = 0
            return withUnsafeMutableBytes(of: &scratch) { scratchPtr in
                ZSTD_decompressDCtx(context, out.baseAddress ?? scratchPtr.baseAddress, out.count, input.baseAddress, input.count)
            }
        }
        guard try check(written, "decompress") == rawLength else {
            throw CompressionFailure(description: "decompressed \(written) bytes, expected \(rawLength)")
        }
        return output
    }
}

/// A small pool of reusable contexts, so parallel workers neither share nor recreate them.
final class ContextPool<Context: AnyObject & Sendable>: Sendable {
    private let idle = Mutex<[Context]>([])
    private let make: @Sendable () -> Context
    private let limit: Int

    init(limit: Int = 8, make: @escaping @Sendable () -> Context) {
        self.make = make
        self.limit = limit
    }

    /// Runs `body` with a context held exclusively, then returns it to the pool.
    func with<R>(_ body: (Context) throws -> R) rethrows -> R {
        let context = idle.withLock { $0.popLast() } ?? make()
        defer { idle.withLock { if $0.count < limit { $0.append(context) } } }
        return try body(context)
    }
}
