import BSON

/// A mongodump output, in either of its forms: a dump directory (`DumpDirectory`) or
/// an archive file (`ArchiveReader`).
///
/// Documents come with their `DocumentLocation` so a caller can note where each one
/// is (with its `_id` key), sort, and read them again in another order with
/// `readDocument(at:)`. Implementations are thread-safe: iterations and random reads
/// may run concurrently.
public protocol DumpSource: AnyObject, Sendable {
    /// Every namespace (collections, views, time-series), sorted, excluding the oplog.
    /// - Throws: `DumpError` if the listing cannot be read.
    func namespaces() throws -> [DumpNamespace]

    /// True when the dump holds an oplog (`mongodump --oplog`).
    var hasOplog: Bool { get }

    /// Calls `body` with each document of `namespace`, in dump order.
    /// - Throws: `DumpError` for a malformed or truncated document (naming file and
    ///   offset), or whatever `body` throws.
    func forEachDocument(in namespace: Namespace, _ body: (Document, DocumentLocation) throws -> Void) throws

    /// Calls `body` with the bytes of each document of `namespace`, in dump order, validated
    /// as `forEachDocument(in:_:)` validates them but not copied: the buffer is only valid
    /// during the call (a first pass that keeps only keys and locations needs no copy).
    /// - Throws: as `forEachDocument(in:_:)`.
    func forEachDocumentBytes(in namespace: Namespace, _ body: (UnsafeRawBufferPointer, DocumentLocation) throws -> Void) throws

    /// Calls `body` with every document of the dump in one pass, oplog entries
    /// included under `Namespace.archiveOplog`. Archives are read once, in file order.
    /// - Throws: `DumpError`, or whatever `body` throws.
    func forEachDocument(_ body: (Namespace, Document, DocumentLocation) throws -> Void) throws

    /// Calls `body` with each oplog entry, in order; does nothing without an oplog.
    /// - Throws: `DumpError`, or whatever `body` throws.
    func forEachOplogEntry(_ body: (Document, DocumentLocation) throws -> Void) throws

    /// The document at `location`, as reported by an iteration of this source.
    /// - Throws: `DumpError` `.badLocation` for a location from elsewhere,
    ///   `.malformedDocument` if the bytes there are not a document.
    func readDocument(at location: DocumentLocation) throws -> Document

    /// Raw bytes of one of the source's files (file 0 for an archive).
    /// - Throws: `DumpError` `.badLocation` for a file or offset outside the source, `.io`.
    func readBytes(file: Int32, offset: Int64, count: Int) throws -> [UInt8]

    /// Fills `buffer` with the bytes of one of the source's files from `offset`, as
    /// `readBytes(file:offset:count:)` reads them, into memory the caller reuses.
    /// - Throws: as `readBytes(file:offset:count:)`, `.truncated` if the file ends first.
    func readBytes(file: Int32, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws
}

extension DumpSource {
    /// Calls `body` with the bytes of the documents at `locations`, in that order, without
    /// validating them again: for a second pass over documents an iteration of this source
    /// already validated. Documents lying back to back are read together, in runs of up
    /// to 4 MiB, so a collection dumped in `_id` order is read sequentially.
    /// - Throws: `DumpError` `.badLocation`/`.io`/`.truncated`, `.malformedDocument` when the bytes
    ///   found no longer carry the expected length (the file changed), or what `body` throws.
    public func forEachValidatedDocument(
        at locations: [DocumentLocation], _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var run: [DocumentLocation] = []
        var runBytes = 0
        // One buffer for every run: a fresh one per run costs a zero fill and page faults.
        var buffer: [UInt8] = []
        func flush() throws {
            guard let first = run.first else { return }
            if buffer.count < runBytes { buffer = [UInt8](repeating: 0, count: max(runBytes, 512 << 10 + (64 << 10))) }
            try buffer.withUnsafeMutableBytes { (p) throws in
                try readBytes(file: first.file, offset: first.offset, into: UnsafeMutableRawBufferPointer(rebasing: p[..<runBytes]))
            }
            try buffer.withUnsafeBytes { raw in
                var at = 0
                for location in run {
                    let length = Int(location.length)
                    let prefix = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                    guard prefix == length else {
                        throw DumpError(.malformedDocument, "the document at byte \(location.offset) changed since it was read",
                                        offset: location.offset)
                    }
                    try body(UnsafeRawBufferPointer(rebasing: raw[at..<(at + length)]))
                    at += length
                }
            }
            run.removeAll(keepingCapacity: true)
            runBytes = 0
        }
        for location in locations {
            if let last = run.last,
               last.file != location.file || last.offset + Int64(last.length) != location.offset || runBytes >= 512 << 10 {
                try flush()
            }
            run.append(location)
            runBytes += Int(location.length)
        }
        try flush()
    }

    public func forEachOplogEntry(_ body: (Document, DocumentLocation) throws -> Void) throws {
        guard hasOplog else { return }
        try forEachDocument(in: .archiveOplog, body)
    }
}

/// Validates `bytes` as one document found at `offset` of `path`.
func makeDocument(_ bytes: [UInt8], path: String, namespace: Namespace?, offset: Int64) throws -> Document {
    do {
        return try Document(bytes: bytes)
    } catch {
        throw DumpError(.malformedDocument, "invalid BSON in the \(bytes.count)-byte document starting at byte \(offset): \(error.message)",
                        path: path, namespace: namespace, offset: offset + Int64(error.offset), underlying: error)
    }
}

/// Checks a length prefix read at `offset`.
func checkDocumentLength(_ length: Int32, path: String, namespace: Namespace?, offset: Int64) throws {
    guard length >= 5, Int(length) <= maxDocumentLength else {
        throw DumpError(.malformedDocument,
                        "\(length) is not a possible BSON document length (5 to \(maxDocumentLength) bytes)",
                        path: path, namespace: namespace, offset: offset)
    }
}

/// Validates `bytes` as one document found at `offset` of `path`, without copying them.
func validateDocument(_ bytes: UnsafeRawBufferPointer, path: String, namespace: Namespace?, offset: Int64) throws {
    do {
        try Document.validate(bytes)
    } catch {
        throw DumpError(.malformedDocument, "invalid BSON in the \(bytes.count)-byte document starting at byte \(offset): \(error.message)",
                        path: path, namespace: namespace, offset: offset + Int64(error.offset), underlying: error)
    }
}

/// Reads the concatenated documents of a `.bson` file (or part of one) to its end.
func readDocumentStream(
    _ reader: inout ChunkedReader, file: Int32, namespace: Namespace?,
    _ body: (Document, DocumentLocation) throws -> Void
) throws {
    try readDocumentStream(&reader, file: file, namespace: namespace) { bytes, location in
        try body(Document(trustedBytes: Array(bytes)), location)
    }
}

/// Reads the concatenated documents of a `.bson` file (or part of one) to its end,
/// validating each in the read buffer and lending its bytes to `body`.
func readDocumentStream(
    _ reader: inout ChunkedReader, file: Int32, namespace: Namespace?,
    _ body: (UnsafeRawBufferPointer, DocumentLocation) throws -> Void
) throws {
    let path = reader.file.path
    while true {
        guard try reader.ensure(4) else {
            if reader.available > 0 {
                throw DumpError(.truncated, "file ends with \(reader.available) stray byte\(reader.available == 1 ? "" : "s") after the last whole document",
                                path: path, namespace: namespace, offset: reader.offset)
            }
            return
        }
        let start = reader.offset
        let length = reader.peekInt32()
        try checkDocumentLength(length, path: path, namespace: namespace, offset: start)
        guard try reader.ensure(Int(length)) else {
            throw DumpError(.truncated, "file ends \(Int(length) - reader.available) bytes into a \(length)-byte document",
                            path: path, namespace: namespace, offset: start)
        }
        try reader.consume(Int(length)) { bytes in
            try validateDocument(bytes, path: path, namespace: namespace, offset: start)
            try body(bytes, DocumentLocation(file: file, offset: start, length: length))
        }
    }
}

/// The little-endian length prefix of a document's bytes (0 when shorter than 4 bytes).
func readLengthPrefix(_ bytes: [UInt8]) -> Int32 {
    guard bytes.count >= 4 else { return 0 }
    return bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
}
