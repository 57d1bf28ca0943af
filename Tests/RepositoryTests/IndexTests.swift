import Testing
import TestSupport
@testable import Repository

@Suite struct IndexTests {
    private func entry(_ id: BlobID, offset: UInt32, base: BlobID? = nil) -> PackEntry {
        PackEntry(id: id, type: .leaf, encoding: base == nil ? .zstd : .delta, offset: offset, length: 100, rawLength: 300, base: base)
    }

    private func pack(_ i: Int) -> PackInfo {
        PackInfo(name: encodeHex(Crypto.sha256([UInt8(i & 0xFF), UInt8(i >> 8)])), keyID: [UInt8](repeating: UInt8(i & 0xFF), count: 16))
    }

    @Test func lookupOverlayAndMerge() {
        var index = BlobIndex()
        let ids = (0..<1000).map { BlobID(UInt64.random(in: 0...UInt64.max), UInt64($0), 0, 0) }
        for (i, id) in ids.prefix(500).enumerated() { index.bulkAppend(pack: index.packNumber(pack(i / 100)), entry: entry(id, offset: UInt32(i))) }
        index.finishBulkLoad()
        for (i, id) in ids.suffix(500).enumerated() { index.insert(pack: pack(100 + i / 100), entry: entry(id, offset: UInt32(i), base: ids[0])) }
        #expect(index.count == 1000)
        for (i, id) in ids.enumerated() {
            let found = index.lookup(id)
            #expect(found?.entry.offset == UInt32(i % 500))
            #expect((found?.entry.base != nil) == (i >= 500))
        }
        index.merge()
        #expect(index.count == 1000)
        #expect(ids.allSatisfy { index.contains($0) })
        #expect(index.lookup(ids[700])?.entry.base == ids[0])
        #expect(index.lookup(ids[700])?.pack == pack(102))
        #expect(!index.contains(BlobID(1, 2, 3, 4)))
    }

    @Test func indexFileRoundTrip() throws {
        let packs = [pack(1), pack(2)]
        let a = BlobID(bytes: Crypto.sha256([1])), b = BlobID(bytes: Crypto.sha256([2]))
        let entries: [(pack: UInt32, entry: PackEntry)] = [(1, entry(b, offset: 7, base: a)), (0, entry(a, offset: 0))]
        let decoded = try IndexFile.decode(IndexFile.encode(packs: packs, entries: entries))
        #expect(decoded.packs == packs)
        #expect(decoded.entries.map(\.entry) == entries.map(\.entry).sorted { $0.id < $1.id })
        #expect(throws: (any Error).self) { try IndexFile.decode(Array(IndexFile.encode(packs: packs, entries: entries).dropLast())) }
    }

    /// One million blobs in 2,000 packs (500 blobs of ~32 KiB per 16 MiB pack), 2% of them
    /// deltas, measured by construction: the 48-byte target of ARCHITECTURE.md §2.
    @Test func memoryPerBlob() {
        var index = BlobIndex()
        let blobs = 1_000_000, packs = 2_000
        let numbers = (0..<packs).map { index.packNumber(pack($0)) }
        // Ids in ascending order, so the bulk sort is linear even in a debug build.
        for i in 0..<blobs {
            let base = i % 50 == 1 ? BlobID(UInt64(i - 1) << 20, UInt64(i - 1), 7, 9) : nil
            index.bulkAppend(pack: numbers[i / (blobs / packs)], entry: entry(BlobID(UInt64(i) << 20, UInt64(i), 7, 9), offset: UInt32(i % 500) * 32_000, base: base))
        }
        index.finishBulkLoad()
        #expect(index.count == blobs)
        let perBlob = Double(index.memoryFootprint) / Double(blobs)
        print("index memory: \(index.memoryFootprint) bytes for \(blobs) blobs = \(perBlob) bytes/blob (record stride \(MemoryLayout<IndexRecord>.stride))")
        #expect(MemoryLayout<IndexRecord>.stride == 44)
        #expect(perBlob <= 48)
        #expect(index.lookup(BlobID(UInt64(123_456) << 20, 123_456, 7, 9))?.entry.offset == UInt32(123_456 % 500) * 32_000)
    }
}
