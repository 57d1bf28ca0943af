import BSON
import Foundation
import Logging
import MongoDump
import Repository
import Synchronization

/// What an import stored.
public struct ImportResult: Sendable {
    public var snapshotID: String
    public var record: SnapshotRecord
    public var seconds: Double
}

/// Imports a mongodump output (directory or archive) into a repository as a snapshot.
///
/// Each collection is read twice: once to note every document's `_id` and location,
/// then, after sorting those, in `_id` order by random access. Memory stays bounded
/// by the keys (about 60 bytes a document), not the data.
public struct DumpImporter {
    let repository: Repository
    let logger: Logger

    public init(repository: Repository, logger: Logger) {
        self.repository = repository
        self.logger = logger
    }

    /// Imports every namespace of `source`, and its oplog when it has one.
    ///
    /// - Parameter label: how the snapshot records its source (a path).
    /// - Throws: `DumpError` for malformed input, `CaptureError` for documents without
    ///   `_id` or with duplicates, repository errors; nothing is recorded as a snapshot
    ///   unless everything was stored.
    public func importDump(_ source: any DumpSource, label: String, tags: [String] = []) throws -> ImportResult {
        try importDump(try DumpScan(source), label: label, tags: tags)
    }

    /// Imports a dump scanned beforehand (the scan needs no repository, so a caller can
    /// run it while the repository's key derivation runs).
    /// - Throws: as `importDump(_:label:tags:)`.
    public func importDump(_ scan: DumpScan, label: String, tags: [String] = []) throws -> ImportResult {
        let clock = ContinuousClock()
        let started = clock.now
        let source = scan.source
        let catalog = SnapshotCatalog(repository: repository)
        let previous = try catalog.latest(source: label).map { try catalog.manifest(of: $0.record) }
        let writer = SnapshotWriter(repository: repository, previous: previous, logger: logger)

        // Two collections at a time: one reading thread cannot keep the store workers busy
        // (it reads, cuts leaves and computes their keyed ids), two can. Largest first.
        try twoAtATime(scan.collections.sorted { $0.bytes > $1.bytes }) { collection in
            try Self.write(collection, from: source, into: writer)
        }
        if source.hasOplog {
            try writer.writeOplog { emit in
                try source.forEachOplogEntry { entry, _ in try emit(entry) }
            }
        }
        let (id, record) = try writer.finish(source: label, kind: "import", start: nil, end: nil, tags: tags)
        let seconds = Double((clock.now - started).components.attoseconds) / 1e18 + Double((clock.now - started).components.seconds)
        return ImportResult(snapshotID: id, record: record, seconds: seconds)
    }

    private static func write(_ collection: DumpScan.Collection, from source: any DumpSource, into writer: SnapshotWriter) throws {
        let ns = collection.info.namespace
        try writer.writeCollection(
            database: ns.database, collection: ns.collection, type: collection.info.kind.rawValue,
            metadata: collection.info.metadata?.document ?? Document(),
            averageDocumentBytes: collection.keys.isEmpty ? 1024 : collection.bytes / collection.keys.count
        ) { emit in
            var index = 0
            try source.forEachValidatedDocument(at: collection.keys.lazy.map(\.location)) { bytes in
                try emit(collection.keys[index].key, bytes)
                index += 1
            }
        }
    }
}

/// The first pass of an import: every collection's `_id`s and document locations,
/// sorted in MongoDB's `_id` order, with the documents validated on the way.
///
/// Collections are scanned in parallel (two at a time); memory is about 60 bytes a
/// document. The scan needs no repository key, so a caller runs it while the key is
/// derived.
public struct DumpScan: @unchecked Sendable {
    public struct Collection: Sendable {
        public var info: DumpNamespace
        public var keys: [(key: BSONKey, location: DocumentLocation)]
        public var bytes: Int
    }

    public let source: any DumpSource
    public let collections: [Collection]

    /// Scans every namespace of `source`.
    /// - Throws: `DumpError` for malformed input, `CaptureError` `.missingID` for a
    ///   document without `_id`.
    public init(_ source: any DumpSource) throws {
        self.source = source
        let namespaces = try source.namespaces()
        // Largest first, so the two scanning threads finish together.
        let order = namespaces.indices.sorted { (namespaces[$0].byteCount ?? 0) > (namespaces[$1].byteCount ?? 0) }
        let results = Mutex([Collection?](repeating: nil, count: namespaces.count))
        try twoAtATime(order) { index in
            let collection = try Self.scan(namespaces[index], in: source)
            results.withLock { $0[index] = collection }
        }
        collections = results.withLock { $0.map { $0! } }
    }

    private static func scan(_ info: DumpNamespace, in source: any DumpSource) throws -> Collection {
        let ns = info.namespace
        guard info.kind != .view else { return Collection(info: info, keys: [], bytes: 0) }
        var keys: [(key: BSONKey, location: DocumentLocation)] = []
        var total = 0
        // mongodump writes a collection in natural order, often `_id` order: then no sort.
        var sorted = true
        try source.forEachDocumentBytes(in: ns) { bytes, location in
            guard let key = Document.idKey(ofValidated: bytes) else {
                let file = (source as? DumpDirectory)?.dataPath(of: ns) ?? (source as? ArchiveReader)?.path
                throw CaptureError(.missingID, "\(file.map { "\($0): " } ?? "")a document of \(ns) at byte \(location.offset) has no _id")
            }
            if sorted, let last = keys.last, compareKeys(last.key, key) >= 0 { sorted = false }
            keys.append((key, location))
            total += Int(location.length)
        }
        if !sorted { keys.sort { compareKeys($0.key, $1.key) < 0 } }
        return Collection(info: info, keys: keys, bytes: total)
    }
}
