/// Where leaves and nodes end: a keyed hash of each record's key, so boundaries depend
/// only on keys and an edit rewrites only the leaf that holds its key.
///
/// The hash is SipHash-2-4 under a key derived from the repository's id key, so the
/// storage provider cannot predict boundaries from known `_id`s.
public struct LeafBoundary: Sendable {
    let k0: UInt64
    let k1: UInt64

    public init(key: [UInt8]) {
        precondition(key.count >= 16, "a boundary key has at least 16 bytes")
        k0 = key.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        k1 = key.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }

    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var v0: UInt64 = 0x736f6d6570736575 ^ k0
        var v1: UInt64 = 0x646f72616e646f6d ^ k1
        var v2: UInt64 = 0x6c7967656e657261 ^ k0
        var v3: UInt64 = 0x7465646279746573 ^ k1
        @inline(__always) func round() {
            v0 &+= v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
            v2 &+= v3; v3 = v3.rotl(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotl(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
        }
        let n = bytes.count
        var i = 0
        while i + 8 <= n {
            let m = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            v3 ^= m
            round(); round()
            v0 ^= m
            i += 8
        }
        var last = UInt64(truncatingIfNeeded: n) << 56
        var shift: UInt64 = 0
        while i < n {
            last |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    public func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { hash($0) } }
}

extension UInt64 {
    @inline(__always) func rotl(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}

/// How a collection's tree is cut. Kept in the manifest per collection, so later
/// snapshots cut the same way and unchanged leaves keep their ids.
public struct TreeShape: Codable, Sendable, Equatable {
    /// A leaf ends after a record whose key hash has this many low bits zero (2^bits records per leaf on average).
    public var leafBits: Int
    public var leafMinBytes: Int
    public var leafMaxBytes: Int
    /// A node ends after an entry whose first key's hash has this many bits (from bit 32 up) zero.
    public var nodeBits: Int
    public var nodeMaxEntries: Int

    public init(leafBits: Int, leafMinBytes: Int, leafMaxBytes: Int, nodeBits: Int, nodeMaxEntries: Int) {
        self.leafBits = leafBits
        self.leafMinBytes = leafMinBytes
        self.leafMaxBytes = leafMaxBytes
        self.nodeBits = nodeBits
        self.nodeMaxEntries = nodeMaxEntries
    }

    /// Leaves of about `targetLeafBytes` for records of `averageRecordBytes`.
    public static func forRecords(averageBytes: Int, targetLeafBytes: Int = 1 << 20) -> TreeShape {
        let perLeaf = max(1, targetLeafBytes / max(1, averageBytes))
        var bits = 0
        while (1 << (bits + 1)) <= perLeaf { bits += 1 }
        return TreeShape(
            leafBits: min(bits, 20), leafMinBytes: targetLeafBytes / 8, leafMaxBytes: targetLeafBytes * 4,
            nodeBits: 6, nodeMaxEntries: 1024)
    }

    func leafEnds(hash: UInt64) -> Bool { hash & ((1 << UInt64(leafBits)) - 1) == 0 }

    func nodeEnds(hash: UInt64, level: Int) -> Bool {
        let shift = UInt64(32 + (level * nodeBits) % 30)
        return (hash >> shift) & ((1 << UInt64(nodeBits)) - 1) == 0
    }
}
