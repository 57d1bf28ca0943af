import Foundation

/// Tunables of a prune run.
public struct PruneOptions: Sendable {
    /// Repack a pack when more than this share of its bytes is unused (restic's default, 5%).
    public var maxUnusedFraction: Double
    /// How long to wait for oplog tailers (append locks) to reach a point where every blob
    /// they flushed is named by a timeline file (`Repository.awaitAppendersSettled`).
    public var appenderTimeout: Duration
    public var appenderPoll: Duration
    /// Entries per index file written by prune.
    public var indexFileEntries: Int
    /// Called once the exclusive lock is held, before waiting for appenders: a caller that
    /// runs the tailer in-process asks it to refresh its lock now rather than at its next
    /// `lockRefresh` (15 s), which every other job would otherwise wait out.
    public var willAwaitAppenders: (@Sendable () -> Void)?

    public init(maxUnusedFraction: Double = 0.05, appenderTimeout: Duration = .seconds(120),
                appenderPoll: Duration = .milliseconds(250), indexFileEntries: Int = 200_000) {
        precondition(maxUnusedFraction >= 0 && maxUnusedFraction <= 1 && indexFileEntries > 0)
        self.maxUnusedFraction = maxUnusedFraction
        self.appenderTimeout = appenderTimeout
        self.appenderPoll = appenderPoll
        self.indexFileEntries = indexFileEntries
    }
}

/// What a prune will do: which packs go whole, which are repacked, and the index it
/// writes. Made by `Pruner.plan`, executed by `Pruner.execute`; `--dry-run` prints `summary`.
public struct PrunePlan: Sendable {
    public struct Summary: Sendable, Encodable, Equatable {
        public var indexFiles = 0
        public var packs = 0
        public var blobs = 0
        public var liveBlobs = 0
        /// Distinct tree nodes read while marking (each once, however many snapshots share it).
        public var nodesVisited = 0
        public var snapshots = 0
        public var segments = 0
        /// Packs with no live blob.
        public var packsToDelete = 0
        /// Packs whose unused share exceeds the threshold: live blobs are copied, then the pack goes.
        public var packsToRepack = 0
        /// Packs no index file lists (an interrupted write).
        public var unreferencedPacks = 0
        public var packsKept = 0
        /// Packs left alone because an index file written after prune began names them (a tailer's).
        public var packsProtected = 0
        public var blobsToRepack = 0
        public var bytesToRepack = 0
        /// Stored bytes the deleted packs hold.
        public var bytesDeleted = 0
        /// Unused bytes left in kept packs (below the repack threshold).
        public var unusedBytesKept = 0
        public var timelineFilesToDelete = 0
    }

    public var summary: Summary
    /// Index files listed at the start; all are replaced.
    let indexFiles: [String]
    /// Entries the new index lists for packs that stay.
    let keptEntries: [(pack: PackInfo, entries: [PackEntry])]
    /// Live blobs to copy out of packs being repacked.
    let repack: [(pack: PackInfo, entries: [PackEntry])]
    let deletePacks: [String]
    /// Superseded timeline files (their superseder is live).
    let timelineFiles: [String]

    /// True when executing would change nothing.
    public var isEmpty: Bool { deletePacks.isEmpty && repack.isEmpty && timelineFiles.isEmpty }
}

/// What `Pruner.execute` did.
public struct PruneResult: Sendable, Encodable, Equatable {
    public var packsWritten = 0
    public var packsDeleted = 0
    public var indexFilesWritten = 0
    public var indexFilesDeleted = 0
    public var timelineFilesDeleted = 0
    /// Stored bytes removed minus stored bytes written by repacking.
    public var bytesFreed = 0
}

/// Removes what no snapshot and no live timeline segment needs.
///
/// Mark: every kept snapshot's manifest, metadata, tree nodes, leaves and the bases of delta
/// leaves, and every live segment's blob. Tree nodes are content-addressed, so a node
/// already marked means its whole subtree is: snapshots that share most of their tree cost
/// only their changed nodes, not a full walk each.
/// Sweep, in a crash-safe order (FORMAT.md "Prune"): copy the live blobs of mostly-unused
/// packs into new packs and flush them (pack, then index file); write index files for the
/// packs that stay; delete superseded timeline files; delete the old index files; delete
/// the unused packs. A crash at any point loses nothing: the worst case is a pack no
/// index lists, which `check` reports and the next prune removes.
///
/// Concurrency: the caller holds an exclusive lock, which excludes backup, import, restore,
/// check and compaction (shared locks) but not oplog tailers (append locks). Prune lists
/// packs and index files first and never touches a pack or index file it did not see then;
/// before reading the timeline it waits for every tailer to refresh its lock, which a tailer
/// does only once every blob it flushed is named by a timeline file.
public struct Pruner: Sendable {
    public let repository: Repository
    public var options: PruneOptions

    public init(repository: Repository, options: PruneOptions = PruneOptions()) {
        self.repository = repository
        self.options = options
    }

    /// Lists, marks and classifies (reads only).
    /// - Parameter lock: the exclusive lock the caller holds.
    /// - Throws: `RepositoryError` `.invalidArgument` without an exclusive lock; `.locked` when
    ///   a tailer does not settle in time; `.blobNotFound`/`.indexCorrupt` and friends when a
    ///   snapshot cannot be walked (prune refuses to delete anything from a damaged repository).
    public func plan(lock: RepositoryLock) throws -> PrunePlan {
        guard lock.kind == .exclusive else {
            throw RepositoryError(.invalidArgument, "prune needs an exclusive lock, not a \(lock.kind) one")
        }
        let storage = repository.storage
        // Packs first, then index files: a pack uploaded after its listing is never a candidate.
        // No one else rewrites or deletes index files while the exclusive lock is held
        // (appenders only add new ones), so the listed files are read after marking.
        var packSizes: [String: Int] = [:]
        for e in try storage.list(prefix: "data/") { packSizes[String(e.key.split(separator: "/").last!)] = e.size }
        let indexKeys = try storage.list(prefix: "index/").map(\.key).sorted()

        options.willAwaitAppenders?()
        try repository.awaitAppendersSettled(ignoring: lock.id, timeout: options.appenderTimeout, poll: options.appenderPoll)
        // Index files written since the listing belong to tailers: their packs stay as they are.
        var protected = Set<String>()
        let seen = Set(indexKeys)
        for e in try storage.list(prefix: "index/") where !seen.contains(e.key) {
            protected.formUnion(try Repository.readIndexFile(storage: storage, key: e.key, master: repository.master).packs.map(\.name))
        }

        try repository.reloadIndex()
        let view = try TimelineView.load(repository)
        var marker = LiveBlobs(repository: repository)
        let catalog = SnapshotCatalog(repository: repository)
        for (id, record) in view.snapshots {
            do {
                try marker.mark(record, catalog: catalog)
            } catch {
                throw RepositoryError(
                    (error as? RepositoryError)?.code ?? .invalidFormat,
                    "snapshot \(id.prefix(8)) cannot be walked, so prune cannot tell what it needs and removes nothing; run `ancre check`",
                    underlying: error)
            }
        }
        for item in view.segments { marker.live.insert(item.segment.blob) }
        let live = marker.live

        // Per pack, only its live entries are kept in memory (dead ones are counted).
        struct PackUse {
            var info: PackInfo
            var entries: [PackEntry] = []
            var usedBytes = 0
            /// Dead bytes: the largest count one index file gives (files listing the same
            /// pack twice, after an interrupted prune, may list subsets), so never overstated.
            var unusedBytes = 0
            var files = 0
        }
        var packs: [String: PackUse] = [:]
        var blobs = 0
        for key in indexKeys {
            let (filePacks, entries) = try Repository.readIndexFile(storage: storage, key: key, master: repository.master)
            var unused = Array(repeating: 0, count: filePacks.count)
            let keepAll = filePacks.map { packSizes[$0.name] == nil || protected.contains($0.name) }
            for p in filePacks {
                packs[p.name, default: PackUse(info: p)].files += 1
            }
            for (n, e) in entries {
                blobs += 1
                if keepAll[Int(n)] || live.contains(e.id) {
                    packs[filePacks[Int(n)].name]!.entries.append(e)
                } else {
                    unused[Int(n)] += Int(e.length)
                }
            }
            for (n, p) in filePacks.enumerated() { packs[p.name]!.unusedBytes = max(packs[p.name]!.unusedBytes, unused[n]) }
        }

        var summary = PrunePlan.Summary()
        summary.indexFiles = indexKeys.count
        summary.packs = packSizes.count
        summary.blobs = blobs
        summary.nodesVisited = marker.nodesVisited
        summary.snapshots = view.snapshots.count
        summary.segments = view.segments.count
        var kept: [(pack: PackInfo, entries: [PackEntry])] = []
        var repackCandidates: [(pack: PackInfo, entries: [PackEntry])] = []
        var delete: [String] = []
        let listed = Set(packs.keys)
        for name in listed.sorted() {
            var pack = packs.removeValue(forKey: name)!
            if pack.files > 1 {
                var ids = Set<BlobID>()
                pack.entries = pack.entries.filter { ids.insert($0.id).inserted }
            }
            guard let size = packSizes[name], !protected.contains(name) else {
                // A tailer's pack, or one missing from storage (check reports it): keep every entry.
                summary.packsProtected += 1
                kept.append((pack.info, pack.entries))
                continue
            }
            pack.usedBytes = pack.entries.reduce(0) { $0 + Int($1.length) }
            if pack.entries.isEmpty {
                summary.packsToDelete += 1
                summary.bytesDeleted += size
                delete.append(name)
            } else if Double(pack.unusedBytes) > options.maxUnusedFraction * Double(size) {
                summary.packsToRepack += 1
                summary.bytesDeleted += size
                repackCandidates.append((pack.info, pack.entries))
                delete.append(name)
            } else {
                summary.packsKept += 1
                summary.unusedBytesKept += pack.unusedBytes
                kept.append((pack.info, pack.entries))
            }
        }
        for name in packSizes.keys.sorted() where !listed.contains(name) && !protected.contains(name) {
            summary.unreferencedPacks += 1
            summary.bytesDeleted += packSizes[name]!
            delete.append(name)
        }
        // A live blob stored twice needs no copy when a kept pack holds it, and one copy suffices.
        var wanted = Set(repackCandidates.flatMap { $0.entries.map(\.id) })
        for (_, entries) in kept { for e in entries where wanted.contains(e.id) { wanted.remove(e.id) } }
        var repack: [(pack: PackInfo, entries: [PackEntry])] = []
        for (pack, entries) in repackCandidates {
            let copies = entries.filter { wanted.remove($0.id) != nil }
            summary.blobsToRepack += copies.count
            summary.bytesToRepack += copies.reduce(0) { $0 + Int($1.length) }
            if !copies.isEmpty { repack.append((pack, copies)) }
        }
        summary.liveBlobs = live.count
        summary.timelineFilesToDelete = view.supersededFiles.count
        return PrunePlan(summary: summary, indexFiles: indexKeys, keptEntries: kept, repack: repack, deletePacks: delete,
                         timelineFiles: view.supersededFiles)
    }

    /// Executes a plan made under the same lock (see the type's notes for the order).
    /// - Throws: `RepositoryError` from storage; what was done before the failure is safe,
    ///   and a new prune finishes the job.
    @discardableResult
    public func execute(_ plan: PrunePlan) throws -> PruneResult {
        var result = PruneResult()
        guard !plan.isEmpty else { return result }
        let storage = repository.storage

        // 1. Copy live blobs out of mostly-unused packs (sealed again under a new pack key,
        //    without decompressing: deltas keep their base), then pack + index file.
        var writer: PackWriter?
        var written = 0
        for (pack, entries) in plan.repack {
            // One read per pack, not per blob (a round trip each on S3).
            let bytes: [UInt8]
            do {
                bytes = try storage.get(PackFormat.storageKey(pack.name))
            } catch RepositoryError.Code.objectNotFound {
                throw RepositoryError(.packMissing, "pack \(pack.name) to repack is missing from storage; run `ancre check`")
            }
            let aead = AESGCM(key: PackFormat.packKey(repository.master, keyID: pack.keyID))
            for e in entries {
                guard Int(e.offset) + Int(e.length) <= bytes.count else {
                    throw RepositoryError(.packTruncated, "pack \(pack.name) is truncated: blob \(e.id) at \(e.offset)+\(e.length) lies past its end (\(bytes.count) bytes); run `ancre check`")
                }
                let payload = try PackReader.openBlob(Array(bytes[Int(e.offset)..<Int(e.offset + e.length)]), entry: e, aead: aead, pack: pack.name)
                let w = writer ?? PackWriter(master: repository.master, capacity: repository.options.packTargetSize + (1 << 20))
                writer = w
                _ = payload.withUnsafeBytes {
                    w.append(id: e.id, type: e.type, encoding: e.encoding, payload: $0, rawLength: Int(e.rawLength), base: e.base)
                }
                if w.size >= repository.options.packTargetSize {
                    try repository.upload(w)
                    written += w.size
                    result.packsWritten += 1
                    writer = nil
                }
            }
        }
        if let w = writer, w.count > 0 {
            try repository.upload(w)
            written += w.size
            result.packsWritten += 1
        }
        if result.packsWritten > 0 {
            try repository.flush()
            result.indexFilesWritten += 1
        }

        // 2. Index files for the packs that stay (live blobs only).
        var batch: [(pack: PackInfo, entries: [PackEntry])] = []
        var batchCount = 0
        func writeBatch() throws {
            guard !batch.isEmpty else { return }
            var entries: [(pack: UInt32, entry: PackEntry)] = []
            entries.reserveCapacity(batchCount)
            for (n, item) in batch.enumerated() { for e in item.entries { entries.append((UInt32(n), e)) } }
            let sealed = SealedFile.seal(IndexFile.encode(packs: batch.map(\.pack), entries: entries), kind: IndexFile.kind, key: repository.master)
            try storage.put("index/\(encodeHex(Crypto.sha256(sealed)))", sealed)
            result.indexFilesWritten += 1
            batch = []
            batchCount = 0
        }
        for item in plan.keptEntries where !item.entries.isEmpty {
            batch.append(item)
            batchCount += item.entries.count
            if batchCount >= options.indexFileEntries { try writeBatch() }
        }
        try writeBatch()

        // 3. Superseded timeline files, 4. the old index files, 5. the unused packs.
        for id in plan.timelineFiles { try repository.deleteFile(kind: .timeline, id: id) }
        result.timelineFilesDeleted = plan.timelineFiles.count
        for key in plan.indexFiles { try storage.delete(key) }
        result.indexFilesDeleted = plan.indexFiles.count
        for name in plan.deletePacks { try storage.delete(PackFormat.storageKey(name)) }
        result.packsDeleted = plan.deletePacks.count
        result.bytesFreed = plan.summary.bytesDeleted - written
        try repository.reloadIndex()
        repository.logger.info("pruned", metadata: [
            "packs.deleted": "\(result.packsDeleted)", "packs.written": "\(result.packsWritten)", "bytes.freed": "\(result.bytesFreed)",
        ])
        return result
    }
}

/// The set of blobs kept snapshots need, marked once per distinct node.
struct LiveBlobs {
    let repository: Repository
    var live = Set<BlobID>()
    var nodesVisited = 0

    init(repository: Repository) {
        self.repository = repository
    }

    mutating func mark(_ record: SnapshotRecord, catalog: SnapshotCatalog) throws {
        // Same manifest id, same content: already marked.
        guard live.insert(record.manifest).inserted else { return }
        let manifest = try catalog.manifest(of: record)
        for c in manifest.collections {
            live.insert(c.metadata)
            if let root = c.root { try markTree(root) }
        }
        for chunk in manifest.oplog { live.insert(chunk.blob) }
    }

    private mutating func markTree(_ id: BlobID) throws {
        // Content addressing: a node already marked had its whole subtree marked.
        guard live.insert(id).inserted else { return }
        nodesVisited += 1
        let node = try TreeNode(decoding: try repository.loadBlob(id), id: id)
        for e in node.entries {
            if node.level == 0 {
                // Bases are whole blobs, so a leaf met before (as a base) has no base to mark.
                if live.insert(e.child).inserted, let base = try repository.deltaBase(of: e.child) { live.insert(base) }
            } else {
                try markTree(e.child)
            }
        }
    }
}
