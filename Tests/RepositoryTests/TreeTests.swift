import Foundation
import Repository
import Testing
import TestSupport

/// Key-defined leaf boundaries: an edit rewrites only the leaf holding its key.
struct TreeTests {
    /// Stores blobs in memory and counts what it stored.
    final class MemorySink: TreeSink {
        var blobs: [BlobID: [UInt8]] = [:]
        var stored: [(BlobType, BlobID)] = []
        func blobID(for bytes: [UInt8]) -> BlobID {
            var hasher = Hasher()
            hasher.combine(bytes)
            // Content-derived and collision-free enough for a test: length + two hashes.
            let a = UInt64(bitPattern: Int64(hasher.finalize()))
            let b = UInt64(bytes.count) ^ bytes.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
            var raw = [UInt8](repeating: 0, count: 32)
            for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i))); raw[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i))) }
            return BlobID(bytes: raw)
        }
        func store(_ type: BlobType, id: BlobID, bytes: [UInt8], predecessor: BlobID?) throws {
            if blobs[id] == nil { stored.append((type, id)) }
            blobs[id] = bytes
        }
    }

    static let boundary = LeafBoundary(key: Array(repeating: 7, count: 16))
    static let shape = TreeShape.forRecords(averageBytes: 200, targetLeafBytes: 4096)

    static func key(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) } }

    /// A length-prefixed record of about 200 bytes, its content depending on `version`.
    static func record(_ n: Int, version: Int = 0) -> [UInt8] {
        let body = Array("record \(n) version \(version) ".utf8) + TestRepository.bytes(count: 160, seed: UInt64(n * 31 + version), alphabet: 16)
        let length = UInt32(body.count + 4)
        return withUnsafeBytes(of: length.littleEndian) { Array($0) } + body
    }

    static func build(_ keys: [Int], sink: MemorySink, version: (Int) -> Int = { _ in 0 }) throws -> TreeSummary {
        let writer = TreeWriter(shape: shape, boundary: boundary, sink: sink)
        for k in keys { try writer.append(key: key(k), record: record(k, version: version(k))) }
        return try writer.finish()
    }

    static func leaves(_ root: BlobID, _ sink: MemorySink) throws -> [TreeEntry] {
        try TreeReader { sink.blobs[$0]! }.leaves(root: root)
    }

    @Test func sameContentSameRoot() throws {
        let a = MemorySink(), b = MemorySink()
        let keys = Array(0..<5000)
        let ra = try Self.build(keys, sink: a), rb = try Self.build(keys, sink: b)
        #expect(ra.root == rb.root)
        #expect(ra.documents == 5000)
        #expect(ra.leaves > 50)
        #expect(ra.nodes >= 2, "5,000 records make a tree deeper than one node")
    }

    @Test func readerReturnsEveryRecordInOrder() throws {
        let sink = MemorySink()
        let summary = try Self.build(Array(0..<3000), sink: sink)
        var seen = 0
        for leaf in try Self.leaves(summary.root!, sink) {
            try TreeReader.forEachRecord(in: sink.blobs[leaf.child]!, id: leaf.child) { record in
                #expect(Array(record) == Self.record(seen))
                seen += 1
            }
        }
        #expect(seen == 3000)
    }

    @Test(arguments: [17, 1234, 4999])
    func anUpdateRewritesOneLeaf(changed: Int) throws {
        let sink = MemorySink()
        let before = try Self.build(Array(0..<5000), sink: sink)
        let storedBefore = sink.stored.count
        let after = try Self.build(Array(0..<5000), sink: sink) { $0 == changed ? 1 : 0 }
        let old = try Self.leaves(before.root!, sink), new = try Self.leaves(after.root!, sink)
        #expect(old.map(\.firstKey) == new.map(\.firstKey), "boundaries depend on keys only")
        let differing = zip(old, new).filter { $0.child != $1.child }
        #expect(differing.count == 1)
        let newLeaves = sink.stored.dropFirst(storedBefore).filter { $0.0 == .leaf }
        #expect(newLeaves.count == 1)
    }

    @Test func insertsAndDeletesStayLocal() throws {
        let sink = MemorySink()
        let evens = Array(stride(from: 0, to: 10000, by: 2))
        let before = try Self.build(evens, sink: sink)
        var inserted = evens
        inserted.insert(2001, at: 1001)
        inserted.removeAll { $0 == 6000 }
        let after = try Self.build(inserted, sink: sink)
        let old = Set(try Self.leaves(before.root!, sink).map(\.child))
        let new = try Self.leaves(after.root!, sink).map(\.child)
        let changed = new.filter { !old.contains($0) }
        #expect(changed.count <= 4, "one insert and one delete touch at most two leaves each")
        #expect(after.documents == before.documents)
    }

    @Test func emptyAndTinyTrees() throws {
        let sink = MemorySink()
        #expect(try Self.build([], sink: sink).root == nil)
        let one = try Self.build([42], sink: sink)
        #expect(one.leaves == 1)
        #expect(try Self.leaves(one.root!, sink).count == 1)
    }

    @Test func boundaryHashIsKeyed() {
        let other = LeafBoundary(key: Array(repeating: 8, count: 16))
        let k = Self.key(99)
        #expect(Self.boundary.hash(k) != other.hash(k))
        // SipHash-2-4 reference vector: key 00..0f, empty message.
        let reference = LeafBoundary(key: Array(0..<16))
        #expect(reference.hash([]) == 0x726f_db47_dd0e_0e31)
    }
}
