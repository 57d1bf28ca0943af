/// Where a `TreeWriter` puts the leaves and nodes it cuts.
///
/// Implementations may store asynchronously (on worker threads) as long as
/// `finishStoring` waits for everything stored so far.
public protocol TreeSink: AnyObject {
    /// The blob id `bytes` will have (keyed, so computed by the repository).
    func blobID(for bytes: [UInt8]) -> BlobID
    /// Stores a blob under `id` if the repository lacks it. `predecessor` is the leaf
    /// of the previous tree that covered the same keys, a candidate delta base.
    func store(_ type: BlobType, id: BlobID, bytes: [UInt8], predecessor: BlobID?) throws
}

/// The first keys and ids of a previous tree's leaves, for finding delta bases.
public struct LeafDirectory: Sendable {
    public var entries: [TreeEntry]
    let compare: @Sendable ([UInt8], [UInt8]) -> Int

    public init(entries: [TreeEntry], compare: @escaping @Sendable ([UInt8], [UInt8]) -> Int) {
        self.entries = entries
        self.compare = compare
    }

    /// The leaf whose key range holds `key`: the last leaf whose first key is <= `key`.
    public func leaf(covering key: [UInt8]) -> BlobID? {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if compare(entries[mid].firstKey, key) <= 0 { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? entries.first?.child : entries[low - 1].child
    }
}

/// What a finished tree holds.
public struct TreeSummary: Sendable, Equatable {
    /// The root node; nil for an empty collection.
    public var root: BlobID?
    public var documents: UInt64
    public var bytes: UInt64
    public var leaves: Int
    public var nodes: Int
}

/// Cuts a stream of records, sorted by key, into content-addressed leaves and nodes
/// (ARCHITECTURE.md §3).
///
/// Not thread-safe: one writer per collection. Records are length-prefixed (a BSON
/// document's first four bytes are its length), so a leaf is their concatenation.
public final class TreeWriter {
    private let shape: TreeShape
    private let boundary: LeafBoundary
    private let sink: TreeSink
    private let previous: LeafDirectory?

    private var leaf: [UInt8] = []
    private var leafFirstKey: [UInt8] = []
    private var leafDocuments: UInt64 = 0
    /// Pending entries per level; level 0 holds entries for leaves.
    private var levels: [[TreeEntry]] = [[]]
    /// Nodes emitted so far per level.
    private var emitted: [Int] = [0]
    /// Hash of each pending entry's first key, to cut nodes without hashing twice.
    private var levelHashes: [[UInt64]] = [[]]
    private var leafFirstHash: UInt64 = 0
    private var summary = TreeSummary(root: nil, documents: 0, bytes: 0, leaves: 0, nodes: 0)

    public init(shape: TreeShape, boundary: LeafBoundary, sink: TreeSink, previous: LeafDirectory? = nil) {
        self.shape = shape
        self.boundary = boundary
        self.sink = sink
        self.previous = previous
        leaf.reserveCapacity(shape.leafMaxBytes + 64 << 10)
    }

    /// Adds the next record; keys must strictly increase (the caller sorts and checks).
    public func append(key: UnsafeRawBufferPointer, record: UnsafeRawBufferPointer) throws {
        let hash = boundary.hash(key)
        if leafDocuments == 0 {
            leafFirstKey = Array(key)
            leafFirstHash = hash
        }
        leaf.append(contentsOf: record)
        leafDocuments += 1
        summary.documents += 1
        summary.bytes += UInt64(record.count)
        if (leaf.count >= shape.leafMinBytes && shape.leafEnds(hash: hash)) || leaf.count >= shape.leafMaxBytes {
            try cutLeaf()
        }
    }

    public func append(key: [UInt8], record: UnsafeRawBufferPointer) throws {
        try key.withUnsafeBytes { try append(key: $0, record: record) }
    }

    public func append(key: [UInt8], record: [UInt8]) throws {
        try record.withUnsafeBytes { try append(key: key, record: $0) }
    }

    private func cutLeaf() throws {
        guard leafDocuments > 0 else { return }
        let id = sink.blobID(for: leaf)
        try sink.store(.leaf, id: id, bytes: leaf, predecessor: previous?.leaf(covering: leafFirstKey))
        summary.leaves += 1
        try add(TreeEntry(firstKey: leafFirstKey, child: id, documents: leafDocuments, bytes: UInt64(leaf.count)),
                hash: leafFirstHash, level: 0)
        leaf.removeAll(keepingCapacity: true)
        leafDocuments = 0
    }

    private func add(_ entry: TreeEntry, hash: UInt64, level: Int) throws {
        if levels.count == level {
            levels.append([])
            levelHashes.append([])
            emitted.append(0)
        }
        levels[level].append(entry)
        levelHashes[level].append(hash)
        if (levels[level].count >= 2 && shape.nodeEnds(hash: hash, level: level))
            || levels[level].count >= shape.nodeMaxEntries {
            try cutNode(level: level)
        }
    }

    private func cutNode(level: Int) throws {
        let entries = levels[level]
        guard let first = entries.first else { return }
        let firstHash = levelHashes[level][0]
        levels[level].removeAll(keepingCapacity: true)
        levelHashes[level].removeAll(keepingCapacity: true)
        emitted[level] += 1
        let bytes = TreeNode(level: UInt8(level), entries: entries).encoded()
        let id = sink.blobID(for: bytes)
        try sink.store(.node, id: id, bytes: bytes, predecessor: nil)
        summary.nodes += 1
        let documents = entries.reduce(0) { $0 + $1.documents }
        let total = entries.reduce(0) { $0 + $1.bytes }
        try add(TreeEntry(firstKey: first.firstKey, child: id, documents: documents, bytes: total),
                hash: firstHash, level: level + 1)
    }

    /// Cuts what is pending and returns the tree's root and totals.
    public func finish() throws -> TreeSummary {
        try cutLeaf()
        var level = 0
        while level < levels.count {
            let isTop = level == levels.count - 1
            if isTop && emitted[level] == 0 {
                // Everything at this level is pending: it forms the root, except that a
                // single node entry above level 0 is already the root.
                let pending = levels[level]
                if pending.isEmpty { break }
                if pending.count == 1 && level > 0 {
                    summary.root = pending[0].child
                } else {
                    let bytes = TreeNode(level: UInt8(level), entries: pending).encoded()
                    let id = sink.blobID(for: bytes)
                    try sink.store(.node, id: id, bytes: bytes, predecessor: nil)
                    summary.nodes += 1
                    summary.root = id
                }
                break
            }
            if !levels[level].isEmpty { try cutNode(level: level) }
            level += 1
        }
        return summary
    }
}

/// Reads a collection tree back: leaves in key order, records in a leaf.
public struct TreeReader {
    let load: (BlobID) throws -> [UInt8]

    public init(load: @escaping (BlobID) throws -> [UInt8]) {
        self.load = load
    }

    /// Every leaf entry under `root`, in key order.
    public func leaves(root: BlobID) throws -> [TreeEntry] {
        var out: [TreeEntry] = []
        try collect(root, into: &out)
        return out
    }

    private func collect(_ id: BlobID, into out: inout [TreeEntry]) throws {
        let node = try TreeNode(decoding: try load(id), id: id)
        if node.level == 0 {
            out.append(contentsOf: node.entries)
        } else {
            for e in node.entries { try collect(e.child, into: &out) }
        }
    }

    /// Calls `body` with each length-prefixed record of a leaf.
    /// - Throws: `RepositoryError` `.invalidFormat` when a length runs past the leaf.
    public static func forEachRecord(in leaf: [UInt8], id: BlobID, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try leaf.withUnsafeBytes { p in
            var i = 0
            while i < p.count {
                guard i + 4 <= p.count else { throw RepositoryError(.invalidFormat, "leaf \(id.short) ends inside a record") }
                let n = Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: Int32.self)))
                guard n >= 5, i + n <= p.count else {
                    throw RepositoryError(.invalidFormat, "leaf \(id.short) has a record of impossible length \(n) at byte \(i)")
                }
                try body(UnsafeRawBufferPointer(rebasing: p[i..<(i + n)]))
                i += n
            }
        }
    }
}
