import BSON

/// Writes a mongodump archive that mongorestore reads (`mongorestore --archive=<file>`).
///
/// The prelude must name every namespace up front, so it is given to the initializer,
/// which writes the magic number, header and prelude. Then append each namespace's
/// documents (namespaces may be interleaved; a new segment starts whenever the namespace
/// changes) and `end` each namespace, which writes its EOF header with the CRC-64 of its
/// documents. Output matches mongodump's byte for byte for the same content and order:
/// every namespace gets a segment, even an empty one or a view, as mongorestore expects.
///
/// Not thread-safe: one writer per output. Call `finish()` to flush; a writer dropped
/// without it leaves an incomplete archive.
public final class ArchiveWriter {
    private let output: BufferedOutput
    private let prelude: [ArchivePreludeEntry]
    private var states: [Namespace: (crc: CRC64, ended: Bool)] = [:]
    private var current: Namespace?  // namespace of the open segment
    private var finished = false

    /// Creates (or truncates) the archive file at `path` and writes its header and prelude.
    /// - Throws: `DumpError` `.io` if the file cannot be written, `.misuse` if the prelude lists a namespace twice.
    public convenience init(path: String, header: ArchiveHeader, prelude: [ArchivePreludeEntry]) throws {
        try self.init(output: try BufferedOutput(path: path), header: header, prelude: prelude)
    }

    /// Writes the archive to an open file descriptor (stdout, a pipe), which stays open.
    /// - Throws: `DumpError` as `init(path:header:prelude:)`.
    public convenience init(fileDescriptor: Int32, header: ArchiveHeader, prelude: [ArchivePreludeEntry]) throws {
        try self.init(output: BufferedOutput(fileDescriptor: fileDescriptor, name: "fd \(fileDescriptor)"), header: header,
                      prelude: prelude)
    }

    private init(output: BufferedOutput, header: ArchiveHeader, prelude: [ArchivePreludeEntry]) throws {
        self.output = output
        self.prelude = prelude
        for entry in prelude {
            guard states[entry.namespace] == nil else {
                throw DumpError(.misuse, "prelude lists the namespace twice", path: output.path, namespace: entry.namespace)
            }
            states[entry.namespace] = (CRC64(), false)
        }
        try output.writeInt32(Int32(bitPattern: archiveMagic))
        try output.write(header.document.bytes)
        for entry in prelude { try output.write(entry.document.bytes) }
        try output.writeInt32(archiveTerminator)
    }

    /// Appends one document to `namespace`'s data.
    /// - Throws: `DumpError` `.misuse` for a namespace not in the prelude or already ended, `.io` on write failure.
    public func append(_ document: Document, to namespace: Namespace) throws {
        try document.bytes.withUnsafeBytes { try append(documentBytes: $0, to: namespace) }
    }

    /// Appends one document given as trusted BSON bytes (e.g. read from a repository leaf).
    /// - Throws: as `append(_:to:)`.
    public func append(documentBytes bytes: UnsafeRawBufferPointer, to namespace: Namespace) throws {
        guard var state = states[namespace], !state.ended else {
            throw DumpError(.misuse, states[namespace] == nil ? "namespace is not in the archive's prelude" : "namespace already ended",
                            path: output.path, namespace: namespace)
        }
        try openSegment(namespace)
        state.crc.update(bytes)
        states[namespace] = state
        try output.write(bytes)
    }

    /// Ends `namespace`: closes its segment and writes its EOF header with the CRC-64 of its documents.
    /// - Throws: `DumpError` `.misuse` for a namespace not in the prelude or already ended, `.io` on write failure.
    public func end(_ namespace: Namespace) throws {
        guard var state = states[namespace], !state.ended else {
            throw DumpError(.misuse, states[namespace] == nil ? "namespace is not in the archive's prelude" : "namespace already ended",
                            path: output.path, namespace: namespace)
        }
        // Like mongodump, give a namespace that has no open segment an empty one first.
        try openSegment(namespace)
        try output.writeInt32(archiveTerminator)
        current = nil
        let eof = SegmentHeader(namespace: namespace, isEOF: true, crc: Int64(bitPattern: state.crc.value))
        try output.write(eof.document.bytes)
        try output.writeInt32(archiveTerminator)
        state.ended = true
        states[namespace] = state
    }

    /// Checks that every namespace was ended, flushes, and syncs a file this writer created.
    /// - Throws: `DumpError` `.misuse` naming a namespace never ended, `.io` on write failure.
    public func finish() throws {
        guard !finished else { return }
        if let open = prelude.first(where: { states[$0.namespace]?.ended != true }) {
            throw DumpError(.misuse, "namespace was never ended; mongorestore would reject the archive",
                            path: output.path, namespace: open.namespace)
        }
        try output.finish()
        finished = true
    }

    /// Bytes written so far (buffered or not).
    public var bytesWritten: Int64 { output.bytesWritten }

    private func openSegment(_ namespace: Namespace) throws {
        guard current != namespace else { return }
        if current != nil { try output.writeInt32(archiveTerminator) }
        try output.write(SegmentHeader(namespace: namespace, isEOF: false, crc: 0).document.bytes)
        current = namespace
    }
}

extension ArchiveWriter {
    /// Writes everything `source` holds to a new archive at `path`: every namespace with its
    /// metadata, then its documents, one namespace after another, and the oplog last.
    /// - Throws: `DumpError` from reading `source` or writing `path`.
    public static func write(_ source: some DumpSource, to path: String, header: ArchiveHeader) throws {
        let namespaces = try source.namespaces()
        var prelude = try namespaces.map { try ArchivePreludeEntry(namespace: $0.namespace, metadata: $0.metadata) }
        if source.hasOplog { prelude.append(.oplog) }
        let writer = try ArchiveWriter(path: path, header: header, prelude: prelude)
        for ns in namespaces {
            if ns.kind != .view && ns.kind != .timeseries {
                try source.forEachDocument(in: ns.namespace) { document, _ in try writer.append(document, to: ns.namespace) }
            }
            try writer.end(ns.namespace)
        }
        if source.hasOplog {
            try source.forEachOplogEntry { entry, _ in try writer.append(entry, to: .archiveOplog) }
            try writer.end(.archiveOplog)
        }
        try writer.finish()
    }
}
