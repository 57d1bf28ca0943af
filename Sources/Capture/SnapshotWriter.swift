import BSON
import Foundation
import Logging
import Repository
import Synchronization

/// Writes one snapshot into a repository: each collection's tree (from documents in
/// `_id` order), its metadata, the oplog captured with it, then the manifest and the
/// snapshot record, in the write order of ARCHITECTURE.md §2 (packs, index, snapshot).
///
/// Thread-safe for `writeCollection`: several collections may be written at once from
/// different threads (each call builds its own tree). `writeOplog` and `finish` are
/// called once, after the collections. Leaves are compressed and encrypted by a pool
/// of worker threads meanwhile.
public final class SnapshotWriter: @unchecked Sendable {
    // @unchecked: `collections` is guarded by `lock`; `oplog` is only touched by
    // writeOplog/finish, which the caller runs after every writeCollection returned.
    private let repository: Repository
    private let previous: SnapshotManifest?
    private let logger: Logger
    private let queue: StoreQueue
    private let sink: RepositoryTreeSink
    private let boundary: LeafBoundary
    private let lock = NSLock()
    private var collections: [ManifestCollection] = []
    private var oplog: [OplogChunk] = []
    private let startBytes: Int

    /// - Parameter previous: the manifest of an earlier snapshot of the same source:
    ///   its trees give changed leaves a delta base and its shapes keep leaf boundaries.
    public init(repository: Repository, previous: SnapshotManifest?, logger: Logger) {
        self.repository = repository
        self.previous = previous
        self.logger = logger
        self.queue = StoreQueue()
        self.sink = RepositoryTreeSink(repository: repository, queue: queue)
        self.boundary = LeafBoundary(key: repository.boundaryKey)
        self.startBytes = repository.stats().totalStoredBytes
    }

    /// A writer dropped without `finish` (its import or backup failed) stops writing before it goes.
    deinit {
        queue.abandon()
        repository.waitForUploads()
    }

    /// Writes a collection whose documents `produce` hands over in strictly increasing
    /// `_id` order.
    ///
    /// - Parameter averageDocumentBytes: used to size leaves for a collection the
    ///   previous snapshot did not have.
    /// - Throws: `CaptureError` `.duplicateID`/`.unsorted` when the order is broken,
    ///   repository errors when storing fails, or what `produce` throws.
    @discardableResult
    public func writeCollection(
        database: String, collection: String, type: String, metadata: Document, averageDocumentBytes: Int,
        produce: (_ emit: (BSONKey, UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> ManifestCollection {
        try writeCollectionWithKeyBytes(
            database: database, collection: collection, type: type, metadata: metadata, averageDocumentBytes: averageDocumentBytes
        ) { emit in
            try withoutActuallyEscaping(emit) { emit in
                try produce { key, document in try key.bytes.withUnsafeBytes { try emit($0, document) } }
            }
        }
    }

    /// `writeCollection(database:collection:type:metadata:averageDocumentBytes:produce:)` with
    /// each key given as `BSONKey.bytes` in place: an import keeps its keys end to end, and
    /// a `BSONKey` apiece (an allocation, a release, reference counting on the way) cost it
    /// about 3% of its time.
    /// - Throws: as the `BSONKey` form.
    @discardableResult
    public func writeCollectionWithKeyBytes(
        database: String, collection: String, type: String, metadata: Document, averageDocumentBytes: Int,
        produce: (_ emit: (_ key: UnsafeRawBufferPointer, _ document: UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws -> ManifestCollection {
        let namespace = "\(database).\(collection)"
        let old = previous?.collection(namespace)
        let shape = old?.shape ?? TreeShape.forRecords(averageBytes: averageDocumentBytes)
        var directory: LeafDirectory?
        if let root = old?.root {
            let leaves = try TreeReader(load: repository.loadBlob).leaves(root: root)
            directory = LeafDirectory(entries: leaves) { a, b in
                a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in compareKeys(pa, pb) } }
            }
        }
        let metadataBytes = metadata.bytes
        let metadataID = repository.blobID(for: metadataBytes)
        try sink.store(.metadata, id: metadataID, bytes: metadataBytes, predecessor: nil)

        let tree = TreeWriter(shape: shape, boundary: boundary, sink: sink, previous: directory)
        // The capture-time checksum, over the documents as they arrive.
        var checksum = DocumentChecksum()
        var last: [UInt8] = []  // the previous key, in one reused buffer
        var first = true
        try produce { key, document in
            if !first {
                let order = last.withUnsafeBytes { compareKeys($0, key) }
                if order == 0 {
                    throw CaptureError(.duplicateID, "\(namespace) has two documents with _id \(BSONKey(trustedBytes: Array(key)))")
                }
                if order > 0 {
                    throw CaptureError(.unsorted, "\(namespace): documents are not in _id order at _id \(BSONKey(trustedBytes: Array(key)))")
                }
            }
            first = false
            last.removeAll(keepingCapacity: true)
            last.append(contentsOf: key)
            checksum.add(document)
            try tree.append(key: key, record: document)
        }
        let summary = try tree.finish()
        let entry = ManifestCollection(
            database: database, collection: collection, type: type, metadata: metadataID, root: summary.root,
            documents: summary.documents, bytes: summary.bytes, checksum: checksum.description, shape: shape)
        lock.withLock { collections.append(entry) }
        logger.info("collection written", metadata: [
            "collection.ns": "\(namespace)", "collection.documents": "\(summary.documents)",
            "collection.leaves": "\(summary.leaves)", "collection.bytes": "\(summary.bytes)",
        ])
        return entry
    }

    /// Stores oplog entries (in `ts` order) captured with the snapshot, in blobs of about 1 MiB.
    /// - Throws: `CaptureError` `.badOplogEntry` for an entry without a timestamp.
    public func writeOplog(_ produce: (_ emit: (Document) throws -> Void) throws -> Void) throws {
        var buffer: [UInt8] = []
        var first: OplogTime?
        var lastTime: OplogTime?
        var count = 0
        func cut() throws {
            guard let f = first, let l = lastTime, count > 0 else { return }
            let id = repository.blobID(for: buffer)
            try sink.store(.oplog, id: id, bytes: buffer, predecessor: nil)
            oplog.append(OplogChunk(blob: id, first: f, last: l, count: count))
            buffer = []
            first = nil
            count = 0
        }
        try produce { entry in
            guard let ts = entry["ts"]?.timestampValue else {
                throw CaptureError(.badOplogEntry, "an oplog entry has no ts field: \(entry)")
            }
            let time = OplogTime(t: ts.seconds, i: ts.increment)
            if let lastTime, time <= lastTime {
                throw CaptureError(.badOplogEntry, "oplog entries are out of order at \(time)")
            }
            if first == nil { first = time }
            lastTime = time
            buffer.append(contentsOf: entry.bytes)
            count += 1
            if buffer.count >= 1 << 20 { try cut() }
        }
        try cut()
    }

    /// Stores the manifest, flushes packs and index, then writes the snapshot record.
    /// - Returns: the snapshot's id and record.
    /// - Throws: repository errors; on any error no snapshot record is written.
    public func finish(source: String, kind: String, start: OplogTime?, end: OplogTime?, time: Date = Date(),
                       tags: [String] = []) throws -> (id: String, record: SnapshotRecord) {
        // Sorted by namespace: concurrent writers finish in any order, the manifest does not.
        let collections = lock.withLock { self.collections }.sorted {
            ($0.database, $0.collection) < ($1.database, $1.collection)
        }
        let manifest = SnapshotManifest(collections: collections, oplog: oplog)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let manifestBytes = Array(try encoder.encode(manifest))
        let manifestID = repository.blobID(for: manifestBytes)
        try sink.store(.manifest, id: manifestID, bytes: manifestBytes, predecessor: nil)
        try queue.wait()
        try repository.flush()
        let added = repository.stats().totalStoredBytes - startBytes
        let record = SnapshotRecord(
            time: time, hostname: ProcessInfo.processInfo.hostName, source: source, kind: kind, manifest: manifestID,
            start: start ?? oplog.first?.first, end: end ?? oplog.last?.last, collections: collections.count,
            documents: collections.reduce(0) { $0 + $1.documents }, bytes: collections.reduce(0) { $0 + $1.bytes },
            addedBytes: UInt64(max(0, added)), tags: tags)
        let id = try SnapshotCatalog(repository: repository).save(record)
        logger.info("snapshot saved", metadata: ["snapshot.id": "\(id)", "snapshot.documents": "\(record.documents)"])
        return (id, record)
    }
}

/// Stores tree blobs through the worker queue, as deltas against the previous tree's
/// leaf where that pays (ARCHITECTURE.md §3).
final class RepositoryTreeSink: TreeSink, @unchecked Sendable {
    let repository: Repository
    let queue: StoreQueue

    init(repository: Repository, queue: StoreQueue) {
        self.repository = repository
        self.queue = queue
    }

    func blobID(for bytes: [UInt8]) -> BlobID { repository.blobID(for: bytes) }

    func store(_ type: BlobType, id: BlobID, bytes: [UInt8], predecessor: BlobID?) throws {
        if repository.hasBlob(id) { return }
        let repository = self.repository
        try queue.submit {
            var base: (id: BlobID, bytes: [UInt8])?
            if let predecessor, predecessor != id, repository.hasBlob(predecessor) {
                // A delta's base must be whole: a changed leaf whose predecessor is
                // itself a delta patches against that delta's base.
                let baseID = try repository.deltaBase(of: predecessor) ?? predecessor
                base = (baseID, try repository.loadBlob(baseID))
            }
            try repository.saveBlob(type: type, bytes: bytes, id: id, deltaBase: base)
        }
    }
}
