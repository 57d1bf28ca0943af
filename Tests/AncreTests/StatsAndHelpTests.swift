import Foundation
import Testing
import TestSupport

@Suite(.needsBinary)
struct StatsAndHelpTests {
    struct Stats: Decodable {
        struct ByType: Decodable { var type: String; var blobs: Int; var rawBytes: Int; var storedBytes: Int }
        var snapshots: Int
        var blobs: Int
        var deltaBlobs: Int
        var packs: Int
        var logicalBytes: UInt64
        var rawBytes: Int
        var storedBytes: Int
        var dedupRatio: Double
        var byType: [ByType]
    }

    @Test(.needsFixtures) func statsReportsBlobsPacksBytes() throws {
        let box = Sandbox()
        try box.initialize()
        let empty = try decode(Stats.self, try box.ok("stats", "--json").stdout)
        #expect(empty.snapshots == 0 && empty.blobs == 0 && empty.packs == 0 && empty.storedBytes == 0)

        let a = try box.importDump(CLIFixtures.withOplogArchive)
        let b = try box.importDump(CLIFixtures.testBarArchive)
        let stats = try decode(Stats.self, try box.ok("stats", "--json").stdout)
        #expect(stats.snapshots == 2)
        #expect(stats.packs == box.packs.count && stats.packs >= 2)
        #expect(stats.blobs > 0 && stats.rawBytes > 0 && stats.storedBytes > 0)
        #expect(stats.logicalBytes == a.bytes + b.bytes)
        #expect(stats.byType.reduce(0) { $0 + $1.blobs } == stats.blobs)
        #expect(stats.byType.reduce(0) { $0 + $1.storedBytes } == stats.storedBytes)
        #expect(Set(stats.byType.filter { $0.blobs > 0 }.map(\.type)).isSuperset(of: ["leaf", "manifest", "metadata", "oplog"]),
                "\(stats.byType.map { ($0.type, $0.blobs) })")
        // Stored bytes are what the packs hold, less their headers and trailers.
        let packBytes = try box.packs.reduce(0) { $0 + (try FileManager.default.attributesOfItem(atPath: $1)[.size] as! Int) }
        #expect(stats.storedBytes <= packBytes)
        #expect(UInt64(stats.storedBytes) <= a.addedBytes + b.addedBytes)

        // Re-importing the same dump changes nothing but the snapshot count.
        _ = try box.importDump(CLIFixtures.testBarArchive)
        let after = try decode(Stats.self, try box.ok("stats", "--json").stdout)
        #expect(after.snapshots == 3 && after.blobs == stats.blobs && after.storedBytes == stats.storedBytes)
        #expect(after.dedupRatio > stats.dedupRatio)

        let text = try box.ok("stats")
        #expect(text.stdout.contains("blobs:") && text.stdout.contains("packs:") && text.stdout.contains("stored bytes:"), "\(text)")
    }

    static let commands: [[String]] = [
        [], ["init"], ["key"], ["key", "add"], ["key", "list"], ["key", "remove"], ["import"], ["export"],
        ["snapshots"], ["check"], ["stats"], ["backup"], ["tail"], ["timeline"], ["restore"], ["oplog", "search"], ["drill"],
        ["daemon"], ["status"],
        ["forget"], ["prune"], ["unlock"],
    ]

    @Test(arguments: commands)
    func helpListsExitCodes(_ command: [String]) throws {
        let r = try CLIRunner().run(command + ["--help"])
        #expect(r.status == 0, "\(r)")
        let help = squeezed(r.stdout)
        let sentence: String = [
            "Exit codes: 0 success, 1 failure, 64 usage error, 10 no repository, 11 repository already exists,",
            "12 wrong passphrase, 13 repository locked, 14 data damaged (check failed), 15 bad input (malformed dump or archive),",
            "16 storage full, 20 server unreachable, 21 server has no oplog, 22 authentication failed,",
            "23 oplog rolled over during a backup (enlarge it), 30 target not restorable, 31 restore target not empty (use --drop),",
            "40 drill failed (the restored data does not match, or could not be verified),",
            "41 unhealthy (status: RPO over its threshold or a job failed).",
        ].joined(separator: " ")
        #expect(help.contains(sentence), "\(r)")
    }
}
