/// One entry of a tree node: the first key below a child, the child, and what it holds.
public struct TreeEntry: Sendable, Equatable {
    /// The first record's key in the child (for documents: the `_id` as type byte + value).
    public var firstKey: [UInt8]
    public var child: BlobID
    public var documents: UInt64
    public var bytes: UInt64

    public init(firstKey: [UInt8], child: BlobID, documents: UInt64, bytes: UInt64) {
        self.firstKey = firstKey
        self.child = child
        self.documents = documents
        self.bytes = bytes
    }
}

/// An interior node of a collection tree: entries for leaves (level 0) or for nodes
/// one level down.
///
/// Layout (FORMAT.md): `u8 version=1 | u8 level | u32 count | count × (u32 keyLength |
/// key | 32-byte child id | u64 documents | u64 bytes)`, little-endian.
public struct TreeNode: Sendable, Equatable {
    public var level: UInt8
    public var entries: [TreeEntry]

    public init(level: UInt8, entries: [TreeEntry]) {
        self.level = level
        self.entries = entries
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(6 + entries.reduce(0) { $0 + $1.firstKey.count + 52 })
        w.u8(1)
        w.u8(level)
        w.u32(UInt32(entries.count))
        for e in entries {
            w.u32(UInt32(e.firstKey.count))
            w.append(e.firstKey)
            w.id(e.child)
            w.u64(e.documents)
            w.u64(e.bytes)
        }
        return w.bytes
    }

    /// - Throws: `RepositoryError` `.invalidFormat` for bytes that are no node.
    public init(decoding bytes: [UInt8], id: BlobID) throws {
        var r = ByteReader(bytes)
        do {
            guard try r.u8() == 1 else {
                throw RepositoryError(.invalidFormat, "node \(id.short) has an unknown version")
            }
            level = try r.u8()
            let count = Int(try r.u32())
            guard count <= bytes.count / 52 else {
                throw RepositoryError(.invalidFormat, "node \(id.short) claims \(count) entries")
            }
            entries = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let keyLength = Int(try r.u32())
                let key = Array(try r.take(keyLength))
                entries.append(TreeEntry(firstKey: key, child: try r.id(), documents: try r.u64(), bytes: try r.u64()))
            }
            guard r.remaining == 0 else { throw RepositoryError(.invalidFormat, "node \(id.short) has trailing bytes") }
        } catch is ByteReader.Truncated {
            throw RepositoryError(.invalidFormat, "node \(id.short) is truncated")
        }
    }
}
