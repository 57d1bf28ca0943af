import BSON
import Foundation
import Logging
import Mongo
import MongoDump
import Repository

/// Loads a snapshot's collections into a target server: collections created with
/// their options before the data, documents by parallel unordered `insert` batches,
/// indexes after the data, views last (after their sources), names filtered and
/// renamed as mongorestore's `--nsInclude/--nsExclude/--nsFrom/--nsTo`.
///
/// Threading: `load` blocks its caller; leaves are read, decrypted and inserted by
/// `workers` threads of its own, each with its own pooled connection.
public struct DataLoader: Sendable {
    public struct Options: Sendable {
        public var mapping: NamespaceMapping = .identity
        /// Drop existing target collections and views first; without it, a non-empty
        /// existing collection is refused.
        public var drop = false
        /// Parallel loading threads.
        public var workers = 4
        /// Documents per `insert` batch.
        public var batchDocuments = 1000
        /// Bytes per `insert` batch.
        public var batchBytes = 15 << 20
        /// Restore `admin.system.*` (users, roles): off, as mongorestore.
        public var includeAdminSystem = false

        public init(mapping: NamespaceMapping = .identity, drop: Bool = false, workers: Int = 4) {
            self.mapping = mapping
            self.drop = drop
            self.workers = workers
        }
    }

    let repository: Repository
    let client: MongoClient
    let options: Options
    let logger: Logger

    public init(repository: Repository, client: MongoClient, options: Options = Options(), logger: Logger = MongoClient.silentLogger) {
        self.repository = repository
        self.client = client
        self.options = options
        self.logger = logger
    }

    /// One collection or view to load.
    struct Item {
        var entry: ManifestCollection
        var source: Namespace
        var target: Namespace
        var metadata: CollectionMetadata
        var isView: Bool
        var leaves: [TreeEntry] = []
    }

    /// Loads every collection and view of `manifest` the mapping includes.
    /// - Returns: per-collection counts and the namespaces replay must keep serial.
    /// - Throws: `RestoreError` `.targetNotEmpty` (before anything is written) when a
    ///   target collection holds documents and `drop` is off; `.loadFailed` for
    ///   repository or server errors; `.countMismatch` when a collection's count
    ///   differs from the snapshot's.
    public func load(_ manifest: SnapshotManifest) throws(RestoreError) -> LoadResult {
        let started = ContinuousClock.now
        var items: [Item] = []
        for entry in manifest.collections {
            let source = Namespace(database: entry.database, collection: entry.collection)
            // View definitions come back as views; the rest of system.* is the server's.
            if entry.collection.hasPrefix("system.") || source.database == "local" || source.database == "config" { continue }
            if source.database == "admin" && !options.includeAdminSystem && entry.collection.hasPrefix("system.") { continue }
            guard let target = options.mapping.map(source) else { continue }
            let metadata: CollectionMetadata
            do {
                metadata = try CollectionMetadata(document: Document(bytes: try repository.loadBlob(entry.metadata)))
            } catch {
                throw RestoreError(.loadFailed, "cannot read the metadata of \(source) from the repository: \(error). Run `ancre check --read-data`.")
            }
            let isView = entry.type == "view" || metadata.kind == .view
            items.append(Item(entry: entry, source: source, target: target, metadata: metadata, isView: isView))
        }
        try prepareTargets(items)
        let reader = TreeReader(load: repository.loadBlob)
        for i in items.indices where !items[i].isView {
            try createCollection(items[i])
            if let root = items[i].entry.root {
                do { items[i].leaves = try reader.leaves(root: root) } catch {
                    throw RestoreError(.loadFailed, "cannot read the tree of \(items[i].source): \(error). Run `ancre check --read-data`.")
                }
            }
        }
        let counts = try loadDocuments(items.filter { !$0.isView })
        var result = LoadResult()
        for item in items where !item.isView {
            let loaded = counts[item.target] ?? 0
            guard loaded == item.entry.documents else {
                throw RestoreError(.countMismatch, "\(item.target) received \(loaded) documents but the snapshot holds \(item.entry.documents) for \(item.source); the target changed during the load or refused documents. Restore again with --drop.")
            }
            let indexes = try createIndexes(item)
            let capped = item.metadata.options["capped"] == .bool(true)
            if capped || item.metadata.indexes.contains(where: { $0["unique"] == .bool(true) && $0["name"] != .string("_id_") }) {
                result.serialNamespaces.insert(item.target)
            }
            result.collections.append(LoadedCollection(source: item.source, target: item.target, documents: loaded,
                                                       indexes: indexes, isView: false))
            result.documents += loaded
        }
        for item in try orderViews(items.filter(\.isView)) {
            try createView(item)
            result.collections.append(LoadedCollection(source: item.source, target: item.target, documents: 0, indexes: 0, isView: true))
        }
        result.elapsed = ContinuousClock.now - started
        logger.info("snapshot loaded", metadata: ["load.collections": "\(result.collections.count)", "load.documents": "\(result.documents)"])
        return result
    }

    // MARK: Steps

    /// Drops existing targets (with `drop`), or refuses non-empty ones, before any write.
    private func prepareTargets(_ items: [Item]) throws(RestoreError) {
        var existing: [String: Set<String>] = [:]
        for database in Set(items.map(\.target.database)) {
            do {
                existing[database] = Set(try client.listCollections(database: database).map(\.name))
            } catch {
                throw RestoreError(.loadFailed, "cannot list the collections of \(database) on the target: \(error)", underlying: error)
            }
        }
        var refused: [String] = []
        for item in items where existing[item.target.database]?.contains(item.target.collection) == true {
            if options.drop {
                try command(["drop": .string(item.target.collection)], item.target.database, "drop \(item.target)", tolerating: [26])
                continue
            }
            if item.isView {
                refused.append("\(item.target) (a view)")
                continue
            }
            let first: Document?
            do { first = try client.find(item.target, FindOptions(limit: 1)).collect().first } catch {
                throw RestoreError(.loadFailed, "cannot read \(item.target) on the target: \(error)", underlying: error)
            }
            if first != nil { refused.append(item.target.description) }
        }
        if !refused.isEmpty {
            throw RestoreError(.targetNotEmpty, "the target already holds \(refused.sorted().joined(separator: ", ")); nothing was written. Restore with --drop to replace them, or rename with --nsFrom/--nsTo.")
        }
    }

    private func createCollection(_ item: Item) throws(RestoreError) {
        let options = item.metadata.options.elements.filter { $0.key != "viewOn" && $0.key != "pipeline" }.map { ($0.key, $0.value) }
        let document = Document(pairs: [("create", .string(item.target.collection))] + options)
        // An empty existing collection is kept (as mongorestore does).
        try command(document, item.target.database, "create \(item.target)", tolerating: [48])
    }

    private func createIndexes(_ item: Item) throws(RestoreError) -> Int {
        let specs = item.metadata.indexes.filter { $0["name"] != .string("_id_") }.map { spec in
            // `ns` was part of index specs before 4.4 and is refused now.
            BSONValue.document(Document(pairs: spec.elements.filter { $0.key != "ns" }.map { ($0.key, $0.value) }))
        }
        guard !specs.isEmpty else { return 0 }
        try command(Document(["createIndexes": .string(item.target.collection), "indexes": .array(specs)]),
                    item.target.database, "createIndexes on \(item.target)", tolerating: [])
        return specs.count
    }

    private func createView(_ item: Item) throws(RestoreError) {
        var pairs: [(String, BSONValue)] = [("create", .string(item.target.collection))]
        for (key, value) in item.metadata.options.elements {
            if key == "viewOn", let on = value.stringValue {
                // The source of a renamed view follows the renames.
                let mapped = options.mapping.rename(Namespace(database: item.source.database, collection: on))
                guard mapped.database == item.target.database else {
                    throw RestoreError(.unsupported, "view \(item.source) would be renamed to \(item.target) but its source \(item.source.database).\(on) to \(mapped): a view and its source must stay in one database. Adjust --nsFrom/--nsTo.")
                }
                pairs.append((key, .string(mapped.collection)))
            } else {
                pairs.append((key, value))
            }
        }
        try command(Document(pairs: pairs), item.target.database, "create view \(item.target)", tolerating: [])
    }

    /// Views after the views they are defined on.
    private func orderViews(_ views: [Item]) throws(RestoreError) -> [Item] {
        var pending = views
        var done: Set<Namespace> = []
        var out: [Item] = []
        while !pending.isEmpty {
            let names = Set(pending.map(\.source))
            let ready = pending.filter { view in
                let on = view.metadata.options["viewOn"]?.stringValue.map { Namespace(database: view.source.database, collection: $0) }
                return on.map { !names.contains($0) || done.contains($0) } ?? true
            }
            guard !ready.isEmpty else {
                throw RestoreError(.loadFailed, "views \(pending.map(\.source.description).joined(separator: ", ")) are defined on each other in a cycle")
            }
            out += ready
            done.formUnion(ready.map(\.source))
            let readySet = Set(ready.map(\.source))
            pending.removeAll { readySet.contains($0.source) }
        }
        return out
    }

    private func command(_ document: Document, _ database: String, _ what: String, tolerating: Set<Int>) throws(RestoreError) {
        do {
            _ = try client.runCommand(document, database: database)
        } catch {
            if let code = error.serverCode, tolerating.contains(code) { return }
            throw RestoreError(.loadFailed, "\(what) failed on the target: \(error)", underlying: error)
        }
    }

    private func command(_ pairs: KeyValuePairs<String, BSONValue>, _ database: String, _ what: String, tolerating: Set<Int>) throws(RestoreError) {
        try command(Document(pairs), database, what, tolerating: tolerating)
    }

    // MARK: Documents

    /// Inserts every leaf's documents with `workers` threads; returns counts per target.
    private func loadDocuments(_ items: [Item]) throws(RestoreError) -> [Namespace: UInt64] {
        var work: [(target: Namespace, leaf: BlobID)] = []
        for item in items { work += item.leaves.map { (item.target, $0.child) } }
        let state = LoadState(work: work)
        let repository = self.repository, client = self.client
        let batchDocuments = options.batchDocuments, batchBytes = options.batchBytes
        DispatchQueue.concurrentPerform(iterations: max(1, min(options.workers, work.count))) { _ in
            var batch: [Document] = []
            var bytes = 0
            var current: Namespace?
            func flush() throws {
                guard let ns = current, !batch.isEmpty else { return }
                let result = try client.insertMany(batch, into: ns, ordered: false)
                if let first = result.writeErrors.first {
                    throw RestoreError(.loadFailed, "\(ns) refused \(result.writeErrors.count) of \(batch.count) documents, first: \(first). Restore into empty collections (--drop) or check the target's validators.")
                }
                state.add(UInt64(result.insertedCount), to: ns)
                batch.removeAll(keepingCapacity: true)
                bytes = 0
            }
            do {
                while let (target, leaf) = state.next() {
                    if current != target { try flush() }
                    current = target
                    let data = try repository.loadBlob(leaf)
                    try TreeReader.forEachRecord(in: data, id: leaf) { record in
                        if batch.count >= batchDocuments || (bytes + record.count > batchBytes && !batch.isEmpty) { try flush() }
                        batch.append(Document(trustedBytes: Array(record)))
                        bytes += record.count
                    }
                }
                try flush()
            } catch {
                state.fail(error)
            }
        }
        if let error = state.failure {
            if let error = error as? RestoreError { throw error }
            throw RestoreError(.loadFailed, "loading documents failed: \(error)", underlying: error)
        }
        return state.counts
    }
}

/// Shared by the loading threads: the leaves left to load, counts, the first failure.
private final class LoadState: @unchecked Sendable {
    private let lock = NSLock()
    private let work: [(target: Namespace, leaf: BlobID)]
    private var nextIndex = 0
    private var _counts: [Namespace: UInt64] = [:]
    private var _failure: (any Error & Sendable)?

    init(work: [(target: Namespace, leaf: BlobID)]) { self.work = work }

    func next() -> (Namespace, BlobID)? {
        lock.withLock {
            guard _failure == nil, nextIndex < work.count else { return nil }
            defer { nextIndex += 1 }
            return work[nextIndex]
        }
    }

    func add(_ n: UInt64, to ns: Namespace) { lock.withLock { _counts[ns, default: 0] += n } }
    func fail(_ error: any Error) {
        lock.withLock { if _failure == nil { _failure = error } }
    }
    var counts: [Namespace: UInt64] { lock.withLock { _counts } }
    var failure: (any Error & Sendable)? { lock.withLock { _failure } }
}

/// What a load did.
public struct LoadResult: Sendable {
    public var collections: [LoadedCollection] = []
    public var documents: UInt64 = 0
    /// Capped collections and collections with unique secondary indexes: pass them to
    /// `OplogApplier.Options.serialNamespaces`.
    public var serialNamespaces: Set<Namespace> = []
    public var elapsed: Duration = .zero
    public init() {}
}

/// One loaded collection or view.
public struct LoadedCollection: Sendable {
    public var source: Namespace
    public var target: Namespace
    public var documents: UInt64
    public var indexes: Int
    public var isView: Bool
}
