import Foundation
import Testing
import TestSupport
@testable import BSON

struct DocumentTests {
    @Test func buildAndRead() throws {
        let inner = Document(["x": .int32(1)])
        let doc = Document([
            "_id": .objectID(ObjectID(hex: "546651e74bf6e4cb017c5312")!),
            "name": .string("Zoé"),
            "n": .int64(42),
            "tags": .array([.string("a"), .bool(true)]),
            "inner": .document(inner),
            "ts": .timestamp(Timestamp(seconds: 7, increment: 3)),
        ])
        let reread = try Document(bytes: doc.bytes)
        #expect(reread["name"] == .string("Zoé"))
        #expect(reread["n"] == .int64(42))
        #expect(reread["tags"] == .array([.string("a"), .bool(true)]))
        #expect(reread["inner"] == .document(inner))
        #expect(reread["ts"]?.timestampValue == Timestamp(seconds: 7, increment: 3))
        #expect(reread["missing"] == nil)
        #expect(reread.keys == ["_id", "name", "n", "tags", "inner", "ts"])
        #expect(reread.idKey == BSONKey(.objectID(ObjectID(hex: "546651e74bf6e4cb017c5312")!)))
        #expect(ExtendedJSON.libbsonAccepts(doc.bytes))
    }

    @Test func extendedJSONRoundTrip() throws {
        let json = #"{"_id": {"$oid": "546651e74bf6e4cb017c5312"}, "a": {"$numberDouble": "1.5"}, "b": {"$numberLong": "7"}, "d": {"$date": {"$numberLong": "1000"}}, "t": {"$timestamp": {"t": 5, "i": 6}}}"#
        let doc = try ExtendedJSON.decode(json)
        #expect(doc["a"] == .double(1.5))
        #expect(doc["b"] == .int64(7))
        #expect(doc["d"] == .datetime(1000))
        #expect(doc["t"] == .timestamp(Timestamp(seconds: 5, increment: 6)))
        let again = try ExtendedJSON.decode(try ExtendedJSON.encode(doc, canonical: true))
        #expect(again.bytes == doc.bytes)
        #expect(throws: BSONError.self) { try ExtendedJSON.decode("{not json") }
    }

    /// Why Swift never holds a bson_t by value: libbson wants 128-byte alignment.
    @Test func libbsonAlignmentIsWiderThanSwiftImports() {
        #expect(ExtendedJSON.libbsonAlignment == 128)
    }

    @Test func rejectsMalformedBytes() {
        #expect(throws: BSONError.self) { try Document(bytes: [5, 0, 0, 0]) }
        #expect(throws: BSONError.self) { try Document(bytes: [6, 0, 0, 0, 0, 0]) }
        // Type 0xAA is no BSON type.
        #expect(throws: BSONError.self) { try Document(bytes: [8, 0, 0, 0, 0xAA, 0x61, 0, 0]) }
        // A string whose length runs past the document.
        #expect(throws: BSONError.self) { try Document(bytes: [13, 0, 0, 0, 2, 0x61, 0, 9, 0, 0, 0, 0x62, 0]) }
    }

    @Test(arguments: [
        [5, 0, 0, 0] as [UInt8], [6, 0, 0, 0, 0, 0], [8, 0, 0, 0, 0xAA, 0x61, 0, 0],
        [13, 0, 0, 0, 2, 0x61, 0, 9, 0, 0, 0, 0x62, 0], [5, 0, 0, 0, 0, 0],
    ])
    func validatingBorrowedBytesRejectsWhatInitRejects(bytes: [UInt8]) throws {
        let owned = Result { () throws(BSONError) in try Document(bytes: bytes) }
        let borrowed = bytes.withUnsafeBytes { p in Result { () throws(BSONError) in try Document.validate(p) } }
        guard case .failure(let a) = owned, case .failure(let b) = borrowed else {
            Issue.record("\(bytes) was accepted")
            return
        }
        #expect(a.offset == b.offset)
        #expect(a.message == b.message)
    }

    @Test func idKeyOfBorrowedBytes() throws {
        let withID = Document(["a": .int32(1), "_id": .string("x"), "b": .bool(true)])
        let without = Document(["a": .int32(1)])
        try withID.bytes.withUnsafeBytes { p in
            try Document.validate(p)
            #expect(Document.idKey(ofValidated: p)?.bytes == withID.idKey?.bytes)
            #expect(Document.idKey(ofValidated: p) == BSONKey(.string("x")))
        }
        without.bytes.withUnsafeBytes { #expect(Document.idKey(ofValidated: $0) == nil) }
    }

    static let broken = ["bad_cstring", "bad_type", "broken_array", "partial_file", "random_bytes", "invalid_field_name"]

    @Test(.enabled(if: Fixtures.haveMongoTools, "needs ../shared/fixtures/mongo-tools"), arguments: broken)
    func malformedFixtureFilesGiveAClearError(name: String) {
        let path = Fixtures.mongoTools("bsondump/testdata/\(name).bson")
        do {
            let docs = try DocumentStream.readAll(path: path)
            // invalid_field_name is well-formed BSON with a stray trailing byte: must still fail.
            Issue.record("\(name) read as \(docs.count) documents")
        } catch let error as BSONError {
            #expect(error.description.contains("invalid BSON at byte"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test(.enabled(if: Fixtures.haveMongoTools, "needs ../shared/fixtures/mongo-tools"),
          arguments: ["all_types", "all_in_one_doc", "deep_nested", "sample"])
    func wellFormedFixtureFilesRead(name: String) throws {
        let docs = try DocumentStream.readAll(path: Fixtures.mongoTools("bsondump/testdata/\(name).bson"))
        #expect(!docs.isEmpty)
        for doc in docs {
            #expect(ExtendedJSON.libbsonAccepts(doc.bytes) || name == "all_types" || name == "all_in_one_doc")
            let json = try ExtendedJSON.encode(doc)
            // libbson's JSON parser stops at 100 levels; deep_nested is deeper.
            if name != "deep_nested" { #expect(try ExtendedJSON.decode(json).bytes == doc.bytes) }
        }
    }

    @Test(.enabled(if: Fixtures.haveMongoTools, "needs ../shared/fixtures/mongo-tools"))
    func sampleMatchesItsExtendedJSON() throws {
        let docs = try DocumentStream.readAll(path: Fixtures.mongoTools("bsondump/testdata/sample.bson"))
        let lines = try String(contentsOfFile: Fixtures.mongoTools("bsondump/testdata/sample.json"), encoding: .utf8)
            .split(separator: "\n")
        #expect(docs.count == lines.count)
        for (doc, line) in zip(docs, lines) {
            #expect(try ExtendedJSON.decode(String(line)).bytes == doc.bytes)
        }
    }

    /// The word-at-a-time search finds the first NUL wherever it is, among bytes with the
    /// high bit set too, from any start, and never past `end`.
    @Test func cStringEndFindsTheFirstNul() {
        for start in 0..<3 {
            for length in 0...20 {
                for zeroAt in [nil] + Array(0..<length) as [Int?] {
                    for filler: UInt8 in [0x61, 0x80, 0xFF, 0x01] {
                        var bytes = [UInt8](repeating: filler, count: start + length + 8)
                        if let zeroAt { bytes[start + zeroAt] = 0 }
                        bytes[start + length] = 0  // just past `end`: must not be found
                        let expected = zeroAt.map { start + $0 + 1 }
                        bytes.withUnsafeBytes { p in
                            #expect(cStringEnd(p, start, start + length) == expected,
                                    "start \(start), length \(length), NUL at \(String(describing: zeroAt)), filler \(filler)")
                        }
                    }
                }
            }
        }
    }
}
