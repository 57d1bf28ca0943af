import BSON
import Foundation
import Testing
import TestSupport
@testable import MongoDump

struct DumpDirectoryTests {
    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func readsOplogDumpFixture() throws {
        let dump = try DumpDirectory(path: DumpFixtures.oplogDump)
        let namespaces = dump.namespaces()
        #expect(namespaces.map(\.namespace.description) == ["admin.system.version", "db1.c1"])
        let c1 = try #require(namespaces.last)
        #expect(c1.kind == .collection)
        #expect(c1.metadata?.uuid == "699f503df64b4aa8a484a8052046fa3a")
        #expect(c1.metadata?.indexes.first?["name"] == .string("_id_"))
        #expect(c1.byteCount == 145)
        #expect(dump.hasOplog)

        var docs: [(Document, DocumentLocation)] = []
        try dump.forEachDocument(in: c1.namespace) { docs.append(($0, $1)) }
        #expect(docs.count > 0)
        #expect(docs.reduce(0) { $0 + $1.0.byteCount } == 145)
        // Random access returns the same documents, in any order.
        for (doc, location) in docs.reversed() {
            let reread = try dump.readDocument(at: location)
            #expect(reread == doc)
        }

        var oplog: [Document] = []
        try dump.forEachOplogEntry { entry, location in
            oplog.append(entry)
            let reread = try dump.readDocument(at: location)
            #expect(reread == entry)
        }
        #expect(oplog.reduce(0) { $0 + $1.byteCount } == 681)
        #expect(oplog.allSatisfy { $0["ts"]?.timestampValue != nil && $0["op"]?.stringValue != nil })

        let everything = try allDocuments(dump)
        #expect(everything[.archiveOplog]?.count == oplog.count)
        #expect(everything[c1.namespace]?.count == docs.count)
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func metadataRoundTripsThroughJSON() throws {
        for file in ["db1/c1.metadata.json", "admin/system.version.metadata.json"] {
            let text = try String(contentsOfFile: DumpFixtures.oplogDump + "/" + file, encoding: .utf8)
            let metadata = try CollectionMetadata(json: text)
            let again = try CollectionMetadata(json: try metadata.json())
            #expect(again == metadata)
            // Equivalent JSON: the same document, field for field.
            #expect(try ExtendedJSON.decode(try metadata.json()) == (try ExtendedJSON.decode(text)))
        }
    }

    @Test func metadataKeepsUnknownFieldsAndTypes() throws {
        let text = #"{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"0123456789abcdef0123456789abcdef","collectionName":"v","type":"view","options":{"viewOn":"c","pipeline":[]},"future":{"$numberLong":"5"}}"#
        let metadata = try CollectionMetadata(json: text)
        #expect(metadata.kind == .view)
        #expect(metadata.collectionName == "v")
        #expect(metadata.additionalFields["future"] == .int64(5))
        #expect(metadata.indexes.first?["v"] == .int32(2))
        #expect(try CollectionMetadata(json: try metadata.json()) == metadata)
        #expect(dumpError { _ = try CollectionMetadata(json: #"{"indexes": 3}"#) }?.code == .badMetadata)
        #expect(dumpError { _ = try CollectionMetadata(json: "{not json") }?.code == .badMetadata)
    }

    @Test func viewsMissingDataAndGzip() throws {
        let dir = Fixtures.temporaryDirectory("dump-views")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("app")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        try #"{"options":{"viewOn":"c","pipeline":[]},"indexes":[],"type":"view"}"#
            .write(to: db.appendingPathComponent("v.metadata.json"), atomically: true, encoding: .utf8)
        try Data(Document(["_id": .int32(1)]).bytes).write(to: db.appendingPathComponent("c.bson"))
        // Escaped file name: mongodump percent-escapes "/" and "%" in collection names.
        try Data().write(to: db.appendingPathComponent("a%2Fb.bson"))

        let dump = try DumpDirectory(path: dir.path)
        #expect(dump.namespaces().map(\.namespace.description) == ["app.a/b", "app.c", "app.v"])
        #expect(dump.namespaces().map(\.kind) == [.collection, .collection, .view])
        #expect(!dump.hasOplog)
        var count = 0
        try dump.forEachDocument(in: Namespace(database: "app", collection: "v")) { _, _ in count += 1 }
        #expect(count == 0)

        try #"{"options":{},"indexes":[]}"#.write(to: db.appendingPathComponent("lost.metadata.json"), atomically: true, encoding: .utf8)
        let missing = dumpError { _ = try DumpDirectory(path: dir.path) }
        #expect(missing?.code == .missingData)
        #expect(missing?.namespace == Namespace(database: "app", collection: "lost"))
        try FileManager.default.removeItem(at: db.appendingPathComponent("lost.metadata.json"))

        try Data([1, 2]).write(to: db.appendingPathComponent("z.bson.gz"))
        let gz = dumpError { _ = try DumpDirectory(path: dir.path) }
        #expect(gz?.code == .unsupportedCompression)
        #expect(gz?.description.contains("z.bson.gz") == true)

        #expect(dumpError { _ = try DumpDirectory(path: dir.path + "/nope") }?.code == .notFound)
    }

    @Test func badMetadataNamesTheFile() throws {
        let dir = Fixtures.temporaryDirectory("dump-badmeta")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("d")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        try "{\"options\":{".write(to: db.appendingPathComponent("c.metadata.json"), atomically: true, encoding: .utf8)
        try Data().write(to: db.appendingPathComponent("c.bson"))
        let error = dumpError { _ = try DumpDirectory(path: dir.path) }
        #expect(error?.code == .badMetadata)
        #expect(error?.description.contains("c.metadata.json") == true)
    }
}
