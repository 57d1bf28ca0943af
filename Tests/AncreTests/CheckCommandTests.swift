import Foundation
import Testing
import TestSupport

/// `check` on healthy and damaged repositories, and `export` from a damaged one.
@Suite(.needsBinary, .needsFixtures)
struct CheckCommandTests {
    /// A repository holding the three fixture dumps; returns the sandbox and snapshot ids in import order.
    static func populated() throws -> (Sandbox, [String]) {
        let box = Sandbox()
        try box.initialize()
        var ids: [String] = []
        for path in ImportExportTests.dumps { ids.append(try box.importDump(path).snapshot) }
        return (box, ids)
    }

    @Test func healthyRepositoryPasses() throws {
        let (box, ids) = try Self.populated()
        let plain = try box.ok("check")
        // Packs per import vary with the number of store threads (each fills its own pack).
        #expect(plain.stdout.contains("checked 3 index files, \(box.packs.count) packs, 3 snapshots: no errors"), "\(plain)")
        let full = try box.ok("check", "--read-data")
        #expect(full.stdout.contains("blobs read: no errors"), "\(full)")
        let (status, report) = try box.checkJSON(readData: true)
        #expect(status == 0)
        #expect(report.problems.isEmpty && report.unreferencedPacks.isEmpty)
        #expect(report.snapshots == ids.count && report.packs == box.packs.count && report.blobsRead > 0)
    }

    @Test func flippedByteNamesPackBlobAndSnapshot() throws {
        let (box, ids) = try Self.populated()
        let target = ids[2]  // test.bar
        let leaf = try box.locateLeaf(of: target)
        try flipByte(leaf.packPath, at: leaf.range.lowerBound + leaf.range.count / 2)

        let text = try box.ancre("check", "--read-data")
        #expect(text.status == 14, "\(text)")
        #expect(text.stdout.contains("pack \(leaf.pack)"), "\(text)")
        #expect(text.stdout.contains("blob \(leaf.blob)"), "\(text)")
        #expect(text.stdout.contains("used by snapshots:") && text.stdout.contains(String(target.prefix(8))), "\(text)")

        let (status, report) = try box.checkJSON(readData: true)
        #expect(status == 14)
        let blobProblem = try #require(report.problems.first { $0.blob == leaf.blob }, "\(report.problems)")
        #expect(blobProblem.pack == leaf.pack)
        #expect(blobProblem.snapshots.contains(target))
        #expect(report.problems.contains { $0.pack == leaf.pack && $0.blob == nil && $0.code == "packCorrupt" },
                "the pack no longer hashes to its name")

        // The damaged leaf makes exporting its snapshot fail, leaving no partial archive.
        let archive = box.path("damaged.archive")
        let export = try box.ancre("export", target, "--archive", archive)
        #expect(export.status == 14, "\(export)")
        #expect(export.stderr.contains(leaf.blob), "\(export)")
        #expect(export.stderr.contains("no archive was written to \(archive)"), "\(export)")
        #expect(!FileManager.default.fileExists(atPath: archive))
        #expect(!FileManager.default.fileExists(atPath: archive + ".partial"))
        // An existing file at the destination is not clobbered by a failed export.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: archive))
        #expect(try box.ancre("export", target, "--archive", archive).status == 14)
        #expect(try Data(contentsOf: URL(fileURLWithPath: archive)) == Data("keep".utf8))
        // To stdout the bytes cannot be taken back: the error says the output is incomplete.
        let piped = try box.ancre("export", target, "--archive", "-")
        #expect(piped.status == 14, "\(piped)")
        #expect(piped.stderr.contains("incomplete"), "\(piped)")
        // Snapshots not using the damaged blob still export.
        if !report.problems.contains(where: { $0.snapshots.contains(ids[0]) && $0.blob != nil }) {
            try box.ok("export", ids[0], "--archive", box.path("fine.archive"))
        }
    }

    @Test func truncatedPackIsExit14() throws {
        let (box, _) = try Self.populated()
        let pack = try #require(box.packs.first)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: pack)[.size] as? Int)
        try truncateFile(pack, to: size / 2)
        let r = try box.ancre("check")
        #expect(r.status == 14, "\(r)")
        #expect(r.stdout.contains("pack \(packName(pack)) is truncated"), "\(r)")
        #expect(r.stdout.contains("used by snapshots:"), "\(r)")
        let (status, report) = try box.checkJSON(readData: true)
        #expect(status == 14)
        #expect(report.problems.contains { $0.code == "packTruncated" && $0.pack == packName(pack) }, "\(report.problems)")
    }

    @Test func deletedPackIsExit14() throws {
        let (box, ids) = try Self.populated()
        let pack = try #require(box.packs.first)
        try FileManager.default.removeItem(atPath: pack)
        let r = try box.ancre("check")
        #expect(r.status == 14, "\(r)")
        #expect(r.stdout.contains("pack \(packName(pack)) is missing"), "\(r)")
        let (status, report) = try box.checkJSON(readData: false)
        #expect(status == 14)
        let problem = try #require(report.problems.first { $0.code == "packMissing" && $0.pack != nil }, "\(report.problems)")
        #expect(problem.pack == packName(pack))
        // Some snapshot is named as damaged (by the pack problem, or, when the pack held a
        // manifest or node, by the snapshot that cannot be walked).
        let named = Set(report.problems.flatMap(\.snapshots))
        #expect(!named.isEmpty && named.isSubset(of: ids), "\(report.problems)")
        for id in named { #expect(r.stdout.contains(id.prefix(8)), "\(r)") }
    }

    @Test func deletedIndexFileNamesTheSnapshotsNeedingItsBlobs() throws {
        let box = Sandbox()
        try box.initialize()
        let first = try box.importDump(CLIFixtures.oplogDump).snapshot
        let firstIndex = try #require(box.indexFiles.first)
        #expect(box.indexFiles.count == 1)
        let second = try box.importDump(CLIFixtures.testBarArchive).snapshot
        try FileManager.default.removeItem(atPath: firstIndex)

        let r = try box.ancre("check")
        #expect(r.status == 14, "\(r)")
        #expect(r.stdout.contains("snapshot \(first.prefix(8))"), "\(r)")
        let (status, report) = try box.checkJSON(readData: false)
        #expect(status == 14)
        #expect(report.problems.contains { $0.snapshots == [first] && $0.code == "blobNotFound" }, "\(report.problems)")
        // The second import stored only what the first had not (dedup), so it may need the lost blobs too.
        #expect(report.problems.allSatisfy { !$0.snapshots.isEmpty && Set($0.snapshots).isSubset(of: [first, second]) })
        // The first import's packs are now in no index.
        #expect(!report.unreferencedPacks.isEmpty, "\(report)")
        for pack in report.unreferencedPacks { #expect(r.stdout.contains("note: pack \(pack) is not in any index"), "\(r)") }
    }

    @Test func checkPassesButNotesUnreferencedPacks() throws {
        let (box, _) = try Self.populated()
        // A pack no index lists, as an interrupted import leaves: a copy under another name.
        let pack = try #require(box.packs.first)
        let stray = String(repeating: "ab", count: 32)
        let strayDir = URL(fileURLWithPath: box.repo).appendingPathComponent("data/ab")
        try FileManager.default.createDirectory(at: strayDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: pack, toPath: strayDir.appendingPathComponent(stray).path)
        let r = try box.ok("check")
        #expect(r.stdout.contains("note: pack \(stray) is not in any index"), "\(r)")
        #expect(r.stdout.contains("no errors"), "\(r)")
        let (status, report) = try box.checkJSON(readData: false)
        #expect(status == 0 && report.unreferencedPacks == [stray])
    }
}
