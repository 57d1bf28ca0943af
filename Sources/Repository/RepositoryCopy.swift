import Dispatch
import Foundation
import Synchronization

/// What a copy did: objects and bytes written, by kind, and how long it took.
public struct CopyReport: Sendable, Encodable, Equatable {
    public var keys = 0
    public var config = 0
    public var packs = 0
    public var indexFiles = 0
    public var snapshots = 0
    public var timelineFiles = 0
    /// Objects written to the destination (the sum of the above).
    public var objectsCopied: Int { keys + config + packs + indexFiles + snapshots + timelineFiles }
    public var bytesCopied = 0
    /// Objects the destination already had.
    public var objectsSkipped = 0
    public var seconds = 0.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case keys, config, packs, indexFiles, snapshots, timelineFiles, objectsCopied, bytesCopied, objectsSkipped, seconds
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(keys, forKey: .keys)
        try c.encode(config, forKey: .config)
        try c.encode(packs, forKey: .packs)
        try c.encode(indexFiles, forKey: .indexFiles)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(timelineFiles, forKey: .timelineFiles)
        try c.encode(objectsCopied, forKey: .objectsCopied)
        try c.encode(bytesCopied, forKey: .bytesCopied)
        try c.encode(objectsSkipped, forKey: .objectsSkipped)
        try c.encode(seconds, forKey: .seconds)
    }
}

/// Copies a repository to another storage, writing only what the destination lacks
/// (`ancre copy`, nightly replication).
///
/// The destination becomes the same repository: same id and master key (key slots and
/// `config` are copied on the first run), so it opens with the same passphrases and is
/// restorable on its own. Order follows FORMAT.md's write order: key slots, `config`,
/// packs, index files, snapshots, timeline files; metadata is listed *before* packs are
/// (timeline files first, index files last), so every file copied names objects already
/// copied, and an interrupted copy leaves at most unreferenced packs. A restart copies
/// only what is still missing. Every object's name is the SHA-256 of its bytes (packs,
/// index, snapshot and timeline files), checked before upload (one pass computes it and
/// the MD5 the upload sends); after upload the ETag S3 answers must be the MD5 of the
/// bytes sent (of each part's, for a multipart upload), or the object is read back and
/// its hash checked (directories, servers whose ETag is not an MD5).
///
/// Locks: shared on the source (backups and tails may continue; prune may not run),
/// exclusive on the destination (taken once its `config` exists).
///
/// Threading: `run` blocks; packs are copied by `parallelism` threads of Dispatch's pool.
public struct RepositoryCopy: Sendable {
    public let source: Repository
    public let destination: any Storage
    /// Check each object at the destination after uploading it: by the ETag S3 answers
    /// (the MD5 of the bytes it received), else by reading it back and checking its hash
    /// (doubles reads, not writes).
    public var verifyAfterUpload = true
    /// Packs copied at a time.
    public var parallelism = 4
    /// How long to wait for a conflicting lock on either repository before failing.
    public var lockWait: Duration = .zero

    public init(source: Repository, destination: any Storage) {
        self.source = source
        self.destination = destination
    }

    /// Copies what the destination lacks.
    /// - Throws: `RepositoryError` `.invalidArgument` when the destination holds another
    ///   repository; `.packCorrupt` when a source object does not hash to its name (nothing
    ///   damaged is copied) or a copied one reads back different; `.locked`; storage errors.
    public func run() throws -> CopyReport {
        let start = ContinuousClock.now
        var report = CopyReport()
        let sourceLock = try source.lock(kind: .shared, retryFor: lockWait)
        defer { try? sourceLock.release() }

        try copyKeysAndConfig(&report)
        let target = source.sameRepository(on: destination)
        let destinationLock = try target.lock(kind: .exclusive, retryFor: lockWait)
        defer { try? destinationLock.release() }

        // List in the reverse of the write order (timeline, snapshots, index, then packs): the
        // source writes packs, then the index naming them, then snapshots and timeline files,
        // so whatever a listed file names was written before it and the later listings see it.
        let timeline = try source.storage.list(prefix: "timeline/")
        let snapshots = try source.storage.list(prefix: "snapshots/")
        let index = try source.storage.list(prefix: "index/")
        try copyMissing(prefix: "data/", listed: try source.storage.list(prefix: "data/"), report: &report, count: \.packs)
        try copyMissing(prefix: "index/", listed: index, report: &report, count: \.indexFiles)
        try copyMissing(prefix: "snapshots/", listed: snapshots, report: &report, count: \.snapshots)
        try copyMissing(prefix: "timeline/", listed: timeline, report: &report, count: \.timelineFiles)
        report.seconds = S3Backend.seconds(ContinuousClock.now - start)
        source.logger.info(
            "copied repository",
            metadata: ["copy.objects": "\(report.objectsCopied)", "copy.bytes": "\(report.bytesCopied)", "copy.skipped": "\(report.objectsSkipped)"])
        return report
    }

    /// Key slots missing at the destination (all of them the first time), then `config`.
    private func copyKeysAndConfig(_ report: inout CopyReport) throws {
        let hasConfig = try destination.stat("config") != nil
        if hasConfig {
            let config = try Repository.readConfig(destination)
            guard config.id == source.config.id else {
                throw RepositoryError(
                    .invalidArgument,
                    "the destination holds another repository (id \(config.id.prefix(8)), source \(source.config.id.prefix(8))); copy into an empty location or a copy of this repository")
            }
        }
        let present = Set(try destination.list(prefix: "keys/").map(\.key))
        for entry in try source.storage.list(prefix: "keys/") {
            if present.contains(entry.key) {
                report.objectsSkipped += 1
                continue
            }
            let bytes = try source.storage.get(entry.key)
            try destination.put(entry.key, bytes)
            report.keys += 1
            report.bytesCopied += bytes.count
        }
        // Config last: until it exists the destination is not a repository, so a copy
        // interrupted before this point leaves nothing that looks usable.
        if hasConfig {
            report.objectsSkipped += 1
            return
        }
        let config = try source.storage.get("config")
        if try destination.putIfAbsent("config", config) {
            report.config += 1
            report.bytesCopied += config.count
        } else {
            report.objectsSkipped += 1
        }
    }

    /// Copies the objects of `listed` whose keys the destination lacks, checking names against hashes.
    private func copyMissing(
        prefix: String, listed: [StorageEntry], report: inout CopyReport, count: WritableKeyPath<CopyReport, Int>
    ) throws {
        let present = Dictionary(try destination.list(prefix: prefix).map { ($0.key, $0.size) }, uniquingKeysWith: { a, _ in a })
        // A destination object of another size is damaged or partial: write it again.
        let missing = listed.filter { present[$0.key] != $0.size }.sorted { $0.key < $1.key }
        report.objectsSkipped += listed.count - missing.count
        guard !missing.isEmpty else { return }

        let progress = Mutex((copied: 0, bytes: 0, failure: RepositoryError?.none))
        let next = Atomic(0)
        let workers = prefix == "data/" ? max(1, min(parallelism, missing.count)) : 1
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < missing.count, progress.withLock({ $0.failure == nil }) else { return }
                do {
                    let size = try copyObject(missing[i].key)
                    progress.withLock {
                        $0.copied += 1
                        $0.bytes += size
                    }
                } catch {
                    let failure = error as? RepositoryError ?? RepositoryError(.ioFailure, "copying '\(missing[i].key)' failed: \(error)")
                    progress.withLock { if $0.failure == nil { $0.failure = failure } }
                }
            }
        }
        let outcome = progress.withLock { $0 }
        report[keyPath: count] += outcome.copied
        report.bytesCopied += outcome.bytes
        if let failure = outcome.failure { throw failure }
    }

    /// Copies one object whose name is the SHA-256 of its bytes; returns its size.
    private func copyObject(_ key: String) throws -> Int {
        let name = String(key[key.index(after: key.lastIndex(of: "/")!)...])
        let bytes = try source.storage.get(key)
        // One pass gives the name check its SHA-256 and the upload its Content-MD5; S3 signs
        // that same SHA-256 as the payload hash, so a server that checks it (AWS) checks the
        // name too. Only the ETag answered confirms the upload (moto checks neither digest).
        let digests = ObjectDigests(of: bytes)
        guard encodeHex(digests.sha256) == name else {
            throw RepositoryError(
                .packCorrupt,
                "source object '\(key)' does not hash to its name: it is damaged and was not copied; run `ancre check --read-data` on the source")
        }
        // S3 confirms by the ETag it answers (the MD5 of what it received); otherwise read
        // the object back (reading every pack back halved the copy's throughput to S3).
        let confirmed = try destination.putConfirming(key, bytes, digests: digests)
        if verifyAfterUpload && !confirmed {
            let stored = try destination.get(key)
            guard encodeHex(Crypto.sha256(stored)) == name else {
                try? destination.delete(key)
                throw RepositoryError(.packCorrupt, "'\(key)' read back from the destination differs from what was sent; it was removed, run the copy again")
            }
        }
        return bytes.count
    }
}
