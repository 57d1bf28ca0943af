import BSON
import Foundation
import Logging
import MongoDump
import Repository
import Testing
import TestSupport
@testable import Capture

/// The scan's checksums: computed during the scan or left to the writer, they are the
/// same MD5 of the documents in `_id` order (what dbHash reports and drills compare).
struct DumpScanTests {
    /// A dump directory with `clinic.sorted` (documents in `_id` order), `clinic.shuffled`
    /// (the same documents, mostly in order with a few late ones, as mongodump writes a
    /// real collection), and `clinic.empty`.
    static func makeDump(count: Int = 3000) throws -> (path: String, expected: String) {
        let root = Fixtures.temporaryDirectory("dumpscan")
        let db = root.appendingPathComponent("clinic")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        let documents = (0..<count).map { SnapshotWriterTests.document($0) }
        var shuffled = documents
        // Every 97th document is written 500 places later than its _id says.
        for i in stride(from: 0, to: count - 500, by: 97) { shuffled.swapAt(i, i + 500) }
        #expect(shuffled.map(\.bytes) != documents.map(\.bytes))
        for (name, docs) in [("sorted", documents), ("shuffled", shuffled), ("empty", [])] {
            try Data(docs.flatMap(\.bytes)).write(to: db.appendingPathComponent("\(name).bson"))
        }
        let md5 = MD5()
        for d in documents { md5.update(d.bytes) }
        return (root.path, md5.finalize())
    }

    static let emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

    static func checksums(_ scan: DumpScan) -> [String: String?] {
        Dictionary(uniqueKeysWithValues: scan.collections.map { ($0.info.namespace.collection, $0.checksum) })
    }

    @Test func sortedCollectionsAreHashedDuringTheScan() throws {
        let dump = try Self.makeDump()
        let scan = try DumpScan(DumpDirectory(path: dump.path))
        let sums = Self.checksums(scan)
        #expect(sums["sorted"] == dump.expected)
        #expect(sums["empty"] == Self.emptyMD5)
        #expect(sums["shuffled"] == .some(nil), "out of order and no time given: left to the writer")
        let shuffled = try #require(scan.collections.first { $0.info.namespace.collection == "shuffled" })
        #expect(shuffled.keys.map(\.key.bytes) == scan.collections.first { $0.info.namespace.collection == "sorted" }!.keys.map(\.key.bytes),
                "keys come out sorted either way")
    }

    @Test func unsortedCollectionsAreHashedWhileTimeIsGiven() throws {
        let dump = try Self.makeDump()
        let scan = try DumpScan(DumpDirectory(path: dump.path), checksumsWhile: { true })
        #expect(Self.checksums(scan)["shuffled"] == dump.expected)
        #expect(Self.checksums(scan)["sorted"] == dump.expected)
    }

    @Test func hashingStopsWhenTimeRunsOut() throws {
        let dump = try Self.makeDump()
        // The predicate turns false after a few hundred documents: the scan keeps what it
        // hashed so far, for the writer to go on from.
        let calls = Counter()
        let scan = try DumpScan(DumpDirectory(path: dump.path), checksumsWhile: { calls.next() < 300 })
        #expect(Self.checksums(scan)["shuffled"] == .some(nil))
        let shuffled = try #require(scan.collections.first { $0.info.namespace.collection == "shuffled" })
        let prefix = try #require(shuffled.checksumPrefix)
        #expect(prefix.bytes > 0 && prefix.bytes < shuffled.bytes)
        #expect(calls.value >= 300)
    }

    /// nil: no hashing in the scan; a number: the predicate's calls before it turns false.
    @Test(arguments: [nil, 0, 1, 2, 300, 2999, Int.max])
    func importedChecksumsAreTheSameEitherWay(calls: Int?) throws {
        let dump = try Self.makeDump()
        let repository = try TestRepository.make()
        let counter = Counter()
        let source = try DumpDirectory(path: dump.path)
        let scan = try calls.map { n in try DumpScan(source, checksumsWhile: { counter.next() < n }) } ?? DumpScan(source)
        let result = try DumpImporter(repository: repository, logger: Logger(label: "test")).importDump(scan, label: "dump")
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collection("clinic.sorted")?.checksum == dump.expected)
        #expect(manifest.collection("clinic.shuffled")?.checksum == dump.expected)
        #expect(manifest.collection("clinic.empty")?.checksum == Self.emptyMD5)
        #expect(manifest.collection("clinic.sorted")?.root == manifest.collection("clinic.shuffled")?.root)
    }

    /// A collection in `_id` order except one document written last: the scan keeps the
    /// MD5 of the documents before it (at a saved state), and the rest is hashed later.
    @Test(arguments: [false, true])
    func aCollectionOutOfOrderNearItsEndKeepsItsPrefix(hashInScan: Bool) throws {
        let root = Fixtures.temporaryDirectory("dumpscan-late")
        let db = root.appendingPathComponent("clinic")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        let documents = (0..<30000).map { SnapshotWriterTests.document($0) }
        var written = documents
        written.append(written.remove(at: 15000))
        try Data(written.flatMap(\.bytes)).write(to: db.appendingPathComponent("late.bson"))
        let md5 = MD5()
        for d in documents { md5.update(d.bytes) }
        let expected = md5.finalize()
        let total = documents.reduce(0) { $0 + $1.byteCount }
        let below = documents[..<15000].reduce(0) { $0 + $1.byteCount }

        let scan = try DumpScan(DumpDirectory(path: root.path), checksumsWhile: { hashInScan })
        let late = try #require(scan.collections.first)
        if hashInScan {
            #expect(late.checksum == expected)
        } else {
            let prefix = try #require(late.checksumPrefix, "the documents before the late one keep their hash")
            #expect(prefix.bytes > below - (4 << 20) && prefix.bytes <= below)
            #expect(late.checksum == nil)
        }
        #expect(below > 4 << 20 && total - below > 4 << 20, "saved states before and after the late document")
        let repository = try TestRepository.make()
        let result = try DumpImporter(repository: repository, logger: Logger(label: "test")).importDump(scan, label: "late")
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collection("clinic.late")?.checksum == expected)
    }

    @Test(arguments: [false, true])
    func archivesAreHashedTheSameWay(hashInScan: Bool) throws {
        let dump = try Self.makeDump()
        let archive = Fixtures.temporaryDirectory("dumpscan-archive").appendingPathComponent("dump.archive").path
        try ArchiveWriter.write(DumpDirectory(path: dump.path), to: archive,
                                header: ArchiveHeader(concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "test"))
        let scan = try DumpScan(ArchiveReader(path: archive), checksumsWhile: { hashInScan })
        #expect(Self.checksums(scan)["sorted"] == dump.expected)
        #expect(Self.checksums(scan)["shuffled"] == (hashInScan ? dump.expected : nil))
        let repository = try TestRepository.make()
        let result = try DumpImporter(repository: repository, logger: Logger(label: "test")).importDump(scan, label: "archive")
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collection("clinic.shuffled")?.checksum == dump.expected)
    }
}

/// A thread-safe call counter for predicates handed to the scanning threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func next() -> Int { lock.withLock { defer { count += 1 }; return count } }
}
