import Foundation

/// Reads a stream of concatenated BSON documents (a `.bson` file from mongodump or
/// an oplog dump) in bounded memory.
///
/// Not thread-safe: one reader per stream.
public final class DocumentStream {
    private let handle: FileHandle
    private let name: String
    private var buffer: [UInt8] = []
    private var position = 0
    private var consumed = 0  // bytes before `buffer`, for error offsets
    private var atEnd = false
    private let chunkSize: Int

    /// Opens `path` for reading.
    /// - Throws: the file system's error when the file cannot be opened.
    public init(path: String, chunkSize: Int = 4 << 20) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
        self.name = path
        self.chunkSize = chunkSize
    }

    deinit { try? handle.close() }

    /// The next document, or nil at a clean end of the stream.
    /// - Throws: `BSONError` (with the offset in the stream) for a truncated or malformed document.
    public func next() throws -> Document? {
        guard try fill(4) else {
            if position < buffer.count {
                throw BSONError(.truncated, at: consumed + position,
                                "\(name) ends with \(buffer.count - position) stray bytes, not a whole document")
            }
            return nil
        }
        let length = buffer.withUnsafeBytes { Int(loadInt32($0, position)) }
        guard length >= 5, length <= 48 << 20 else {
            throw BSONError(.badLength, at: consumed + position, "\(name): document length \(length) is impossible")
        }
        guard try fill(length) else {
            throw BSONError(.truncated, at: consumed + position,
                            "\(name) ends in the middle of a \(length)-byte document")
        }
        let bytes = Array(buffer[position..<(position + length)])
        let start = consumed + position
        position += length
        do {
            return try Document(bytes: bytes)
        } catch {
            throw BSONError(error.code, at: start + error.offset, "\(name): \(error.message)")
        }
    }

    /// Makes sure `n` bytes are buffered from `position`; false if the stream ends first.
    private func fill(_ n: Int) throws -> Bool {
        while buffer.count - position < n {
            if atEnd { return false }
            if position > 0 {
                buffer.removeFirst(position)
                consumed += position
                position = 0
            }
            let data = try handle.read(upToCount: max(chunkSize, n)) ?? Data()
            if data.isEmpty { atEnd = true } else { buffer.append(contentsOf: data) }
        }
        return true
    }

    /// Every document of the file at `path`.
    public static func readAll(path: String) throws -> [Document] {
        let stream = try DocumentStream(path: path)
        var out: [Document] = []
        while let d = try stream.next() { out.append(d) }
        return out
    }
}
