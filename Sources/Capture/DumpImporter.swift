import BSON
import Foundation
import Logging
import MongoDump
import Repository

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

        for collection in scan.collections {
            let ns = collection.info.namespace
            try writer.writeCollection(
                database: ns.database, collection: ns.collection, type: collection.info.kind.rawValue,
                metadata: collection.info.metadata?.document ?? Document(),
                averageDocumentBytes: collection.keys.isEmpty ? 1024 : collection.bytes / collection.keys.count,
                checksumPrefix: collection.checksumPrefix
            ) { emit in
                var index = 0
                try source.forEachValidatedDocument(at: collection.keys.lazy.map(\.location)) { bytes in
                    try emit(collection.keys[index].key, bytes)
                    index += 1
                }
            }
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
}

/// The first pass of an import: every collection's `_id`s and document locations,
/// sorted in MongoDB's `_id` order, with the documents validated on the way.
///
/// Collections are scanned in parallel (two at a time); memory is about 60 bytes a
/// document. The scan needs no repository key, so a caller runs it while the key is
/// derived, and lets it use what is left of that time to compute checksums.
public struct DumpScan: @unchecked Sendable {
    public struct Collection: Sendable {
        public var info: DumpNamespace
        public var keys: [(key: BSONKey, location: DocumentLocation)]
        public var bytes: Int
        /// MD5 of the first documents in `_id` order (all of them, or as many as the scan
        /// had time for); the snapshot writer hashes the rest. Nil: none.
        public var checksumPrefix: ChecksumPrefix?

        /// The manifest checksum (MD5 of the documents in `_id` order) when the scan
        /// hashed every document.
        public var checksum: String? {
            guard let checksumPrefix, checksumPrefix.bytes == bytes else { return nil }
            return checksumPrefix.md5.copy().finalize()
        }
    }

    public let source: any DumpSource
    public let collections: [Collection]

    /// Scans every namespace of `source`.
    ///
    /// A collection whose documents are already in `_id` order gets its checksum in the
    /// scan itself. For the others, once scanned, one thread reads them again in `_id`
    /// order to hash them, but only while `checksumsWhile()` returns true (the import
    /// passes "the repository key is not derived yet": the scrypt thread leaves a core
    /// free, and MD5 needs no key); it stops within a document when that turns false,
    /// and the writer goes on from there.
    ///
    /// - Parameter checksumsWhile: called from the scanning threads; must be cheap.
    /// - Throws: `DumpError` for malformed input, `CaptureError` `.missingID` for a
    ///   document without `_id`.
    public init(_ source: any DumpSource, checksumsWhile: @Sendable () -> Bool = { false }) throws {
        self.source = source
        let namespaces = try source.namespaces()
        // Shared between the two scanning threads, under its lock.
        final class Progress: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var results: [Result<Collection, any Error>?]
            /// True while one thread hashes: one hasher and the key derivation fill two cores.
            var hashing = false
            var hashed: Set<Int> = []
            init(count: Int) { results = Array(repeating: nil, count: count) }
        }
        let progress = Progress(count: namespaces.count)
        // Largest first, so the two scanning threads finish together.
        let order = namespaces.indices.sorted { (namespaces[$0].byteCount ?? 0) > (namespaces[$1].byteCount ?? 0) }
        DispatchQueue.concurrentPerform(iterations: min(2, max(1, namespaces.count))) { _ in
            while true {
                let index: Int? = progress.lock.withLock {
                    guard progress.next < order.count else { return nil }
                    defer { progress.next += 1 }
                    return order[progress.next]
                }
                guard let index else { break }
                let result = Result { try Self.scan(namespaces[index], in: source) }
                progress.lock.withLock { progress.results[index] = result }
            }
            let hasher = progress.lock.withLock {
                defer { progress.hashing = true }
                return !progress.hashing
            }
            guard hasher else { return }
            while checksumsWhile() {
                // A scanned collection without a checksum; one still being scanned by the
                // other thread is left to the writer.
                let next: (Int, Collection)? = progress.lock.withLock {
                    for i in order where !progress.hashed.contains(i) {
                        guard case .success(let c)? = progress.results[i], (c.checksumPrefix?.bytes ?? 0) < c.bytes else { continue }
                        progress.hashed.insert(i)
                        return (i, c)
                    }
                    return nil
                }
                guard let (index, collection) = next else { break }
                let prefix = Self.checksumPrefix(of: collection, in: source, while: checksumsWhile)
                progress.lock.withLock {
                    if case .success(var c)? = progress.results[index] {
                        c.checksumPrefix = prefix
                        progress.results[index] = .success(c)
                    }
                }
            }
            progress.lock.withLock { progress.hashing = false }
        }
        let results = progress.results
        collections = try results.map { try $0!.get() }
    }

    /// MD5 of `collection`'s documents in `_id` order, going on from the prefix the scan
    /// hashed (whole documents), up to where `proceed` turned false or a read failed (the
    /// writer's own read will report it).
    private static func checksumPrefix(of collection: Collection, in source: any DumpSource, while proceed: () -> Bool) -> ChecksumPrefix {
        struct Stopped: Error {}
        let md5 = collection.checksumPrefix?.md5.copy() ?? MD5()
        var hashed = collection.checksumPrefix?.bytes ?? 0
        var first = 0
        var covered = 0
        while covered < hashed {
            covered += Int(collection.keys[first].location.length)
            first += 1
        }
        guard covered == hashed else { return collection.checksumPrefix! }
        _ = Result {
            try source.forEachValidatedDocument(at: collection.keys[first...].lazy.map(\.location)) { bytes in
                guard proceed() else { throw Stopped() }
                md5.update(bytes)
                hashed += bytes.count
            }
        }
        return ChecksumPrefix(md5: md5, bytes: hashed)
    }

    private static func scan(_ info: DumpNamespace, in source: any DumpSource) throws -> Collection {
        let ns = info.namespace
        guard info.kind != .view else { return Collection(info: info, keys: [], bytes: 0, checksumPrefix: nil) }
        var keys: [(key: BSONKey, location: DocumentLocation)] = []
        var total = 0
        // mongodump writes a collection in natural order, which is usually `_id` order.
        // While it is, the documents' MD5 in file order is the checksum, hashed here while
        // the bytes are in cache and before the repository key exists (the scan runs beside
        // the key derivation). Hashing stops at the first key out of order. Of what it
        // hashed, the documents that sort before every later one are still a prefix of the
        // `_id` order: the hasher's state is saved every few MiB to keep the longest such
        // prefix, so a dump out of order near its end loses little hashing.
        let md5 = MD5()
        var inOrder = 0  // documents hashed: the file's longest increasing first run
        var inOrderBytes = 0
        var saved: [(documents: Int, prefix: ChecksumPrefix)] = [(0, ChecksumPrefix(md5: md5.copy(), bytes: 0))]
        try source.forEachDocumentBytes(in: ns) { bytes, location in
            guard let key = Document.idKey(ofValidated: bytes) else {
                let file = (source as? DumpDirectory)?.dataPath(of: ns) ?? (source as? ArchiveReader)?.path
                throw CaptureError(.missingID, "\(file.map { "\($0): " } ?? "")a document of \(ns) at byte \(location.offset) has no _id")
            }
            if inOrder == keys.count, keys.last.map({ compareKeys($0.key, key) < 0 }) ?? true {
                md5.update(bytes)
                inOrder += 1
                inOrderBytes += bytes.count
                if inOrderBytes - saved[saved.count - 1].prefix.bytes >= 4 << 20 {
                    saved.append((inOrder, ChecksumPrefix(md5: md5.copy(), bytes: inOrderBytes)))
                }
            }
            keys.append((key, location))
            total += Int(location.length)
        }
        guard inOrder < keys.count else {
            return Collection(info: info, keys: keys, bytes: total, checksumPrefix: ChecksumPrefix(md5: md5, bytes: total))
        }
        // The hashed documents below the smallest key after them (they increase, so a
        // binary search finds how many), and the last saved state within those.
        let smallestRest = keys[inOrder...].min { compareKeys($0.key, $1.key) < 0 }!.key
        var low = 0, high = inOrder
        while low < high {
            let mid = (low + high) / 2
            if compareKeys(keys[mid].key, smallestRest) < 0 { low = mid + 1 } else { high = mid }
        }
        let prefix = saved.last { $0.documents <= low }!.prefix
        keys.sort { compareKeys($0.key, $1.key) < 0 }
        return Collection(info: info, keys: keys, bytes: total, checksumPrefix: prefix.bytes > 0 ? prefix : nil)
    }
}
