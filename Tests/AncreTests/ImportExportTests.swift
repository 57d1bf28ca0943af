import Foundation
import MongoDump
import Testing
import TestSupport

/// `import` of mongodump output, `snapshots --json`, `export --archive`, and the round trip.
@Suite(.needsBinary, .needsFixtures)
struct ImportExportTests {
    static let dumps = [CLIFixtures.oplogDump, CLIFixtures.withOplogArchive, CLIFixtures.testBarArchive]

    @Test func importListExportReimportRoundTrips() throws {
        let box = Sandbox()
        try box.initialize()
        var imported: [(path: String, summary: ImportSummary, contents: DumpContents)] = []
        for path in Self.dumps {
            let contents = try DumpContents(path: path)
            let summary = try box.importDump(path)
            #expect(summary.documents == UInt64(contents.documentCount), "\(path): \(contents)")
            #expect(summary.collections == contents.documents.count, "\(path)")
            #expect(summary.addedBytes > 0)
            imported.append((path, summary, contents))
        }
        // `--archive FILE` is the same as the path.
        // Listed oldest first; imports within one second are ordered by id (the record's time has
        // whole seconds), so match them by id.
        let listed = try box.snapshots()
        #expect(Set(listed.map(\.id)) == Set(imported.map(\.summary.snapshot)))
        for original in imported {
            let entry = try #require(listed.first { $0.id == original.summary.snapshot })
            #expect(entry.snapshot.source == URL(fileURLWithPath: original.path).standardizedFileURL.path)
            #expect(entry.snapshot.kind == "import")
            #expect(entry.snapshot.documents == original.summary.documents)
            #expect(entry.snapshot.collections == original.summary.collections)
            #expect(entry.snapshot.bytes == original.summary.bytes)
            // Snapshots of dumps with an oplog record its span.
            #expect((entry.snapshot.end != nil) == !original.contents.oplog.isEmpty, "\(entry)")
        }
        #expect(imported.contains { !$0.contents.oplog.isEmpty }, "some fixture has an oplog")

        for (i, original) in imported.enumerated() {
            let id = original.summary.snapshot
            let exported = box.path("export-\(i).archive")
            let e = try box.ok("export", String(id.prefix(12)), "--archive", exported)
            #expect(e.stderr.contains("exported snapshot \(id.prefix(8))"), "\(e)")
            #expect(!FileManager.default.fileExists(atPath: exported + ".partial"))

            // The archive holds the dump's documents, metadata and oplog (in order).
            let first = try DumpContents(path: exported)
            #expect(first == original.contents, "export of \(original.path): \(first) vs \(original.contents)")
            try ArchiveReader(path: exported).verify()  // framing and CRCs

            // Re-importing the export stores (almost) nothing new, and exports identically.
            let again = try box.importDump(exported)
            #expect(again.documents == original.summary.documents)
            #expect(again.collections == original.summary.collections)
            #expect(again.addedBytes <= 2048, "re-import should add only a manifest at most, added \(again.addedBytes)")
            let second = box.path("export-\(i)-again.archive")
            try box.ok("export", again.snapshot, "--archive", second)
            #expect(try DumpContents(path: second) == first)
            #expect(try Data(contentsOf: URL(fileURLWithPath: second)) == Data(contentsOf: URL(fileURLWithPath: exported)),
                    "the same content exports byte for byte the same")
        }

        // `export --archive -` writes the same archive to stdout.
        let piped = try box.ancre("export", imported[1].summary.snapshot, "--archive", "-")
        #expect(piped.status == 0, "\(piped)")
        #expect(piped.stdoutData == (try Data(contentsOf: URL(fileURLWithPath: box.path("export-1.archive")))))

        #expect(try box.snapshots().count == 2 * imported.count)
        let check = try box.ok("check", "--read-data")
        #expect(check.stdout.contains("no errors"), "\(check)")
    }

    @Test func importByArchiveOptionAndTags() throws {
        let box = Sandbox()
        try box.initialize()
        let r = try box.ok("import", "--archive", CLIFixtures.testBarArchive, "--tag", "nightly", "--tag", "x")
        #expect(r.stdout.contains("saved: 2 collections"), "\(r)")
        let both = try box.ancre("import", CLIFixtures.testBarArchive, "--archive", CLIFixtures.testBarArchive)
        #expect(both.status == 64, "\(both)")
        let neither = try box.ancre("import")
        #expect(neither.status == 64, "\(neither)")
        #expect(try box.snapshots().count == 1)
    }

    @Test func unknownSnapshotIsAClearError() throws {
        let box = Sandbox()
        try box.initialize()
        let r = try box.ancre("export", "deadbeef", "--archive", box.path("x.archive"))
        #expect(r.status != 0, "\(r)")
        #expect(r.stderr.contains("no snapshot deadbeef"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: box.path("x.archive")))
        let empty = try box.ancre("export", "--archive", box.path("y.archive"))
        #expect(empty.status != 0 && empty.stderr.contains("no snapshot yet"), "\(empty)")
    }
}
