import BSON
import Foundation
import Logging
import Mongo
import MongoDump
import Repository
import Synchronization

/// How a backup runs.
public struct BackupOptions: Sendable {
    public var filter: NamespaceFilter
    /// Take the snapshot without oplog bounds (servers without an oplog): not point-in-time.
    public var snapshotOnly: Bool
    /// Collections read at once, and range readers besides them.
    public var parallel: Int
    public var tags: [String]
    /// Collections larger than this (by the server's statistics) are read as several
    /// `_id` ranges at once.
    public var splitThresholdBytes: Int
    /// The size a range aims at when a collection is split.
    public var rangeBytes: Int
    /// Bytes a range reader may buffer ahead of the tree writer.
    public var bufferBytes: Int
    /// Documents per cursor batch (nil: the server's default, up to 16 MiB).
    public var batchSize: Int?

    public init(filter: NamespaceFilter, snapshotOnly: Bool = false, parallel: Int = 4, tags: [String] = [],
                splitThresholdBytes: Int = 64 << 20, rangeBytes: Int = 32 << 20, bufferBytes: Int = 8 << 20,
                batchSize: Int? = nil) {
        self.batchSize = batchSize
        self.filter = filter
        self.snapshotOnly = snapshotOnly
        self.parallel = max(1, parallel)
        self.tags = tags
        self.splitThresholdBytes = splitThresholdBytes
        self.rangeBytes = max(1, rangeBytes)
        self.bufferBytes = bufferBytes
    }
}

/// What a backup stored.
public struct BackupResult: Sendable {
    public var snapshotID: String
    public var record: SnapshotRecord
    public var seconds: Double
    /// False for a snapshot-only backup: it restores to some moment during the read, not to `end`.
    public var pointInTime: Bool
    public var oplogEntries: Int
    /// Collections dropped (or dropped and recreated, or renamed) while being read:
    /// stored up to that point; the snapshot's oplog replays the rest.
    public var droppedDuringSnapshot: [Namespace]
    /// Collections read as several `_id` ranges.
    public var splitCollections: [Namespace: Int]
}

/// Takes a snapshot of a live server into a repository (ARCHITECTURE.md §4).
///
/// Lists the namespaces the filter keeps, records their metadata in mongodump's
/// shape (so `export` works on backups), notes `start` (the newest oplog entry),
/// reads every collection sorted by `_id` (several collections at once, and large
/// ones as several `_id` ranges read concurrently into bounded buffers while the
/// collection's tree consumes them in order), notes `end`, then stores the oplog
/// entries from `start` to `end` with the snapshot. Restoring loads the documents
/// and replays those entries; the consistency point is `end`.
///
/// Threading: `run` blocks its caller and uses `parallel` collection threads plus
/// `parallel` range-reader threads of its own (libmongoc blocks); call it from a
/// thread, not from Swift's cooperative pool.
public final class SnapshotDumper: Sendable {
    private let client: MongoClient
    private let repository: Repository
    private let logger: Logger
    private let progress: DumpProgress

    public init(client: MongoClient, repository: Repository, logger: Logger, progress: DumpProgress = DumpProgress()) {
        self.client = client
        self.repository = repository
        self.logger = logger
        self.progress = progress
    }

    /// The label a backup of this server records as its source (no credentials).
    public var sourceLabel: String { "mongodb://\(client.hosts)" }

    /// Runs the backup.
    /// - Throws: `MongoError` (`.noOplog` when the server keeps no oplog and
    ///   `snapshotOnly` is false, `.serverUnreachable`, ...), `CaptureError`
    ///   (`.oplogRolledOver` when the oplog no longer holds `start` at the end,
    ///   `.missingID`), repository errors. Nothing is recorded unless all succeeded.
    public func run(_ options: BackupOptions) throws -> BackupResult {
        let clock = ContinuousClock()
        let started = clock.now
        let info = try client.hello()
        let pointInTime = !options.snapshotOnly
        if pointInTime { try info.requireOplog(hosts: client.hosts) }

        // `start` before listing: a collection created after it is then either listed
        // or created by the replayed oplog.
        let start = pointInTime ? try newestOplogTime() : nil
        let plans = try plan(options.filter)
        progress.expect(bytes: plans.reduce(0) { $0 + $1.estimatedBytes },
                        documents: plans.reduce(0) { $0 + $1.estimatedDocuments }, collections: plans.count)
        logger.info("backup started", metadata: [
            "backup.collections": "\(plans.count)", "oplog.start": "\(start.map { "\($0)" } ?? "-")",
        ])

        let catalog = SnapshotCatalog(repository: repository)
        let previous = try catalog.latest(source: sourceLabel).map { try catalog.manifest(of: $0.record) }
        let writer = SnapshotWriter(repository: repository, previous: previous, logger: logger)
        let outcomes = try dumpCollections(plans, writer: writer, options: options)

        var oplogEntries = 0
        var end: Timestamp?
        if let start {
            let last = try newestOplogTime()
            end = last
            oplogEntries = try captureOplog(from: start, to: last, writer: writer)
        }
        let time = { (t: Timestamp?) in t.map { OplogTime(t: $0.seconds, i: $0.increment) } }
        let (id, record) = try writer.finish(source: sourceLabel, kind: "backup", start: time(start), end: time(end),
                                             tags: options.tags)
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var dropped: [Namespace] = []
        var split: [Namespace: Int] = [:]
        for outcome in outcomes {
            if outcome.dropped { dropped.append(outcome.namespace) }
            if outcome.ranges > 1 { split[outcome.namespace] = outcome.ranges }
        }
        return BackupResult(snapshotID: id, record: record, seconds: seconds, pointInTime: pointInTime,
                            oplogEntries: oplogEntries, droppedDuringSnapshot: dropped.sorted(),
                            splitCollections: split)
    }

    // MARK: Planning

    struct CollectionPlan: Sendable {
        var namespace: Namespace
        var kind: CollectionInfo.Kind
        var rawType: String
        var uuid: BSONValue?
        var metadata: Document
        var estimatedBytes: Int
        var estimatedDocuments: Int
    }

    /// Every namespace to back up with its metadata and size estimate, largest first.
    private func plan(_ filter: NamespaceFilter) throws -> [CollectionPlan] {
        var plans: [CollectionPlan] = []
        for database in try client.listDatabases() where filter.mayInclude(database: database.name) {
            for info in try client.listCollections(database: database.name) {
                let namespace = Namespace(database: database.name, collection: info.name)
                guard filter.includes(namespace) else { continue }
                let indexes = info.kind == .view ? [] : try client.listIndexes(namespace)
                var uuid: String?
                if case .binary(_, let data)? = info.uuid, data.count == 16 { uuid = hexString(data) }
                let metadata = CollectionMetadata(options: info.options, indexes: indexes, uuid: uuid,
                                                  collectionName: info.name, type: info.rawType)
                var bytes = 0
                var documents = 0
                if info.kind != .view,
                   let stats = try? client.runCommand(Document(["collStats": .string(info.name)]), database: database.name) {
                    bytes = Int(stats["size"]?.int64Value ?? 0)
                    documents = Int(stats["count"]?.int64Value ?? 0)
                }
                plans.append(CollectionPlan(namespace: namespace, kind: info.kind, rawType: info.rawType, uuid: info.uuid,
                                            metadata: metadata.document, estimatedBytes: bytes,
                                            estimatedDocuments: documents))
            }
        }
        return plans.sorted { ($0.estimatedBytes, $1.namespace) > ($1.estimatedBytes, $0.namespace) }
    }

    // MARK: Reading collections

    struct CollectionOutcome: Sendable {
        var namespace: Namespace
        var dropped: Bool
        var ranges: Int
    }

    /// Runs collection writers on `parallel` threads; range readers on a pool of as many.
    private func dumpCollections(_ plans: [CollectionPlan], writer: SnapshotWriter,
                                 options: BackupOptions) throws -> [CollectionOutcome] {
        struct Shared {
            var next = 0
            var outcomes: [CollectionOutcome] = []
            var failure: (any Error)?
        }
        let shared = Mutex(Shared())
        let pool = ReaderPool(threads: options.parallel, name: "ancre-range")
        let group = DispatchGroup()
        for i in 0..<min(options.parallel, max(1, plans.count)) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                while true {
                    let plan: CollectionPlan? = shared.withLock { s in
                        guard s.failure == nil, s.next < plans.count else { return nil }
                        defer { s.next += 1 }
                        return plans[s.next]
                    }
                    guard let plan else { return }
                    do {
                        let outcome = try dumpCollection(plan, writer: writer, pool: pool, options: options)
                        shared.withLock { $0.outcomes.append(outcome) }
                        progress.collectionFinished()
                    } catch {
                        shared.withLock { s in if s.failure == nil { s.failure = error } }
                        return
                    }
                }
            }
            thread.name = "ancre-collection-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        pool.close()
        let result = shared.withLock { $0 }
        if let failure = result.failure { throw failure }
        return result.outcomes
    }

    /// Reads one collection (or records one view) into the snapshot.
    private func dumpCollection(_ plan: CollectionPlan, writer: SnapshotWriter, pool: ReaderPool,
                                options: BackupOptions) throws -> CollectionOutcome {
        let ns = plan.namespace
        if plan.kind == .view {
            try writer.writeCollection(database: ns.database, collection: ns.collection, type: plan.rawType,
                                       metadata: plan.metadata, averageDocumentBytes: 1024) { _ in }
            return CollectionOutcome(namespace: ns, dropped: false, ranges: 0)
        }
        var ranges = [IDRange.whole]
        if plan.estimatedBytes > options.splitThresholdBytes {
            let count = min(options.parallel * 4, max(2, plan.estimatedBytes / options.rangeBytes))
            ranges = RangeSplitter.ranges(sample: sampleIDs(ns, size: count * 20), count: count)
        }
        // Ranges after the first are read by the pool into bounded buffers, submitted
        // in order now that this writer runs (see ReaderPool on why that cannot deadlock).
        let buffers = ranges.dropFirst().map { _ in RangeBuffer(capacityBytes: options.bufferBytes) }
        defer { for buffer in buffers { buffer.cancel() } }
        for (range, buffer) in zip(ranges.dropFirst(), buffers) {
            pool.submit { [self] in
                let result = Result { () throws -> RangeEnd in
                    try readRange(ns, range, uuid: plan.uuid, batchSize: options.batchSize) { buffer.put($0) }
                }
                buffer.finish(result)
            }
        }
        let average = plan.estimatedDocuments > 0 ? max(16, plan.estimatedBytes / plan.estimatedDocuments) : 1024
        var dropped = false
        let progress = self.progress
        do {
            try writer.writeCollection(database: ns.database, collection: ns.collection, type: plan.rawType,
                                       metadata: plan.metadata, averageDocumentBytes: average) { emit in
                func consume(_ batch: DocumentBatch) throws {
                    for (key, document) in batch.documents {
                        try document.bytes.withUnsafeBytes { try emit(key, $0) }
                    }
                    progress.add(bytes: batch.bytes, documents: batch.documents.count)
                }
                var failure: (any Error)?
                let first = try readRange(ns, ranges[0], uuid: plan.uuid, batchSize: options.batchSize) { batch in
                    do { try consume(batch); return true } catch { failure = error; return false }
                }
                if let failure { throw failure }
                if first == .dropped {
                    dropped = true
                    return
                }
                for buffer in buffers {
                    while let batch = try buffer.take() { try consume(batch) }
                    if buffer.ending == .dropped {
                        dropped = true
                        return
                    }
                }
            }
        } catch let error as CaptureError where error.code == .unsorted && ranges.count == 1 {
            // Some MongoDB-compatible servers (nx-27017) do not sort _ids in MongoDB's
            // canonical order: read the collection again and sort it here, in memory.
            logger.warning("the server returned _ids out of canonical order; sorting the collection in memory",
                           metadata: ["collection.ns": "\(ns)"])
            var all: [(key: BSONKey, document: Document)] = []
            let end = try readRange(ns, .whole, uuid: plan.uuid, batchSize: options.batchSize, ordered: false) { batch in
                all.append(contentsOf: batch.documents)
                return true
            }
            dropped = end == .dropped
            all.sort { compareKeys($0.key, $1.key) < 0 }
            try writer.writeCollection(database: ns.database, collection: ns.collection, type: plan.rawType,
                                       metadata: plan.metadata, averageDocumentBytes: average) { emit in
                for (key, document) in all {
                    try document.bytes.withUnsafeBytes { try emit(key, $0) }
                }
            }
        }
        if dropped {
            logger.warning("collection dropped during the snapshot; stored up to the drop, the oplog replays the rest",
                           metadata: ["collection.ns": "\(ns)"])
        }
        return CollectionOutcome(namespace: ns, dropped: dropped, ranges: ranges.count)
    }

    /// A random sample of the collection's `_id`s (`$sample`); empty when the server
    /// cannot sample, which leaves the collection in one range.
    private func sampleIDs(_ ns: Namespace, size: Int) -> [BSONKey] {
        let command = Document([
            "aggregate": .string(ns.collection),
            "pipeline": .array([
                .document(Document(["$sample": .document(Document(["size": .int64(Int64(size))]))])),
                .document(Document(["$project": .document(Document(["_id": .int32(1)]))])),
            ]),
            "cursor": .document(Document(["batchSize": .int64(Int64(size))])),
        ])
        guard let reply = try? client.runCommand(command, database: ns.database),
              let batch = reply["cursor"]?.documentValue?["firstBatch"]?.arrayValue else {
            logger.info("cannot sample _ids; reading the collection as one range", metadata: ["collection.ns": "\(ns)"])
            return []
        }
        return batch.compactMap { $0.documentValue?.idKey }
    }

    /// Reads `range` in `_id` order, handing batches to `deliver` (false: stop).
    ///
    /// A lost cursor on a collection that still exists with the same UUID is reopened
    /// after the last `_id` read; a collection gone or recreated ends the range as `.dropped`.
    /// - Throws: `MongoError`, `CaptureError` `.missingID`.
    /// With `ordered: false` the server's order is not relied on (no resume after a
    /// lost cursor: it fails).
    private func readRange(_ ns: Namespace, _ range: IDRange, uuid: BSONValue?, batchSize: Int?, ordered: Bool = true,
                           deliver: (DocumentBatch) -> Bool) throws -> RangeEnd {
        var lastKey: BSONKey?
        var resumeAfter: BSONKey?
        var retries = 0
        let batchBytes = 1 << 20
        while true {
            var batch = DocumentBatch()
            do {
                let lower = resumeAfter ?? range.lower
                let options: FindOptions = lower == nil && range.upper == nil
                    ? .idRange(batchSize: batchSize)
                    : .idIndexRange(from: lower?.value, to: range.upper?.value, batchSize: batchSize)
                let cursor = try client.find(ns, options)
                defer { cursor.close() }
                while let document = try cursor.next() {
                    guard let key = document.idKey else {
                        throw CaptureError(.missingID, "a document of \(ns) has no _id")
                    }
                    // Reopened at the last key read (min is inclusive): skip it.
                    if let resumeAfter, compareKeys(key, resumeAfter) <= 0 { continue }
                    batch.documents.append((key, document))
                    batch.bytes += document.byteCount
                    lastKey = key
                    if batch.bytes >= batchBytes || batch.documents.count >= 4096 {
                        guard deliver(batch) else { return .cancelled }
                        batch = DocumentBatch()
                    }
                }
                if !batch.documents.isEmpty { guard deliver(batch) else { return .cancelled } }
                return .complete
            } catch let error as MongoError where error.code == .namespaceNotFound || error.code == .cursorLost {
                if !batch.documents.isEmpty { guard deliver(batch) else { return .cancelled } }
                if try collectionChanged(ns, uuid: uuid) { return .dropped }
                retries += 1
                if retries > 3 || !ordered { throw error }
                resumeAfter = lastKey
                logger.info("cursor lost; reopening after the last _id read", metadata: [
                    "collection.ns": "\(ns)", "mongo.error": "\(error)",
                ])
            }
        }
    }

    /// True when `ns` no longer exists, or exists with another UUID.
    private func collectionChanged(_ ns: Namespace, uuid: BSONValue?) throws -> Bool {
        let now = try client.listCollections(database: ns.database, filter: Document(["name": .string(ns.collection)]))
        guard let info = now.first else { return true }
        if let uuid, let current = info.uuid { return uuid != current }
        return false
    }

    // MARK: Oplog

    /// The `ts` of the newest oplog entry.
    /// - Throws: `MongoError`; `.noOplog` when the oplog is empty.
    private func newestOplogTime() throws -> Timestamp {
        let cursor = try client.find(.oplog, FindOptions(sort: Document(["$natural": .int32(-1)]), limit: 1))
        defer { cursor.close() }
        guard let ts = try cursor.next()?["ts"]?.timestampValue else {
            throw MongoError(.noOplog, "the oplog (local.oplog.rs) on \(client.hosts) is empty; point-in-time capture needs at least one entry")
        }
        return ts
    }

    /// Stores the entries from `start` to `end` (inclusive) with the snapshot.
    /// - Throws: `CaptureError` `.oplogRolledOver` when the entry at `start` is gone.
    private func captureOplog(from start: Timestamp, to end: Timestamp, writer: SnapshotWriter) throws -> Int {
        let filter = Document(["ts": .document(Document(["$gte": .timestamp(start), "$lte": .timestamp(end)]))])
        let rolledOver = CaptureError(.oplogRolledOver, "the oplog on \(client.hosts) no longer holds the entry at \(start), where the snapshot started: it rolled over while the collections were read, so the snapshot cannot be made consistent. Enlarge the oplog (replSetResizeOplog) so it covers at least the backup's duration, or back up at a quieter time, then run the backup again.")
        let cursor = try client.find(.oplog, FindOptions(filter: filter))
        defer { cursor.close() }
        var count = 0
        do {
            try writer.writeOplog { emit in
                while let entry = try cursor.next() {
                    if count == 0 && entry["ts"]?.timestampValue != start { throw rolledOver }
                    try emit(entry)
                    count += 1
                }
            }
        } catch let error as MongoError where error.code == .cursorLost {
            throw rolledOver
        }
        if count == 0 { throw rolledOver }
        logger.info("oplog captured", metadata: ["oplog.start": "\(start)", "oplog.end": "\(end)", "oplog.entries": "\(count)"])
        return count
    }
}
