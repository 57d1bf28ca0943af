import Foundation
import Testing
import TestSupport
@testable import Repository

/// Builds the repository `Benchmarks/prune.sh` prunes: `ANCRE_BENCH_PRUNE_BLOBS` blobs (about)
/// in `ANCRE_BENCH_PRUNE_REPO`, as 10 snapshots of one collection whose trees share the
/// first 10% of their leaves and differ in the rest, plus an hour of one-second oplog
/// segments. Skipped unless both variables are set.
@Suite struct PruneBenchmarkTests {
    static let environment = ProcessInfo.processInfo.environment

    @Test(.enabled(if: environment["ANCRE_BENCH_PRUNE_REPO"] != nil && environment["ANCRE_BENCH_PRUNE_BLOBS"] != nil))
    func buildRepository() throws {
        let path = Self.environment["ANCRE_BENCH_PRUNE_REPO"]!
        let total = Int(Self.environment["ANCRE_BENCH_PRUNE_BLOBS"]!)!
        let passphrase = Self.environment["ANCRE_PASSWORD"] ?? "bench"
        let repository = try Repository.create(storage: try LocalBackend(path: path), passphrase: passphrase, kdf: .weakForTesting)
        let snapshots = 10, segments = 3600
        // Blobs ≈ shared + snapshots × unique + segments = leaves × (0.1 + 0.9 × 10) + segments.
        let leaves = (total - segments) * 10 / 91
        let shared = leaves / 10
        let perNode = 500
        final class Slots: @unchecked Sendable {  // @unchecked: each lane writes its own indexes
            var entries: [TreeEntry?]
            var failure: (any Error)?  // under `errors`
            init(_ n: Int) { entries = Array(repeating: nil, count: n) }
        }
        /// `count` new leaves of 120 random bytes (stored raw: zstd does not help), saved on 4 lanes.
        func makeLeaves(_ count: Int, seed: UInt64) throws -> [TreeEntry] {
            let slots = Slots(count)
            let errors = NSLock()
            DispatchQueue.concurrentPerform(iterations: 4) { lane in
                for n in stride(from: lane, to: count, by: 4) {
                    let key = seed + UInt64(n)
                    let bytes = TestRepository.bytes(count: 120, seed: key)
                    do {
                        let saved = try repository.saveBlob(type: .leaf, bytes: bytes)
                        slots.entries[n] = TreeEntry(firstKey: withUnsafeBytes(of: key.bigEndian) { Array($0) }, child: saved.id, documents: 1, bytes: 120)
                    } catch {
                        errors.withLock { slots.failure = error }
                    }
                }
            }
            if let failure = slots.failure { throw failure }
            return slots.entries.map { $0! }
        }
        let common = try makeLeaves(shared, seed: 1)
        let catalog = SnapshotCatalog(repository: repository)
        let shape = TreeShape(leafBits: 6, leafMinBytes: 1024, leafMaxBytes: 65536, nodeBits: 6, nodeMaxEntries: perNode)
        for k in 0..<snapshots {
            let entries = common + (try makeLeaves(leaves - shared, seed: UInt64(k + 1) << 32))
            var children: [TreeEntry] = []
            for start in stride(from: 0, to: entries.count, by: perNode) {
                let node = TreeNode(level: 0, entries: Array(entries[start..<min(start + perNode, entries.count)]))
                let saved = try repository.saveBlob(type: .node, bytes: node.encoded())
                children.append(TreeEntry(firstKey: node.entries[0].firstKey, child: saved.id, documents: UInt64(node.entries.count), bytes: 0))
            }
            let root = try repository.saveBlob(type: .node, bytes: TreeNode(level: 1, entries: children).encoded())
            let metadata = try repository.saveBlob(type: .metadata, bytes: Array("{\"snapshot\":\(k)}".utf8))
            let manifest = SnapshotManifest(collections: [ManifestCollection(
                database: "bench", collection: "docs", type: "collection", metadata: metadata.id, root: root.id,
                documents: UInt64(entries.count), bytes: UInt64(entries.count * 120), checksum: "\(k)", shape: shape)])
            let manifestBlob = try repository.saveBlob(type: .manifest, bytes: Array(try JSONEncoder().encode(manifest)))
            try repository.flush()
            let end = OplogTime(t: 1_795_000_000 + UInt32(k) * 360 + 5, i: 1)
            _ = try catalog.save(SnapshotRecord(
                time: end.date, hostname: "bench", source: "bench", kind: "backup", manifest: manifestBlob.id,
                start: OplogTime(t: end.t - 5, i: 1), end: end, collections: 1, documents: UInt64(entries.count),
                bytes: UInt64(entries.count * 120), addedBytes: 0))
        }
        var timeline: [TimelineSegment] = []
        var previous: OplogTime?
        for s in 0..<UInt32(segments) {
            let first = OplogTime(t: 1_795_000_000 + s, i: 1), last = OplogTime(t: 1_795_000_000 + s, i: 100)
            let bytes = TestRepository.bytes(count: 2000, seed: 1 << 40 + UInt64(s), alphabet: 32)
            let saved = try repository.saveBlob(type: .oplog, bytes: bytes)
            timeline.append(TimelineSegment(blob: saved.id, first: first, last: last, count: 100, bytes: bytes.count, previous: previous))
            previous = last
        }
        try repository.flush()
        try TimelineFile(source: "bench", segments: timeline).save(to: repository)
        print("built \(repository.stats().blobCount) blobs in \(repository.stats().packCount) packs at \(path)")
    }
}
