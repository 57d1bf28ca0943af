import BSON
import Foundation
import Testing
import TestSupport
@testable import MongoDump

struct ArchiveTests {
    static let archives = [DumpFixtures.testBarArchive, DumpFixtures.withOplogArchive]

    /// The CRC stored in each EOF header, read straight from the file's bytes.
    private static func storedCRCs(_ reader: ArchiveReader) throws -> [Namespace: Int64] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: reader.path)))
        var out: [Namespace: Int64] = [:]
        for segment in try reader.segments() where segment.isEOF {
            let o = Int(segment.offset)
            let length = Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24
            let header = try Document(bytes: Array(bytes[o..<(o + length)]))
            #expect(header.keys == ["db", "collection", "EOF", "CRC"])
            #expect(header["EOF"] == .bool(true))
            out[segment.namespace] = header["CRC"]?.int64Value
        }
        return out
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func readsArchiveWithOplog() throws {
        let reader = try ArchiveReader(path: DumpFixtures.withOplogArchive)
        #expect(reader.header == ArchiveHeader(concurrentCollections: 4, formatVersion: "0.1", serverVersion: "4.0.2",
                                               toolVersion: "r4.1.3-4-gd9eefb54"))
        #expect(reader.prelude.map(\.namespace.description) == ["test.foo", "oplog", "admin.system.version"])
        #expect(reader.prelude[1] == .oplog)
        #expect(reader.hasOplog)
        let namespaces = reader.namespaces()
        #expect(namespaces.map(\.namespace.description) == ["admin.system.version", "test.foo"])
        #expect(namespaces.last?.metadata?.uuid == "d6b7b0bd5dce41c498aa03f115533254")

        let docs = try allDocuments(reader)
        #expect(docs[Namespace(database: "test", collection: "foo")]?.count == 25)
        #expect(docs[Namespace(database: "admin", collection: "system.version")]?.count == 1)
        let oplog = try #require(docs[.archiveOplog])
        #expect(oplog.allSatisfy { $0["op"] == .string("i") })
        #expect(reader.namespaces().last?.documentCount == 25)

        var viaOplog: [Document] = []
        try reader.forEachOplogEntry { entry, location in
            viaOplog.append(entry)
            let reread = try reader.readDocument(at: location)
            #expect(reread == entry)
        }
        #expect(viaOplog == oplog)
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"), arguments: archives)
    func computedCRCsEqualStoredOnes(path: String) throws {
        let reader = try ArchiveReader(path: path)
        let stored = try Self.storedCRCs(reader)
        #expect(stored.count == reader.prelude.count)
        var computed: [Namespace: CRC64] = [:]
        try reader.forEachDocument { ns, doc, _ in computed[ns, default: CRC64()].update(doc.bytes) }
        for entry in reader.prelude {
            let crc = Int64(bitPattern: (computed[entry.namespace] ?? CRC64()).value)
            #expect(crc == stored[entry.namespace], "\(entry.namespace)")
        }
        #expect(stored.values.contains { $0 != 0 })
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"), arguments: archives)
    func rewriteIsByteIdentical(path: String) throws {
        let reader = try ArchiveReader(path: path)
        let out = Fixtures.temporaryDirectory("archive-copy").appendingPathComponent("copy.archive")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let writer = try ArchiveWriter(path: out.path, header: reader.header, prelude: reader.prelude)
        // Replay the original's segment order, so interleaving and empty segments match too.
        for segment in try reader.segments() {
            if segment.isEOF {
                try writer.end(segment.namespace)
            } else {
                try reader.forEachDocument(in: segment.namespace) { doc, location in
                    if location.offset >= segment.offset && location.offset < segment.offset + segment.byteCount {
                        try writer.append(doc, to: segment.namespace)
                    }
                }
            }
        }
        try writer.finish()
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let copy = try Data(contentsOf: out)
        #expect(copy == original)

        let reread = try ArchiveReader(path: out.path)
        #expect(reread.prelude == reader.prelude)
        #expect(try allDocuments(reread) == (try allDocuments(reader)))
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func directoryToArchiveAndBack() throws {
        let dump = try DumpDirectory(path: DumpFixtures.oplogDump)
        let out = Fixtures.temporaryDirectory("archive-dir").appendingPathComponent("dump.archive")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        try ArchiveWriter.write(dump, to: out.path, header: ArchiveHeader(serverVersion: "7.0.0", toolVersion: "ancre"))

        let archive = try ArchiveReader(path: out.path)
        try archive.verify()
        #expect(archive.namespaces().map(\.namespace) == dump.namespaces().map(\.namespace))
        #expect(archive.namespaces().map(\.metadata) == dump.namespaces().map(\.metadata))
        #expect(archive.prelude.map(\.type) == ["collection", "collection", nil])
        #expect(archive.hasOplog)
        #expect(try allDocuments(archive) == (try allDocuments(dump)))
    }

    @Test func writerInterleavesLikeMongodump() throws {
        let a = Namespace(database: "d", collection: "a")
        let b = Namespace(database: "d", collection: "b")
        let v = Namespace(database: "d", collection: "v")
        let out = Fixtures.temporaryDirectory("archive-mux").appendingPathComponent("x.archive")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let writer = try ArchiveWriter(
            path: out.path, header: ArchiveHeader(serverVersion: "7.0.0", toolVersion: "ancre"),
            prelude: [
                try ArchivePreludeEntry(namespace: a, metadata: CollectionMetadata()),
                try ArchivePreludeEntry(namespace: b, metadata: CollectionMetadata()),
                try ArchivePreludeEntry(namespace: v, metadata: CollectionMetadata(options: Document(["viewOn": .string("a")]), type: "view")),
            ])
        let docs = (0..<6).map { Document(["_id": .int32(Int32($0))]) }
        try writer.append(docs[0], to: a)
        try writer.append(docs[1], to: b)
        try writer.append(docs[2], to: a)
        try writer.end(v)
        try writer.append(docs[3], to: b)
        try writer.end(b)
        try writer.append(docs[4], to: a)
        try writer.append(docs[5], to: a)
        #expect(dumpError { try writer.finish() }?.code == .misuse)
        #expect(dumpError { try writer.append(docs[0], to: b) }?.code == .misuse)
        try writer.end(a)
        try writer.finish()

        let reader = try ArchiveReader(path: out.path)
        #expect(try reader.segments().map { "\($0.namespace.collection)\($0.isEOF ? "!" : String($0.documentCount))" }
            == ["a1", "b1", "a1", "v0", "v!", "b1", "b!", "a2", "a!"])
        var seen: [Namespace: [Document]] = [:]
        try reader.forEachDocument(in: a) { seen[a, default: []].append($0) ; _ = $1 }
        #expect(seen[a] == [docs[0], docs[2], docs[4], docs[5]])
        #expect(reader.namespaces().map(\.kind) == [.collection, .collection, .view])
        #expect(try allDocuments(reader)[b] == [docs[1], docs[3]])
    }
}

/// Damaged archives are refused with a specific error, never a crash.
struct DamagedArchiveTests {
    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func badFormatArchiveIsRejected() throws {
        let error = try #require(dumpError { _ = try ArchiveReader(path: DumpFixtures.badFormatArchive) })
        #expect(error.code == .badMetadata)
        #expect(error.namespace == Namespace(database: "test", collection: "ixtest"))
        #expect(error.path == DumpFixtures.badFormatArchive)
        #expect(error.offset == 0x6A)
    }

    /// A copy of test.bar.archive changed by `edit`, and the error reading it fully.
    private func damaged(_ edit: (inout [UInt8]) -> Void) throws -> DumpError? {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DumpFixtures.testBarArchive)))
        edit(&bytes)
        let out = Fixtures.temporaryDirectory("archive-bad").appendingPathComponent("bad.archive")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        try Data(bytes).write(to: out)
        return dumpError {
            let reader = try ArchiveReader(path: out.path)
            try reader.forEachDocument { _, _, _ in }
        }
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func damageIsNamed() throws {
        // Layout of test.bar.archive: prelude ends at 0x216; test.bar's one document at 0x31c.
        let crc = try #require(try damaged { $0[0x33a] = UInt8(ascii: "X") })  // "bar" -> "Xar" in {foo: "bar"}
        #expect(crc.code == .crcMismatch)
        #expect(crc.namespace == Namespace(database: "test", collection: "bar"))
        #expect(crc.description.contains("test.bar"))

        #expect(try damaged { $0[0] = 0 }?.code == .badMagic)
        #expect(try damaged { $0.removeLast(6) }?.code == .truncated)
        #expect(try damaged { $0[0x33f] = 0xFE }?.code == .badFraming)  // segment terminator damaged
        #expect(try damaged { $0.replaceSubrange(0x31c..<0x320, with: [0x40, 0, 0, 0]) }?.code != nil)
        #expect(try damaged { $0.removeLast($0.count - 0x216) }?.code == .unfinishedNamespace)
        let doubled = try damaged { bytes in bytes.insert(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF], at: 0x216) }
        #expect(doubled?.code == .badFraming)
        #expect(doubled?.offset == 0x216)
        #expect(dumpError { _ = try ArchiveReader(path: "/nonexistent/x.archive") }?.code == .notFound)
    }
}
