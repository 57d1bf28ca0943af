import Foundation

// Positioned POSIX reads and buffered writes. Foundation's FileHandle returns `Data`
// per read, one more copy than needed at hundreds of MB/s; pread also lets several
// readers share one descriptor without a shared file position.

/// Bytes at most one document may take: BSON's 16 MiB plus headroom for oplog
/// entries and internal documents, as `DocumentStream` allows.
let maxDocumentLength = 48 << 20

/// Default size of one read from disk.
let readChunkSize = 512 << 10

private func errnoError() -> SystemError {
    let e = errno
    return SystemError(errno: e, description: String(cString: strerror(e)))
}

/// A file open for reading, closed when the last reference goes.
///
/// Thread-safe: reads are positioned (`pread`), so concurrent readers do not interfere.
final class ReadOnlyFile: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let error = errnoError()
            throw DumpError(error.errno == ENOENT ? .notFound : .io, "cannot open file", path: path, underlying: error)
        }
        self.path = path
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    /// The file's current size in bytes.
    func size() throws -> Int64 {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else {
            throw DumpError(.io, "cannot stat file", path: path, underlying: errnoError())
        }
        return Int64(st.st_size)
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw DumpError(.io, "read failed", path: path, offset: offset + Int64(done), underlying: errnoError())
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Exactly `count` bytes at `offset`.
    /// - Throws: `DumpError` `.truncated` if the file ends first.
    func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { (p) throws in try read(exactly: p, at: offset) }
        return bytes
    }

    /// Fills `buffer` with the bytes at `offset`.
    /// - Throws: `DumpError` `.truncated` if the file ends first.
    func read(exactly buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws {
        let n = try read(into: buffer, at: offset)
        guard n == buffer.count else {
            throw DumpError(.truncated, "file ends \(buffer.count - n) bytes short of a \(buffer.count)-byte read", path: path, offset: offset)
        }
    }
}

/// Sequential reading of a byte range of a file in large chunks, with the file offset
/// of every byte known (for error messages and document locations).
struct ChunkedReader {
    let file: ReadOnlyFile
    private var buffer: [UInt8]
    private var start = 0  // first unconsumed byte in buffer
    private var end = 0  // one past the last valid byte in buffer
    private var bufferOffset: Int64  // file offset of buffer[0]
    private var nextRead: Int64  // file offset of the next pread
    private let limit: Int64  // stop reading here
    private var exhausted = false

    init(file: ReadOnlyFile, from offset: Int64 = 0, to limit: Int64 = .max, chunkSize: Int = readChunkSize) {
        self.file = file
        self.bufferOffset = offset
        self.nextRead = offset
        self.limit = limit
        let span = limit == .max ? chunkSize : Int(min(Int64(chunkSize), max(0, limit - offset)))
        self.buffer = [UInt8](repeating: 0, count: max(span, 16))
    }

    /// File offset of the next unconsumed byte.
    var offset: Int64 { bufferOffset + Int64(start) }

    /// Unconsumed bytes in the buffer.
    var available: Int { end - start }

    /// Makes `n` bytes available; false if the range ends first (then `available` < n).
    mutating func ensure(_ n: Int) throws -> Bool {
        while end - start < n {
            if exhausted { return false }
            if start > 0 {
                let count = end - start
                buffer.withUnsafeMutableBytes { p in
                    if count > 0 { p.baseAddress!.copyMemory(from: p.baseAddress! + start, byteCount: count) }
                }
                bufferOffset += Int64(start)
                end = count
                start = 0
            }
            if buffer.count < n {
                buffer.append(contentsOf: repeatElement(0, count: n - buffer.count))
            }
            let want = Int(min(Int64(buffer.count - end), limit - nextRead))
            if want <= 0 {
                exhausted = true
                continue
            }
            let got = try buffer.withUnsafeMutableBytes { (p) throws -> Int in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: p[end..<(end + want)]), at: nextRead)
            }
            if got == 0 { exhausted = true }
            end += got
            nextRead += Int64(got)
        }
        return true
    }

    /// The little-endian int32 at the current position (call `ensure(4)` first).
    func peekInt32() -> Int32 {
        buffer.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: start, as: Int32.self)) }
    }

    /// Calls `body` with the next `n` bytes (call `ensure(n)` first), then consumes them.
    mutating func consume<T>(_ n: Int, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let s = start
        start += n
        return try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[s..<(s + n)])) }
    }

    /// Consumes and copies the next `n` bytes (call `ensure(n)` first).
    mutating func take(_ n: Int) -> [UInt8] {
        let bytes = Array(buffer[start..<(start + n)])
        start += n
        return bytes
    }

    mutating func skip(_ n: Int) { start += n }
}

/// A file or descriptor written through a large buffer.
final class BufferedOutput {
    let path: String
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    private let capacity: Int
    private(set) var bytesWritten: Int64 = 0

    /// Creates (or truncates) `path`.
    init(path: String, capacity: Int = readChunkSize) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DumpError(.io, "cannot create file", path: path, underlying: errnoError()) }
        self.path = path
        self.descriptor = fd
        self.ownsDescriptor = true
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    /// Writes to an open descriptor (stdout, a pipe), which stays open.
    init(fileDescriptor: Int32, name: String, capacity: Int = readChunkSize) {
        self.path = name
        self.descriptor = fileDescriptor
        self.ownsDescriptor = false
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > capacity { try flush() }
        buffer.append(contentsOf: bytes)
        bytesWritten += Int64(bytes.count)
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (p) throws in try write(p) }
    }

    func writeInt32(_ value: Int32) throws {
        try withUnsafeBytes(of: value.littleEndian) { (p) throws in try write(p) }
    }

    func flush() throws {
        var done = 0
        let count = buffer.count
        let failure: SystemError? = buffer.withUnsafeBytes { p in
            while done < count {
                let n = Foundation.write(descriptor, p.baseAddress! + done, count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoError()
                }
                done += n
            }
            return nil
        }
        if let failure { throw DumpError(.io, "write failed", path: path, underlying: failure) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes and, for files this object created, syncs them to disk.
    func finish() throws {
        try flush()
        if ownsDescriptor, fsync(descriptor) != 0 {
            throw DumpError(.io, "fsync failed", path: path, underlying: errnoError())
        }
    }
}
