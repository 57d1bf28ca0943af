import BSON
import Synchronization

/// Reads a mongodump archive file (`mongodump --archive=<file>`, uncompressed).
///
/// Opening reads the header and the prelude (every namespace's metadata). Documents are
/// read in one sequential pass (`forEachDocument(_:)`) that checks framing, BSON and each
/// namespace's CRC-64; that pass, or `segments()`, also indexes where each namespace's
/// segments lie, so later per-namespace reads and `readDocument(at:)` go straight to them.
/// Thread-safe.
public final class ArchiveReader: DumpSource {
    public let path: String
    /// The archive header (format, server and tool versions).
    public let header: ArchiveHeader
    /// The prelude entries, in archive order, including the oplog's when present.
    public let prelude: [ArchivePreludeEntry]

    private let file: ReadOnlyFile
    private let metadata: [Namespace: CollectionMetadata]
    private let dataStart: Int64
    private let index = Mutex<ArchiveIndex?>(nil)

    /// Opens `path` and reads its header and prelude.
    /// - Throws: `DumpError`: `.notFound`/`.io` if the file cannot be read, `.badMagic` if it is
    ///   not an archive, `.badHeader`/`.badPrelude`/`.truncated`/`.malformedDocument` for a
    ///   damaged start, `.badMetadata` for a prelude whose metadata is not Extended JSON.
    public init(path: String) throws {
        self.path = path
        file = try ReadOnlyFile(path: path)
        var reader = ChunkedReader(file: file, chunkSize: 1 << 20)
        guard try reader.ensure(4) else {
            throw DumpError(.badMagic, "file is \(reader.available) bytes long, too short to be a mongodump archive", path: path)
        }
        let magic = UInt32(bitPattern: reader.peekInt32())
        guard magic == archiveMagic else {
            throw DumpError(.badMagic,
                            "not a mongodump archive: starts with 0x\(String(magic, radix: 16)), not the magic number 0x8199e26d",
                            path: path, offset: 0)
        }
        reader.skip(4)
        let headerOffset = reader.offset
        do {
            header = try ArchiveHeader(document: try Self.readDocument(&reader, what: "archive header", namespace: nil))
        } catch let error as DumpError {
            throw DumpError(error.code, error.message, path: path, offset: error.offset ?? headerOffset, underlying: error.underlying)
        }
        var prelude: [ArchivePreludeEntry] = []
        var metadata: [Namespace: CollectionMetadata] = [:]
        while true {
            guard try reader.ensure(4) else {
                throw DumpError(.truncated, "archive ends inside its prelude", path: path, offset: reader.offset)
            }
            if reader.peekInt32() == archiveTerminator {
                reader.skip(4)
                break
            }
            let offset = reader.offset
            do {
                let entry = try ArchivePreludeEntry(document: try Self.readDocument(&reader, what: "prelude entry", namespace: nil))
                guard !prelude.contains(where: { $0.namespace == entry.namespace }) else {
                    throw DumpError(.badPrelude, "prelude lists the namespace twice", namespace: entry.namespace)
                }
                do {
                    if let m = try entry.metadata() { metadata[entry.namespace] = m }
                } catch let error as DumpError {
                    throw error.adding(namespace: entry.namespace)
                }
                prelude.append(entry)
            } catch let error as DumpError {
                throw DumpError(error.code, "prelude entry: \(error.message)", path: path, namespace: error.namespace,
                                offset: error.offset ?? offset, underlying: error.underlying)
            }
        }
        self.prelude = prelude
        self.metadata = metadata
        self.dataStart = reader.offset
    }

    /// Reads one length-prefixed document (not a terminator) at the reader's position.
    private static func readDocument(_ reader: inout ChunkedReader, what: String, namespace: Namespace?) throws -> Document {
        let path = reader.file.path
        let offset = reader.offset
        guard try reader.ensure(4) else {
            throw DumpError(.truncated, "archive ends where its \(what) should be", path: path, namespace: namespace, offset: offset)
        }
        let length = reader.peekInt32()
        guard length != archiveTerminator else {
            throw DumpError(.badFraming, "terminator where the \(what) should be", path: path, namespace: namespace, offset: offset)
        }
        guard length >= 5, Int(length) <= maxDocumentLength else {
            throw DumpError(.badFraming, "\(length) is neither a valid BSON length nor the archive terminator (reading the \(what))",
                            path: path, namespace: namespace, offset: offset)
        }
        guard try reader.ensure(Int(length)) else {
            throw DumpError(.truncated, "archive ends inside the \(length)-byte \(what)", path: path, namespace: namespace, offset: offset)
        }
        return try makeDocument(reader.take(Int(length)), path: path, namespace: namespace, offset: offset)
    }

    // MARK: DumpSource

    public func namespaces() -> [DumpNamespace] {
        let index = self.index.withLock { $0 }
        return prelude.filter { !$0.namespace.isArchiveOplog }.map { entry in
            let ns = entry.namespace
            return DumpNamespace(namespace: ns, metadata: metadata[ns], documentCount: index?.counts[ns]?.documents,
                                 byteCount: index?.counts[ns]?.bytes)
        }.sorted { $0.namespace < $1.namespace }
    }

    public var hasOplog: Bool { prelude.contains { $0.namespace.isArchiveOplog } }

    public func forEachDocument(in namespace: Namespace, _ body: (Document, DocumentLocation) throws -> Void) throws {
        try forEachDocumentBytes(in: namespace) { bytes, location in try body(Document(trustedBytes: Array(bytes)), location) }
    }

    public func forEachDocumentBytes(in namespace: Namespace, _ body: (UnsafeRawBufferPointer, DocumentLocation) throws -> Void) throws {
        let index = try self.indexed()
        guard accepted.contains(namespace) else {
            throw DumpError(.unknownNamespace, "the archive's prelude does not list this namespace", path: path, namespace: namespace)
        }
        for i in index.byNamespace[namespace] ?? [] {
            let segment = index.segments[i]
            guard !segment.isEOF, segment.byteCount > 0 else { continue }
            var reader = ChunkedReader(file: file, from: segment.offset, to: segment.offset + segment.byteCount)
            try readDocumentStream(&reader, file: 0, namespace: namespace, body)
        }
    }

    public func forEachDocument(_ body: (Namespace, Document, DocumentLocation) throws -> Void) throws {
        let index = try walk(deliver: true, body)
        self.index.withLock { $0 = index }
    }

    public func readDocument(at location: DocumentLocation) throws -> Document {
        try read(at: location, validate: true)
    }

    public func readBytes(file index: Int32, offset: Int64, count: Int) throws -> [UInt8] {
        guard index == 0, offset >= dataStart else {
            throw DumpError(.badLocation, "location (file #\(index), byte \(offset)) is not in this archive's data", path: path)
        }
        return try file.read(count: count, at: offset)
    }

    public func readBytes(file index: Int32, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard index == 0, offset >= dataStart else {
            throw DumpError(.badLocation, "location (file #\(index), byte \(offset)) is not in this archive's data", path: path)
        }
        try file.read(exactly: buffer, at: offset)
    }

    private func read(at location: DocumentLocation, validate: Bool) throws -> Document {
        guard location.file == 0, location.offset >= dataStart else {
            throw DumpError(.badLocation, "location (file #\(location.file), byte \(location.offset)) is not in this archive's data",
                            path: path)
        }
        try checkDocumentLength(location.length, path: path, namespace: nil, offset: location.offset)
        let bytes = try file.read(count: Int(location.length), at: location.offset)
        return try makeDocument(bytes, path: path, namespace: nil, offset: location.offset)
    }

    // MARK: Index

    /// Every segment and EOF marker in file order, scanning the archive (framing and
    /// CRCs, not BSON) the first time it is needed.
    /// - Throws: `DumpError` for damaged framing, a CRC mismatch or an unfinished namespace.
    public func segments() throws -> [ArchiveSegment] {
        try indexed().segments
    }

    /// Scans the whole archive, checking its framing and every namespace's CRC-64.
    /// - Throws: `DumpError` as `segments()` does.
    public func verify() throws {
        _ = try indexed()
    }

    private func indexed() throws -> ArchiveIndex {
        if let index = index.withLock({ $0 }) { return index }
        let built = try walk(deliver: false) { _, _, _ in }
        index.withLock { $0 = built }
        return built
    }

    /// Namespaces whose segments may appear: the prelude's, and `system.buckets.X` for
    /// each time-series `X` (whose data mongodump stores under that name).
    private var accepted: Set<Namespace> {
        var out = Set(prelude.map(\.namespace))
        for entry in prelude where isTimeseries(entry) {
            out.insert(Namespace(database: entry.namespace.database, collection: "system.buckets." + entry.namespace.collection))
        }
        return out
    }

    private func isTimeseries(_ entry: ArchivePreludeEntry) -> Bool {
        entry.type == "timeseries" || metadata[entry.namespace]?.kind == .timeseries
    }

    private struct NamespaceState {
        var crc = CRC64()
        var documents = 0
        var bytes: Int64 = 0
        var closed = false
    }

    /// One pass over the data: framing, CRCs, and (when `deliver` is true) validated documents passed to `body`.
    private func walk(deliver: Bool, _ body: (Namespace, Document, DocumentLocation) throws -> Void) throws -> ArchiveIndex {
        let accepted = self.accepted
        var states: [Namespace: NamespaceState] = [:]
        var segments: [ArchiveSegment] = []
        var reader = ChunkedReader(file: file, from: dataStart)
        while true {
            guard try reader.ensure(4) else {
                if reader.available > 0 {
                    throw DumpError(.truncated, "archive ends with \(reader.available) stray bytes", path: path, offset: reader.offset)
                }
                break
            }
            let headerOffset = reader.offset
            if reader.peekInt32() == archiveTerminator {
                throw DumpError(.badFraming, "terminator where a namespace header should be (consecutive terminators)",
                                path: path, offset: headerOffset)
            }
            let header: SegmentHeader
            do {
                header = try SegmentHeader(document: try Self.readDocument(&reader, what: "namespace header", namespace: nil))
            } catch let error as DumpError {
                throw error.adding(path: path)
            }
            let ns = header.namespace
            guard accepted.contains(ns) else {
                throw DumpError(.unknownNamespace, "archive has data for a namespace its prelude does not list",
                                path: path, namespace: ns, offset: headerOffset)
            }
            var state = states[ns] ?? NamespaceState()
            guard !state.closed else {
                throw DumpError(.unknownNamespace, "namespace header after the namespace's EOF", path: path, namespace: ns,
                                offset: headerOffset)
            }
            if header.isEOF {
                let computed = Int64(bitPattern: state.crc.value)
                guard computed == header.crc else {
                    throw DumpError(.crcMismatch,
                                    "CRC-64 of the namespace's \(state.documents) documents is \(computed), its EOF header says \(header.crc)",
                                    path: path, namespace: ns, offset: headerOffset)
                }
                state.closed = true
                segments.append(ArchiveSegment(namespace: ns, offset: headerOffset, byteCount: 0, documentCount: 0, isEOF: true))
                guard try reader.ensure(4), reader.peekInt32() == archiveTerminator else {
                    throw DumpError(.badFraming, "EOF header is not followed by the terminator", path: path, namespace: ns,
                                    offset: reader.offset)
                }
                reader.skip(4)
            } else {
                let start = reader.offset
                var count = 0
                while true {
                    guard try reader.ensure(4) else {
                        throw DumpError(.truncated, "archive ends inside a segment of the namespace (no terminator)",
                                        path: path, namespace: ns, offset: reader.offset)
                    }
                    let offset = reader.offset
                    let length = reader.peekInt32()
                    if length == archiveTerminator {
                        reader.skip(4)
                        break
                    }
                    guard length >= 5, Int(length) <= maxDocumentLength else {
                        throw DumpError(.badFraming, "\(length) is neither a valid BSON length nor the archive terminator",
                                        path: path, namespace: ns, offset: offset)
                    }
                    guard try reader.ensure(Int(length)) else {
                        throw DumpError(.truncated, "archive ends inside a \(length)-byte document", path: path, namespace: ns,
                                        offset: offset)
                    }
                    if deliver {
                        let bytes = reader.take(Int(length))
                        bytes.withUnsafeBytes { state.crc.update($0) }
                        let document = try makeDocument(bytes, path: path, namespace: ns, offset: offset)
                        try body(ns, document, DocumentLocation(file: 0, offset: offset, length: length))
                    } else {
                        reader.consume(Int(length)) { state.crc.update($0) }
                    }
                    count += 1
                }
                let byteCount = reader.offset - 4 - start
                state.documents += count
                state.bytes += byteCount
                segments.append(ArchiveSegment(namespace: ns, offset: start, byteCount: byteCount, documentCount: count, isEOF: false))
            }
            states[ns] = state
        }
        for entry in prelude where !isTimeseries(entry) && states[entry.namespace]?.closed != true {
            throw DumpError(.unfinishedNamespace,
                            states[entry.namespace] == nil
                                ? "archive ends without any segment for the namespace (mongorestore requires one, even empty)"
                                : "archive ends before the namespace's EOF header",
                            path: path, namespace: entry.namespace)
        }
        for (ns, state) in states where !state.closed {
            throw DumpError(.unfinishedNamespace, "archive ends before the namespace's EOF header", path: path, namespace: ns)
        }
        return ArchiveIndex(segments: segments)
    }
}

/// Where each namespace's segments are, from one scan.
private struct ArchiveIndex: Sendable {
    var segments: [ArchiveSegment]
    var byNamespace: [Namespace: [Int]] = [:]
    var counts: [Namespace: (documents: Int, bytes: Int64)] = [:]

    init(segments: [ArchiveSegment]) {
        self.segments = segments
        for (i, s) in segments.enumerated() {
            byNamespace[s.namespace, default: []].append(i)
            var c = counts[s.namespace] ?? (0, 0)
            c.documents += s.documentCount
            c.bytes += s.byteCount
            counts[s.namespace] = c
        }
    }
}
