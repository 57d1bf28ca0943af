import BSON
import Foundation
import Logging
import MongoDump
import Repository
import Testing
import TestSupport
@testable import Capture

/// The scan sorts what mongodump wrote in natural order; the import then records the same
/// content checksum and tree, whatever order the dump held its documents in.
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
        var checksum = DocumentChecksum()
        for d in documents { checksum.add(d.bytes) }
        return (root.path, checksum.description)
    }

    static let emptyChecksum = DocumentChecksum().description

    @Test func keysComeOutSortedWhateverTheDumpOrder() throws {
        let dump = try Self.makeDump()
        let collections = try DumpScan(DumpDirectory(path: dump.path)).all()
        let keys = Dictionary(uniqueKeysWithValues: collections.map { ($0.info.namespace.collection, $0.keys.map(\.bytes)) })
        #expect(keys["shuffled"] == keys["sorted"])
        #expect(keys["sorted"]?.count == 3000 && keys["empty"]?.isEmpty == true)
        let sorted = try #require(collections.first { $0.info.namespace.collection == "sorted" })
        #expect(zip(sorted.keys, sorted.keys.dropFirst()).allSatisfy { compareKeys($0, $1) < 0 })
        // Locations follow their keys through the sort: the document at each holds that key.
        let shuffled = try #require(collections.first { $0.info.namespace.collection == "shuffled" })
        let source = try DumpDirectory(path: dump.path)
        for (key, location) in zip(shuffled.keys, shuffled.locations) {
            #expect(try source.readDocument(at: location).idKey == key)
        }
    }

    /// Every collection comes out once, also from a scan that starts no thread before
    /// the first `next()` (as an import on two cores makes it, while the key is derived).
    @Test(arguments: [0, 1, 2])
    func nextHandsEveryCollectionOverOnce(eagerThreads: Int) throws {
        let dump = try Self.makeDump()
        let scan = try DumpScan(DumpDirectory(path: dump.path), eagerThreads: eagerThreads)
        var names: [String] = []
        while let collection = try scan.next() { names.append(collection.info.namespace.collection) }
        #expect(names.sorted() == ["empty", "shuffled", "sorted"])
        #expect(try scan.next() == nil)
    }

    /// A collection that cannot be scanned fails the scan and the import with its own error;
    /// a cancelled scan hands nothing further over and its threads are gone when `cancel` returns.
    @Test func aFailedOrCancelledScanStopsCleanly() throws {
        let dump = try Self.makeDump(count: 20_000)
        let bad = URL(fileURLWithPath: dump.path).appendingPathComponent("clinic/noid.bson")
        try Data(Document(pairs: [("name", .string("no id"))]).bytes).write(to: bad)
        let repository = try TestRepository.make()
        do {
            _ = try DumpImporter(repository: repository, logger: Logger(label: "test")).importDump(DumpDirectory(path: dump.path), label: "dump")
            Issue.record("a dump with a document without _id imported")
        } catch let error as CaptureError {
            #expect(error.code == .missingID)
            #expect(error.message.contains("noid.bson"))
        }
        #expect(try SnapshotCatalog(repository: repository).list().isEmpty)

        try FileManager.default.removeItem(at: bad)
        let scan = try DumpScan(DumpDirectory(path: dump.path))
        scan.cancel()
        #expect(try scan.next() == nil)
    }

    @Test func importedChecksumsAndTreesDoNotDependOnDumpOrder() throws {
        let dump = try Self.makeDump()
        let repository = try TestRepository.make()
        let result = try DumpImporter(repository: repository, logger: Logger(label: "test"))
            .importDump(DumpDirectory(path: dump.path), label: "dump")
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collection("clinic.sorted")?.checksum == dump.expected)
        #expect(manifest.collection("clinic.shuffled")?.checksum == dump.expected)
        #expect(manifest.collection("clinic.empty")?.checksum == Self.emptyChecksum)
        #expect(manifest.collection("clinic.sorted")?.root == manifest.collection("clinic.shuffled")?.root)
    }

    @Test func archivesImportTheSameWay() throws {
        let dump = try Self.makeDump()
        let archive = Fixtures.temporaryDirectory("dumpscan-archive").appendingPathComponent("dump.archive").path
        try ArchiveWriter.write(DumpDirectory(path: dump.path), to: archive,
                                header: ArchiveHeader(concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "test"))
        let repository = try TestRepository.make()
        let result = try DumpImporter(repository: repository, logger: Logger(label: "test")).importDump(ArchiveReader(path: archive), label: "archive")
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collection("clinic.shuffled")?.checksum == dump.expected)
        #expect(manifest.collection("clinic.sorted")?.checksum == dump.expected)
    }
}
