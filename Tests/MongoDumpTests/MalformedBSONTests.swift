import BSON
import Foundation
import Testing
import TestSupport
@testable import MongoDump

/// bsondump's test files, each read as the `.bson` of a collection in a temporary dump.
struct MalformedBSONTests {
    /// A dump directory holding `file` as `test.coll`'s data.
    private static func dump(around file: String) throws -> (DumpDirectory, URL) {
        let dir = Fixtures.temporaryDirectory("dump-bson")
        let db = dir.appendingPathComponent("test")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: DumpFixtures.bsondump(file), toPath: db.appendingPathComponent("coll.bson").path)
        try #"{"options":{},"indexes":[]}"#.write(to: db.appendingPathComponent("coll.metadata.json"), atomically: true, encoding: .utf8)
        return (try DumpDirectory(path: dir.path), dir)
    }

    static let coll = Namespace(database: "test", collection: "coll")

    static let broken: [(String, DumpError.Code)] = [
        ("bad_cstring.bson", .malformedDocument),
        ("bad_type.bson", .malformedDocument),
        ("broken_array.bson", .malformedDocument),
        ("invalid_field_name.bson", .truncated),  // valid documents, then one stray byte
        ("partial_file.bson", .truncated),
        ("random_bytes.bson", .malformedDocument),
    ]

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"), arguments: broken)
    func rejected(file: String, code: DumpError.Code) throws {
        let (dump, dir) = try Self.dump(around: file)
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = dumpError { try dump.forEachDocument(in: Self.coll) { _, _ in } }
        let e = try #require(error, "\(file) should be rejected")
        #expect(e.code == code, "\(file): \(e)")
        #expect(e.namespace == Self.coll)
        #expect(e.path?.hasSuffix("coll.bson") == true)
        #expect(e.offset != nil)
        // The single-pass visitor and the borrowing one report the same problem.
        #expect(dumpError { try dump.forEachDocument { _, _, _ in } }?.code == code)
        let borrowed = dumpError { try dump.forEachDocumentBytes(in: Self.coll) { _, _ in } }
        #expect(borrowed?.code == code)
        #expect(borrowed?.offset == e.offset)
        #expect(borrowed?.message == e.message)
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"),
          arguments: ["all_types.bson", "all_in_one_doc.bson", "deep_nested.bson", "sample.bson"])
    func accepted(file: String) throws {
        let (dump, dir) = try Self.dump(around: file)
        defer { try? FileManager.default.removeItem(at: dir) }
        var docs: [Document] = []
        try dump.forEachDocument(in: Self.coll) { doc, location in
            docs.append(doc)
            let reread = try dump.readDocument(at: location)
            #expect(reread == doc)
        }
        #expect(!docs.isEmpty)
        var index = 0
        try dump.forEachDocumentBytes(in: Self.coll) { bytes, location in
            #expect(Array(bytes) == docs[index].bytes)
            var reused = [UInt8](repeating: 0, count: bytes.count)
            try reused.withUnsafeMutableBytes { try dump.readBytes(file: location.file, offset: location.offset, into: $0) }
            #expect(reused == docs[index].bytes)
            index += 1
        }
        #expect(index == docs.count)
        let size = try FileManager.default.attributesOfItem(atPath: DumpFixtures.bsondump(file))[.size] as! Int
        #expect(docs.reduce(0) { $0 + $1.byteCount } == size)
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func sampleMatchesItsExtendedJSON() throws {
        let (dump, dir) = try Self.dump(around: "sample.bson")
        defer { try? FileManager.default.removeItem(at: dir) }
        var docs: [Document] = []
        try dump.forEachDocument(in: Self.coll) { doc, _ in docs.append(doc) }
        let lines = try String(contentsOfFile: DumpFixtures.bsondump("sample.json"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(docs.count == lines.count)
        for (doc, line) in zip(docs, lines) {
            #expect(doc == (try ExtendedJSON.decode(line)))
        }
    }

    @Test(.enabled(if: DumpFixtures.available, "needs ../shared/fixtures/mongo-tools"))
    func readingPastTheEndIntoABufferIsTruncated() throws {
        let (dump, dir) = try Self.dump(around: "sample.bson")
        defer { try? FileManager.default.removeItem(at: dir) }
        let size = try FileManager.default.attributesOfItem(atPath: DumpFixtures.bsondump("sample.bson"))[.size] as! Int
        var buffer = [UInt8](repeating: 0, count: 64)
        let error = dumpError {
            try buffer.withUnsafeMutableBytes { try dump.readBytes(file: 0, offset: Int64(size - 10), into: $0) }
        }
        #expect(error?.code == .truncated)
        #expect(error?.path?.hasSuffix("coll.bson") == true)
        #expect(dumpError { try buffer.withUnsafeMutableBytes { try dump.readBytes(file: 7, offset: 0, into: $0) } }?.code == .badLocation)
    }
}
