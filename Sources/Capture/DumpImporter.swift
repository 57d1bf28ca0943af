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
/// by the keys (about 40 bytes a document), not the data.
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

    /// Imports the collections `scan` hands over (a scan starts when it is made and needs
    /// no repository, so a caller makes it before deriving the repository's key).
    /// - Throws: as `importDump(_:label:tags:)`.
    public func importDump(_ scan: DumpScan, label: String, tags: [String] = []) throws -> ImportResult {
        let clock = ContinuousClock()
        let started = clock.now
        let source = scan.source
        let catalog = SnapshotCatalog(repository: repository)
        let previous = try catalog.latest(source: label).map { try catalog.manifest(of: $0.record) }
        let writer = SnapshotWriter(repository: repository, previous: previous, logger: logger)

        // Two collections at a time, as the scan hands them over: one reading thread cannot
        // keep the store workers busy (it reads, cuts leaves and computes their keyed ids),
        // two can. A collection's keys are freed once it is written, beside the other
        // writer: freeing them all at the end cost the import 10 ms on one core.
        try twoAtATime(next: scan.next) { collection in
            do {
                try Self.write(collection, from: source, into: writer)
            } catch {
                scan.cancel()  // the other writer then takes no further collection
                throw error
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

    private static func write(_ collection: DumpScan.Collection, from source: any DumpSource, into writer: SnapshotWriter) throws {
        let ns = collection.info.namespace
        try writer.writeCollectionWithKeyBytes(
            database: ns.database, collection: ns.collection, type: collection.info.kind.rawValue,
            metadata: collection.info.metadata?.document ?? Document(),
            averageDocumentBytes: collection.count == 0 ? 1024 : collection.bytes / collection.count
        ) { emit in
            try collection.keyBytes.withUnsafeBytes { keys in
                var index = 0, start = 0
                try source.forEachValidatedDocument(at: collection.locations) { bytes in
                    let end = collection.keyEnds[index]
                    try emit(UnsafeRawBufferPointer(rebasing: keys[start..<end]), bytes)
                    start = end
                    index += 1
                }
            }
        }
    }
}

/// The first pass of an import: every collection's `_id`s and document locations,
/// sorted in MongoDB's `_id` order, with the documents validated on the way.
///
/// Scanning runs on two threads of its own, largest collection first, and `next()` hands
/// collections over as they are done: the import writes the first ones while the rest
/// are scanned. Memory is about 40 bytes a document, held until the collection is handed
/// over and written.
///
/// The scan needs no key, so it can start while the repository's key is derived, on the
/// cores the derivation leaves (`eagerThreads`); the first `next()` brings it to two
/// threads. On two cores an import starts none early: sharing the cores with the
/// derivation's two threads (a lane of about 0.12 s each at a time), the scan made those
/// drift apart, and one core idled for 25-75 ms while the other finished its lane.
public final class DumpScan: @unchecked Sendable {
    // @unchecked: the mutable state is `Progress`, guarded by `changed`.
    public struct Collection: Sendable {
        public var info: DumpNamespace
        /// Every document's `_id` key (`BSONKey.bytes`) end to end, in `_id` order: one
        /// allocation for the collection instead of one a document.
        public var keyBytes: [UInt8] = []
        /// Where each key in `keyBytes` ends.
        public var keyEnds: [Int] = []
        /// Where each document is in the dump, in the same order.
        public var locations: [DocumentLocation] = []
        /// The documents' bytes in all.
        public var bytes = 0

        public var count: Int { locations.count }

        /// The keys as values, one allocation each (for tests and messages).
        public var keys: [BSONKey] {
            keyEnds.indices.map { BSONKey(trustedBytes: Array(keyBytes[keyStart($0)..<keyEnds[$0]])) }
        }

        func keyStart(_ i: Int) -> Int { i == 0 ? 0 : keyEnds[i - 1] }

        /// Puts keys and locations in `_id` order.
        mutating func sortByKey() {
            let order: [Int] = keyBytes.withUnsafeBytes { p in
                keyEnds.indices.sorted { a, b in
                    compareKeys(UnsafeRawBufferPointer(rebasing: p[keyStart(a)..<keyEnds[a]]),
                                UnsafeRawBufferPointer(rebasing: p[keyStart(b)..<keyEnds[b]])) < 0
                }
            }
            var sortedBytes: [UInt8] = []
            sortedBytes.reserveCapacity(keyBytes.count)
            var sortedEnds: [Int] = []
            sortedEnds.reserveCapacity(count)
            for i in order {
                sortedBytes.append(contentsOf: keyBytes[keyStart(i)..<keyEnds[i]])
                sortedEnds.append(sortedBytes.count)
            }
            keyBytes = sortedBytes
            keyEnds = sortedEnds
            locations = order.map { locations[$0] }
        }
    }

    public let source: any DumpSource
    private let progress: Progress

    /// What the scanning threads and `next()` share.
    private final class Progress: @unchecked Sendable {
        let changed = NSCondition()
        var unscanned: [DumpNamespace]  // largest last: taken with popLast
        var scanning = 0
        var scanned: [Collection] = []
        var failure: (any Error)?
        var cancelled = false
        /// Scanning threads still running.
        var threads = 0
        /// Set with `cancelled`; read by the scanning threads at every document.
        let stop = Atomic(false)

        init(_ namespaces: [DumpNamespace]) {
            unscanned = namespaces.sorted { ($0.byteCount ?? 0) < ($1.byteCount ?? 0) }
        }
    }

    /// Lists the namespaces of `source` and starts scanning them.
    /// - Parameter eagerThreads: threads that start scanning now (0-2); the rest start
    ///   at the first `next()`.
    /// - Throws: `DumpError` when the namespaces cannot be listed.
    public init(_ source: any DumpSource, eagerThreads: Int = 2) throws {
        self.source = source
        progress = Progress(try source.namespaces())
        progress.changed.lock()
        startThreads(upTo: eagerThreads)
        progress.changed.unlock()
    }

    /// Starts scanning threads until `count` run, or as many as collections are left.
    /// Call with `progress.changed` locked.
    private func startThreads(upTo count: Int) {
        let wanted = min(count, progress.threads + progress.unscanned.count)
        guard !progress.cancelled, progress.failure == nil, wanted > progress.threads else { return }
        for _ in progress.threads..<wanted {
            let thread = Thread { [progress, source] in Self.work(progress, source) }
            thread.name = "ancre-scan"
            thread.stackSize = 1 << 20
            thread.start()
        }
        progress.threads = wanted
    }

    /// Stops the scanning threads and waits for them: a command that failed may exit next.
    deinit { cancel() }

    /// The next scanned collection, the largest of those done, waiting for one if none is;
    /// nil once every collection was handed over, or after `cancel()`.
    /// - Throws: the scan's first error: `DumpError` for malformed input, `CaptureError`
    ///   `.missingID` for a document without `_id`.
    public func next() throws -> Collection? {
        progress.changed.lock()
        defer { progress.changed.unlock() }
        startThreads(upTo: 2)
        while true {
            if let failure = progress.failure { throw failure }
            if progress.cancelled { return nil }
            if let i = progress.scanned.indices.max(by: { progress.scanned[$0].bytes < progress.scanned[$1].bytes }) {
                return progress.scanned.remove(at: i)
            }
            if progress.unscanned.isEmpty && progress.scanning == 0 { return nil }
            progress.changed.wait()
        }
    }

    /// Every collection, once all are scanned (for callers that want them together).
    /// - Throws: as `next()`.
    public func all() throws -> [Collection] {
        var out: [Collection] = []
        while let collection = try next() { out.append(collection) }
        return out
    }

    /// Stops scanning, hands no further collection over, and waits for the scanning threads
    /// to end (after the import failed: the process may exit next, and exit handlers must
    /// not run under a thread still reading).
    public func cancel() {
        progress.changed.lock()
        progress.cancelled = true
        progress.stop.store(true, ordering: .relaxed)
        progress.changed.broadcast()
        while progress.threads > 0 { progress.changed.wait() }
        progress.changed.unlock()
    }

    private static func work(_ progress: Progress, _ source: any DumpSource) {
        while true {
            progress.changed.lock()
            guard !progress.cancelled, progress.failure == nil, let info = progress.unscanned.popLast() else {
                progress.threads -= 1
                progress.changed.broadcast()
                progress.changed.unlock()
                return
            }
            progress.scanning += 1
            progress.changed.unlock()
            let result = Result { try scan(info, in: source, stop: progress.stop) }
            progress.changed.lock()
            progress.scanning -= 1
            switch result {
            case .success(let collection): progress.scanned.append(collection)
            case .failure(let error): if progress.failure == nil && !progress.cancelled { progress.failure = error }
            }
            progress.changed.broadcast()
            progress.changed.unlock()
        }
    }

    private static func scan(_ info: DumpNamespace, in source: any DumpSource, stop: borrowing Atomic<Bool>) throws -> Collection {
        let ns = info.namespace
        var collection = Collection(info: info)
        guard info.kind != .view else { return collection }
        // mongodump writes a collection in natural order, often `_id` order: then no sort.
        var sorted = true
        try source.forEachDocumentBytes(in: ns) { bytes, location in
            if stop.load(ordering: .relaxed) { throw CancellationError() }
            let start = collection.keyBytes.count
            guard Document.appendIDKey(ofValidated: bytes, to: &collection.keyBytes) else {
                let file = (source as? DumpDirectory)?.dataPath(of: ns) ?? (source as? ArchiveReader)?.path
                throw CaptureError(.missingID, "\(file.map { "\($0): " } ?? "")a document of \(ns) at byte \(location.offset) has no _id")
            }
            if sorted, let previous = collection.keyEnds.indices.last.map(collection.keyStart) {
                sorted = collection.keyBytes.withUnsafeBytes { p in
                    compareKeys(UnsafeRawBufferPointer(rebasing: p[previous..<start]), UnsafeRawBufferPointer(rebasing: p[start...])) < 0
                }
            }
            collection.keyEnds.append(collection.keyBytes.count)
            collection.locations.append(location)
            collection.bytes += Int(location.length)
        }
        if !sorted { collection.sortByKey() }
        return collection
    }
}
