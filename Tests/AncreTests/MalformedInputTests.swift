import Foundation
import Testing
import TestSupport

/// `import` of malformed dumps: exit 15, a message naming the file and offset, no snapshot.
@Suite(.needsBinary, .needsFixtures)
struct MalformedInputTests {
    /// A repository with one good snapshot, to show that failed imports leave it as it was.
    static func populated() throws -> (Sandbox, [Listed]) {
        let box = Sandbox()
        try box.initialize()
        _ = try box.importDump(CLIFixtures.testBarArchive)
        return (box, try box.snapshots())
    }

    @Test(arguments: ["bad_cstring", "bad_type", "broken_array", "partial_file", "random_bytes", "invalid_field_name"])
    func malformedBSONFile(_ name: String) throws {
        let (box, before) = try Self.populated()
        let dump = box.path("dump")
        try FileManager.default.createDirectory(atPath: dump + "/db", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLIFixtures.bsondump("\(name).bson"), toPath: dump + "/db/c.bson")

        let r = try box.ancre("import", dump)
        #expect(r.status == 15, "\(r)")
        #expect(r.stderr.contains("db/c.bson"), "names the file: \(r)")
        #expect(r.stderr.contains("at byte "), "names the offset: \(r)")
        #expect(!r.stderr.contains("Fatal error"), "\(r)")
        #expect(try box.snapshots() == before)
        #expect(box.files(in: "locks").isEmpty, "the import's lock is released")
        try box.ok("check")
    }

    @Test func badFormatArchive() throws {
        let (box, before) = try Self.populated()
        let r = try box.ancre("import", CLIFixtures.badFormatArchive)
        #expect(r.status == 15, "\(r)")
        #expect(r.stderr.contains("bad-format.archive") && r.stderr.contains("at byte "), "\(r)")
        #expect(try box.snapshots() == before)
    }

    @Test func notAnArchive() throws {
        let (box, before) = try Self.populated()
        for name in ["random_bytes.bson", "sample.json"] {
            let r = try box.ancre("import", "--archive", CLIFixtures.bsondump(name))
            #expect(r.status == 15, "\(r)")
            #expect(r.stderr.contains(name) && r.stderr.contains("not a mongodump archive"), "\(r)")
        }
        #expect(try box.snapshots() == before)
    }

    @Test func nonexistentPath() throws {
        let (box, before) = try Self.populated()
        let missing = box.path("no-such-dump")
        let r = try box.ancre("import", missing)
        #expect(r.status == 15, "\(r)")
        #expect(r.stderr.contains("\(missing) does not exist"), "\(r)")
        #expect(try box.snapshots() == before)
    }

    /// A dump whose collection is large enough to fill a pack before its duplicate `_id`
    /// (the highest, found only while writing, after the scan that catches malformed BSON)
    /// is reached: no snapshot record, no index file; `check` passes and notes any pack
    /// the import left.
    @Test func importFailingMidwayRecordsNothing() throws {
        let (box, before) = try Self.populated()
        let indexBefore = box.indexFiles, packsBefore = Set(box.packs)
        let dump = box.path("dump")
        try FileManager.default.createDirectory(atPath: dump + "/db", withIntermediateDirectories: true)
        // 42 MiB of incompressible documents, then the last one again: each store thread
        // fills its own pack, so on two cores at least one 16 MiB pack is written first.
        let documents = incompressibleDocuments(count: 2600, payload: 16 << 10)
        try Data(documents + documents.suffix(22 + (16 << 10))).write(to: URL(fileURLWithPath: dump + "/db/a.bson"))

        let r = try box.ancre("import", dump)
        #expect(r.status == 15, "\(r)")
        #expect(r.stderr.contains("db.a has two documents with _id"), "\(r)")
        #expect(try box.snapshots() == before)
        #expect(box.indexFiles == indexBefore, "no index file for an import that failed")

        let left = Set(box.packs).subtracting(packsBefore).map(packName).sorted()
        if ProcessInfo.processInfo.activeProcessorCount <= 2 {
            #expect(!left.isEmpty, "the import wrote packs before failing (the case this test is about)")
        }
        let check = try box.ok("check")
        for pack in left {
            #expect(check.stdout.contains("note: pack \(pack) is not in any index"), "\(check)")
        }
        let (status, report) = try box.checkJSON(readData: true)
        #expect(status == 0 && report.problems.isEmpty, "\(report.problems)")
        #expect(report.unreferencedPacks == left)
    }
}

/// `count` BSON documents `{_id: i, d: BinData(0, <payload random bytes>)}`.
func incompressibleDocuments(count: Int, payload: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count * (payload + 22))
    var rng = SystemRandomNumberGenerator()
    func int32(_ v: Int) { withUnsafeBytes(of: Int32(v).littleEndian) { out.append(contentsOf: $0) } }
    for i in 0..<count {
        int32(22 + payload)
        out.append(0x10); out.append(contentsOf: Array("_id".utf8)); out.append(0); int32(i)
        out.append(0x05); out.append(UInt8(ascii: "d")); out.append(0); int32(payload); out.append(0)
        for _ in 0..<(payload / 8) { withUnsafeBytes(of: rng.next() as UInt64) { out.append(contentsOf: $0) } }
        out.append(0)
    }
    return out
}
