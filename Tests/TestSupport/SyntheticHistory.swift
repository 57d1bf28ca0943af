import Foundation
import Repository

/// A repository history built with the library, without a server: snapshots whose trees
/// share most leaves (changed leaves stored as deltas against the first snapshot's), and a
/// timeline of contiguous oplog segments covering them, one timeline file per segment as
/// the tailer writes them. For retention and prune tests.
public struct SyntheticHistory {
    public struct Snapshot {
        public var id: String
        public var record: SnapshotRecord
    }

    public let repository: Repository
    public var snapshots: [Snapshot] = []
    public var segments: [TimelineSegment] = []
    /// Oplog time of the first segment's first entry.
    public let origin: UInt32
    public let source: String
    private var leafVersions: [Int]
    private let leavesPerCollection: Int
    private var seed: UInt64 = 1

    /// - Parameters:
    ///   - origin: oplog seconds of the first entry.
    ///   - leaves: leaves per snapshot (split into two level-0 nodes under a level-1 root).
    public init(repository: Repository, origin: UInt32 = 1_795_000_000, leaves: Int = 12, source: String = "replica set rs0 (db1:27017)") {
        self.repository = repository
        self.origin = origin
        self.leavesPerCollection = leaves
        self.leafVersions = Array(repeating: 0, count: leaves)
        self.source = source
    }

    private static let shape = TreeShape(leafBits: 6, leafMinBytes: 1024, leafMaxBytes: 65536, nodeBits: 6, nodeMaxEntries: 512)

    private func leafBytes(_ leaf: Int, version: Int) -> [UInt8] {
        // Versions of a leaf share most bytes, so deltas against version 0 are small.
        var bytes = TestRepository.bytes(count: 3000, seed: UInt64(leaf + 1) * 7919 + seed, alphabet: 16)
        if version > 0 {
            let change = TestRepository.bytes(count: 40, seed: UInt64(leaf * 1000 + version), alphabet: 256)
            bytes.replaceSubrange(100..<140, with: change)
        }
        return bytes
    }

    /// Adds oplog segments of `seconds` each up to oplog second `until`, continuing the chain
    /// (or starting a new one after a gap when `afterGap`).
    public mutating func appendSegments(until: UInt32, seconds: UInt32 = 60, afterGap: Bool = false) throws {
        var next = segments.last.map { $0.last.t + 1 } ?? origin
        var previous = afterGap ? nil : segments.last?.last
        if afterGap { next += 600 }
        while next <= until {
            let first = OplogTime(t: next, i: 1), last = OplogTime(t: next + seconds - 1, i: 1)
            let bytes = Array("segment \(first) .. \(last) ".utf8) + TestRepository.bytes(count: 500, seed: UInt64(next), alphabet: 64)
            let saved = try repository.saveBlob(type: .oplog, bytes: bytes)
            try repository.flush()
            let segment = TimelineSegment(blob: saved.id, first: first, last: last, count: Int(seconds), bytes: bytes.count,
                                          term: 1, previous: previous)
            try TimelineFile(created: last.date, source: source, segments: [segment]).save(to: repository)
            segments.append(segment)
            previous = last
            next += seconds
        }
    }

    /// Takes a snapshot starting at oplog second `start`, consistent 5 s later, after changing
    /// `changes` leaves (odd leaves as deltas against their first version).
    @discardableResult
    public mutating func snapshot(at start: UInt32, changes: Int = 2, source: String? = nil) throws -> Snapshot {
        let count = snapshots.count
        for k in 0..<changes where count > 0 {
            leafVersions[(count * changes + k) % leavesPerCollection] += 1
        }
        var entries: [TreeEntry] = []
        for leaf in 0..<leavesPerCollection {
            let version = leafVersions[leaf]
            let bytes = leafBytes(leaf, version: version)
            var base: (id: BlobID, bytes: [UInt8])?
            if version > 0 && leaf % 2 == 1 {
                let baseBytes = leafBytes(leaf, version: 0)
                base = (try repository.saveBlob(type: .leaf, bytes: baseBytes).id, baseBytes)
            }
            let saved = try repository.saveBlob(type: .leaf, bytes: bytes, deltaBase: base)
            entries.append(TreeEntry(firstKey: [0x10, UInt8(leaf)], child: saved.id, documents: 10, bytes: UInt64(bytes.count)))
        }
        let half = leavesPerCollection / 2
        var children: [TreeEntry] = []
        for part in [entries[..<half], entries[half...]] {
            let node = TreeNode(level: 0, entries: Array(part))
            let saved = try repository.saveBlob(type: .node, bytes: node.encoded())
            children.append(TreeEntry(firstKey: part.first!.firstKey, child: saved.id, documents: 10 * UInt64(part.count), bytes: 0))
        }
        let root = try repository.saveBlob(type: .node, bytes: TreeNode(level: 1, entries: children).encoded())
        let metadata = try repository.saveBlob(type: .metadata, bytes: Array("{\"options\":{}}".utf8))
        let manifest = SnapshotManifest(collections: [ManifestCollection(
            database: "clinic", collection: "visits", type: "collection", metadata: metadata.id, root: root.id,
            documents: UInt64(10 * leavesPerCollection), bytes: 0, checksum: "\(start)", shape: Self.shape)])
        let manifestBytes = Array(try JSONEncoder().encode(manifest))
        // The checksum field makes manifests distinct even when the tree did not change.
        let manifestBlob = try repository.saveBlob(type: .manifest, bytes: manifestBytes)
        try repository.flush()
        let end = OplogTime(t: start + 5, i: 1)
        let record = SnapshotRecord(
            time: end.date, hostname: "test", source: source ?? self.source, kind: "backup", manifest: manifestBlob.id,
            start: OplogTime(t: start, i: 1), end: end, collections: 1, documents: UInt64(10 * leavesPerCollection),
            bytes: 0, addedBytes: 0)
        let id = try SnapshotCatalog(repository: repository).save(record)
        let snapshot = Snapshot(id: id, record: record)
        snapshots.append(snapshot)
        return snapshot
    }
}
