import BSON
import Foundation
import Logging
import Mongo
import MongoDump
import Repository
import Testing
import TestSupport
@testable import Capture
@testable import Recovery

/// A snapshot written with SnapshotWriter loads into a simulator with its options,
/// indexes and views, and the same content hashes.
@Suite(.serialized)
struct DataLoaderTests {
    static func patient(_ n: Int) -> Document {
        Document(["_id": .int64(Int64(n)), "name": .string("Patient \(n)"), "visits": .int32(Int32(n % 17)),
                  "address": .document(Document(["city": .string(["Lyon", "Nantes"][n % 2])])),
                  "notes": .string(String(repeating: "no allergies. ", count: 1 + n % 5))])
    }

    /// clinic.patients (validator, 2,500 documents, a unique index), clinic.log (capped), clinic.active (a view).
    static func snapshot() throws -> (Repository, SnapshotManifest) {
        let repository = try TestRepository.make()
        let writer = SnapshotWriter(repository: repository, previous: nil, logger: Logger(label: "test"))
        let patients = CollectionMetadata(
            options: doc(#"{"validator": {"name": {"$exists": true}}, "validationLevel": "moderate", "validationAction": "warn"}"#),
            indexes: [doc(#"{"v": 2, "key": {"_id": 1}, "name": "_id_"}"#), doc(#"{"v": 2, "key": {"name": 1}, "name": "name_1", "unique": true}"#)],
            type: "collection")
        try writer.writeCollection(database: "clinic", collection: "patients", type: "collection", metadata: patients.document,
                                   averageDocumentBytes: 120) { emit in
            for n in 0..<2500 {
                let d = patient(n)
                try d.bytes.withUnsafeBytes { try emit(d.idKey!, $0) }
            }
        }
        let log = CollectionMetadata(options: doc(#"{"capped": true, "size": 1048576}"#),
                                     indexes: [doc(#"{"v": 2, "key": {"_id": 1}, "name": "_id_"}"#)], type: "collection")
        try writer.writeCollection(database: "clinic", collection: "log", type: "collection", metadata: log.document, averageDocumentBytes: 40) { emit in
            for n in 0..<30 {
                let d = Document(["_id": .int32(Int32(n)), "msg": .string("event \(n)")])
                try d.bytes.withUnsafeBytes { try emit(d.idKey!, $0) }
            }
        }
        let view = CollectionMetadata(options: doc(#"{"viewOn": "patients", "pipeline": [{"$match": {"visits": {"$gt": 10}}}]}"#), type: "view")
        try writer.writeCollection(database: "clinic", collection: "active", type: "view", metadata: view.document, averageDocumentBytes: 1) { _ in }
        let (_, record) = try writer.finish(source: "test", kind: "import", start: nil, end: nil)
        return (repository, try SnapshotCatalog(repository: repository).manifest(of: record))
    }

    @Test func loadsCollectionsIndexesAndViews() throws {
        let (repository, manifest) = try Self.snapshot()
        let server = try startServer(.simulator)
        defer { server.stop() }
        let target = try client(server)
        let result = try DataLoader(repository: repository, client: target).load(manifest)
        #expect(result.documents == 2530)
        #expect(result.serialNamespaces == [Namespace("clinic.patients")!, Namespace("clinic.log")!])
        let hashes = try dbHash(target, "clinic")
        for c in manifest.collections where c.type == "collection" {
            #expect(hashes[c.collection] == (try repository.md5OfDocuments(c)), "\(c.namespace): dbHash equals the snapshot's MD5")
        }
        #expect(try target.listIndexes(Namespace("clinic.patients")!).contains { $0["name"] == .string("name_1") && $0["unique"] == .bool(true) })
        let infos = try target.listCollections(database: "clinic")
        #expect(infos.first { $0.name == "active" }?.kind == .view)
        #expect(infos.first { $0.name == "log" }?.options["capped"] == .bool(true))
        #expect(infos.first { $0.name == "patients" }?.options["validationLevel"] == .string("moderate"))

        // Again: refused (nothing written) without --drop, replaced with it.
        #expect(throws: RestoreError.self) { try DataLoader(repository: repository, client: target).load(manifest) }
        let again = try DataLoader(repository: repository, client: target, options: .init(drop: true)).load(manifest)
        #expect(again.documents == 2530)
        #expect(try dbHash(target, "clinic") == hashes)
    }

    @Test func renamesAndFiltersApplyToLoadAndReplay() throws {
        let (repository, manifest) = try Self.snapshot()
        let server = try startServer(.simulator)
        defer { server.stop() }
        let target = try client(server)
        let mapping = try NamespaceMapping(exclude: ["clinic.log"], renames: [(from: "clinic.*", to: "drill_clinic.*")])
        let loaded = try DataLoader(repository: repository, client: target, options: .init(mapping: mapping)).load(manifest)
        #expect(Set(loaded.collections.map(\.target.description)) == ["drill_clinic.patients", "drill_clinic.active"])
        let hashes = try dbHash(target, "drill_clinic")
        #expect(hashes["patients"] == (try repository.md5OfDocuments(manifest.collection("clinic.patients")!)))
        #expect(hashes["log"] == nil)
        #expect(try dbHash(target, "clinic").isEmpty)

        // Replay follows the same mapping: an update, an insert, a delete, DDL.
        let ts = { (i: UInt32) in BSONValue.timestamp(Timestamp(seconds: 1_700_000_000, increment: i)) }
        let entries = [
            Document(["ts": ts(1), "op": .string("u"), "ns": .string("clinic.patients"),
                      "o": .document(doc(#"{"$v": 2, "diff": {"u": {"visits": 99}}}"#)), "o2": .document(Document(["_id": .int64(3)]))]),
            Document(["ts": ts(2), "op": .string("i"), "ns": .string("clinic.patients"), "o": .document(Self.patient(9999))]),
            Document(["ts": ts(3), "op": .string("d"), "ns": .string("clinic.patients"), "o": .document(Document(["_id": .int64(0)]))]),
            Document(["ts": ts(4), "op": .string("i"), "ns": .string("clinic.log"), "o": .document(doc(#"{"_id": 100}"#))]),
            Document(["ts": ts(5), "op": .string("c"), "ns": .string("clinic.$cmd"), "o": .document(doc(#"{"create": "extra"}"#))]),
            Document(["ts": ts(6), "op": .string("c"), "ns": .string("clinic.$cmd"),
                      "o": .document(doc(#"{"createIndexes": "extra", "v": 2, "key": {"k": 1}, "name": "k_1"}"#))]),
        ]
        let result = try OplogApplier(client: target, options: .init(mapping: mapping, serialNamespaces: loaded.serialNamespaces)).replay(entries)
        #expect(result.skipped == 1)
        #expect(result.lastApplied == Timestamp(seconds: 1_700_000_000, increment: 6))
        let patients = Namespace("drill_clinic.patients")!
        #expect(try target.find(patients, FindOptions(filter: Document(["_id": .int64(3)]))).collect().first?["visits"] == .int32(99))
        #expect(try target.find(patients, FindOptions(filter: Document(["_id": .int64(0)]))).collect().isEmpty)
        #expect(try target.listIndexes(Namespace("drill_clinic.extra")!).contains { $0["name"] == .string("k_1") })
        #expect(try dbHash(target, "clinic").isEmpty, "nothing reaches the source names")
    }
}
