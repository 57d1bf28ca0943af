import BSON
import Foundation
import Logging
import Recovery
import Repository
import Testing
import TestSupport
import Capture
@testable import Operations

/// The expected state at a point, from a snapshot and a crafted oplog covering every
/// kind of entry the model follows, compared with the state worked out by hand.
@Suite("drill expectation")
struct DrillExpectationTests {
    static func patient(_ n: Int) -> Document { Document(pairs: [("_id", .int32(Int32(n))), ("v", .int32(Int32(n)))]) }

    /// Entry `i` of a crafted oplog at second 100.
    static func entry(_ i: UInt32, _ op: String, _ ns: String, _ o: Document, o2: Document? = nil,
                      session: Int? = nil) -> Document {
        var pairs: [(String, BSONValue)] = [("ts", .timestamp(Timestamp(seconds: 100, increment: i))), ("op", .string(op)),
                                            ("ns", .string(ns)), ("o", .document(o))]
        if let o2 { pairs.append(("o2", .document(o2))) }
        if let session {
            pairs.append(("lsid", .document(Document(pairs: [("id", .binary(subtype: 4, data: [UInt8](repeating: UInt8(session), count: 16)))]))))
            pairs.append(("txnNumber", .int64(1)))
        }
        return Document(pairs: pairs)
    }

    static func d(_ pairs: KeyValuePairs<String, BSONValue>) -> Document { Document(pairs) }

    /// Builds the snapshot (clinic.patients 0..<100, clinic.old 0..<10) with `oplog` as
    /// its own oplog, and the expectation at its end.
    static func expectation(_ oplog: [Document]) throws -> DrillExpectation {
        let repository = try TestRepository.make()
        let writer = SnapshotWriter(repository: repository, previous: nil, logger: Logger(label: "test"))
        let idIndex = BSONValue.document(d(["v": .int32(2), "key": .document(d(["_id": .int32(1)])), "name": .string("_id_")]))
        for (name, count) in [("old", 10), ("patients", 100)] {
            try writer.writeCollection(database: "clinic", collection: name, type: "collection",
                                       metadata: d(["options": .document(Document()), "indexes": .array([idIndex])]),
                                       averageDocumentBytes: 30) { emit in
                for n in 0..<count {
                    let doc = patient(n)
                    try doc.bytes.withUnsafeBytes { try emit(doc.idKey!, $0) }
                }
            }
        }
        try writer.writeOplog { emit in for e in oplog { try emit(e) } }
        let (id, record) = try writer.finish(source: "test", kind: "backup", start: OplogTime(t: 100, i: 0),
                                             end: OplogTime(t: 100, i: UInt32(oplog.count)))
        let view = TimelineView(files: [], snapshots: [(id, record)])
        let plan = try RestorePlanner(view: view).plan(.latest, snapshot: id)
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: record)
        return try DrillExpectation.build(repository: repository, manifest: manifest, plan: plan)
    }

    static func md5(_ documents: [Document]) -> String {
        let md5 = StreamingDigest(.md5)
        for doc in documents { md5.update(doc.bytes) }
        return md5.finalize()
    }

    @Test func followsCRUDTransactionsAndDDL() throws {
        let session = 7
        let oplog = [
            Self.entry(1, "i", "clinic.patients", Self.patient(200)),
            Self.entry(2, "u", "clinic.patients", Self.d(["$v": .int32(2), "diff": .document(Self.d(["u": .document(Self.d(["v": .int32(500)]))]))]),
                       o2: Self.d(["_id": .int32(5)])),
            Self.entry(3, "d", "clinic.patients", Self.d(["_id": .int32(7)])),
            Self.entry(4, "u", "clinic.patients", Self.d(["_id": .int32(8), "w": .int32(1)]), o2: Self.d(["_id": .int32(8)])),
            // A transaction in two links: held until the last one.
            Self.entry(5, "c", "admin.$cmd", Self.d(["applyOps": .array([.document(Self.entry(0, "i", "clinic.patients", Self.patient(300)))]),
                                                     "partialTxn": .bool(true)]), session: session),
            Self.entry(6, "c", "admin.$cmd", Self.d(["applyOps": .array([.document(Self.entry(0, "d", "clinic.patients", Self.d(["_id": .int32(9)])))])]),
                       session: session),
            // A prepared transaction, aborted: nothing.
            Self.entry(7, "c", "admin.$cmd", Self.d(["applyOps": .array([.document(Self.entry(0, "i", "clinic.patients", Self.patient(400)))]),
                                                     "prepare": .bool(true)]), session: 8),
            Self.entry(8, "c", "admin.$cmd", Self.d(["abortTransaction": .int32(1)]), session: 8),
            Self.entry(9, "c", "clinic.$cmd", Self.d(["renameCollection": .string("clinic.old"), "to": .string("clinic.new")])),
            Self.entry(10, "u", "clinic.new", Self.d(["$v": .int32(2), "diff": .document(Self.d(["i": .document(Self.d(["x": .int32(1)]))]))]),
                       o2: Self.d(["_id": .int32(3)])),
            Self.entry(11, "c", "clinic.$cmd", Self.d(["create": .string("tmp")])),
            Self.entry(12, "i", "clinic.tmp", Self.patient(1)),
            Self.entry(13, "c", "clinic.$cmd", Self.d(["drop": .string("tmp")])),
            Self.entry(14, "c", "clinic.$cmd", Self.d(["createIndexes": .string("patients"), "v": .int32(2),
                                                       "key": .document(Self.d(["v": .int32(1)])), "name": .string("v_1")])),
            // An update of a document that is gone (a fuzzy snapshot): skipped.
            Self.entry(15, "u", "clinic.patients", Self.d(["$v": .int32(2), "diff": .document(Self.d(["u": .document(Self.d(["v": .int32(1)]))]))]),
                       o2: Self.d(["_id": .int32(999)])),
            Self.entry(16, "c", "clinic.$cmd", Self.d(["create": .string("gone")])),
            Self.entry(17, "i", "clinic.gone", Self.patient(1)),
            Self.entry(18, "c", "clinic2.$cmd", Self.d(["create": .string("x")])),
            Self.entry(19, "i", "clinic2.x", Self.patient(1)),
            Self.entry(20, "c", "clinic2.$cmd", Self.d(["dropDatabase": .int32(1)])),
        ]
        let expectation = try Self.expectation(oplog)
        #expect(expectation.entriesRead == oplog.count)
        #expect(expectation.namespaces == ["clinic.gone", "clinic.new", "clinic.patients"])

        var patients = (0..<100).filter { $0 != 7 && $0 != 9 }.map(Self.patient)
        patients[5] = Self.d(["_id": .int32(5), "v": .int32(500)])
        patients[7] = Self.d(["_id": .int32(8), "w": .int32(1)])  // index 7 holds _id 8 once 7 is gone
        patients += [Self.patient(200), Self.patient(300)]
        let digest = try #require(expectation.digests["clinic.patients"])
        #expect(digest.count == UInt64(patients.count) && digest.md5 == Self.md5(patients))

        var renamed = (0..<10).map(Self.patient)
        renamed[3] = Self.d(["_id": .int32(3), "v": .int32(3), "x": .int32(1)])
        #expect(expectation.digests["clinic.new"]?.md5 == Self.md5(renamed), "a rename carries the snapshot's documents")
        #expect(expectation.digests["clinic.gone"]?.count == 1)
        #expect(expectation.indexes("clinic.patients").keys.sorted() == ["_id_", "v_1"])
        #expect(expectation.unmodelled.isEmpty)
    }

    @Test func operatorUpdatesAreNamedAsUnmodelled() throws {
        let oplog = [Self.entry(1, "u", "clinic.patients", Self.d(["$set": .document(Self.d(["v": .int32(2)]))]), o2: Self.d(["_id": .int32(1)]))]
        #expect { _ = try Self.expectation(oplog) } throws: { error in
            "\(error)".contains("clinic.patients") && "\(error)".contains("cannot model")
        }
    }

    @Test func cappedCollectionsPastTheirLimitsAreNotClaimedVerified() throws {
        var oplog = [
            Self.entry(1, "c", "clinic.$cmd", Self.d(["create": .string("small"), "capped": .bool(true), "size": .int32(100)])),
            Self.entry(2, "c", "clinic.$cmd", Self.d(["create": .string("large"), "capped": .bool(true), "size": .int32(65536)])),
        ]
        for i in 0..<10 {
            oplog.append(Self.entry(UInt32(3 + 2 * i), "i", "clinic.small", Self.patient(i)))
            oplog.append(Self.entry(UInt32(4 + 2 * i), "i", "clinic.large", Self.patient(i)))
        }
        let expectation = try Self.expectation(oplog)
        let small = try #require(expectation.digests["clinic.small"]), large = try #require(expectation.digests["clinic.large"])
        #expect(small.count == 10 && large.count == 10)
        #expect(expectation.cappedOverflow("clinic.small", small)?.contains("evicts") == true)
        #expect(expectation.cappedOverflow("clinic.large", large) == nil)
    }

    @Test(arguments: ["", "a.b", "x/y", "has space", String(repeating: "p", count: 33)])
    func badScratchPrefixesAreRefused(_ prefix: String) {
        #expect(throws: DrillError.self) { try DrillOptions(scratchPrefix: prefix).validate() }
    }

    @Test func generatedScratchPrefixesAreValid() throws {
        for _ in 0..<20 { try DrillOptions().validate() }
        #expect(DrillOptions.newScratchPrefix().count == "ancre_drill_123456_".count)
    }
}
