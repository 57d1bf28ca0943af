import Foundation
import Repository
import Testing
import TestSupport

/// `forget` and `prune` through the CLI on imported fixture dumps.
@Suite(.needsBinary, .needsFixtures)
struct RetentionCommandTests {
    struct ForgetJSON: Decodable {
        struct Decision: Decodable { var id: String; var keep: Bool; var reasons: [String] }
        struct Forget: Decodable { var snapshots: [Decision]; var segmentsRemoved: Int }
        struct Prune: Decodable {
            struct Plan: Decodable { var packsToDelete: Int; var liveBlobs: Int }
            struct Result: Decodable { var packsDeleted: Int; var bytesFreed: Int }
            var plan: Plan
            var result: Result?
        }
        var forget: Forget
        var dryRun: Bool
        var prune: Prune?
    }

    @Test func forgetDryRunThenForgetAndPrune() throws {
        let box = Sandbox()
        try box.initialize()
        // The same dump twice (one source) and another: keep-last 1 per source keeps two.
        let first = try box.importDump(ImportExportTests.dumps[2]).snapshot
        let second = try box.importDump(ImportExportTests.dumps[2]).snapshot
        let other = try box.importDump(ImportExportTests.dumps[1]).snapshot
        let packs = box.packs.count

        let table = try box.ok("forget", "--keep-last", "1", "--dry-run")
        #expect(table.stdout.contains("Snapshots: keep 2, remove 1"), "\(table)")
        #expect(table.stdout.contains("\(first.prefix(8))") && table.stdout.contains("remove"), "\(table)")
        let dry = try JSONDecoder().decode(ForgetJSON.self, from: try box.ok("forget", "--keep-last", "1", "--dry-run", "--json").stdoutData)
        #expect(dry.dryRun && dry.prune == nil)
        #expect(Set(dry.forget.snapshots.filter(\.keep).map(\.id)) == [second, other])
        #expect(dry.forget.snapshots.first { $0.id == second }?.reasons == ["last 1"])
        #expect(try box.snapshots().count == 3)  // a dry run changes nothing

        let done = try JSONDecoder().decode(ForgetJSON.self, from: try box.ok("forget", "--keep-last", "1", "--prune", "--json").stdoutData)
        #expect(!done.dryRun)
        #expect(try box.snapshots().map(\.id).sorted() == [second, other].sorted())
        #expect(done.prune?.result != nil)
        #expect(box.packs.count <= packs)
        let (status, report) = try box.checkJSON(readData: true)
        #expect(status == 0 && report.problems.isEmpty && report.unreferencedPacks.isEmpty && report.snapshots == 2)

        let again = try box.ok("prune")
        #expect(again.stdout.contains("delete 0 unused and 0 unreferenced, repack 0"), "\(again)")
    }

    @Test func forgetAndPruneRefuseAnExclusiveLockAndBadRules() throws {
        let box = Sandbox()
        try box.initialize()
        _ = try box.importDump(ImportExportTests.dumps[2])
        let lock = try box.openRepository().lock(kind: .exclusive)
        for command in [["forget", "--keep-last", "1"], ["prune"]] {
            let r = try box.cli.run(command)
            #expect(r.status == 13, "\(r)")
            #expect(r.stderr.contains("locked by another exclusive lock of pid \(getpid())"), "\(r)")
        }
        try lock.release()
        // --retry-lock waits out a short shared lock (a compaction run, a backup).
        let shared = try box.openRepository().lock(kind: .shared)
        let releaser = Thread {
            Thread.sleep(forTimeInterval: 1.5)
            try? shared.release()
        }
        releaser.start()
        let waited = try box.ancre("prune", "--retry-lock", "20s")
        #expect(waited.status == 0, "\(waited)")
        // A tailer (append lock, refreshed as it writes segments) does not stop them.
        let tail = try box.openRepository().lock(kind: .append)
        final class Stop: @unchecked Sendable {  // @unchecked: read and written under `lock`
            let lock = NSLock()
            var stopped = false
        }
        let stop = Stop()
        let refresher = Thread {
            while !stop.lock.withLock({ stop.stopped }) {
                try? tail.refresh()
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        refresher.start()
        let pruned = try box.ancre("prune")
        stop.lock.withLock { stop.stopped = true }
        #expect(pruned.status == 0, "\(pruned)")
        while !refresher.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        try tail.release()

        let none = try box.ancre("forget")
        #expect(none.status == 64 && none.stderr.contains("give at least one --keep-"), "\(none)")
        let bad = try box.ancre("forget", "--keep-within-pitr", "7x")
        #expect(bad.status == 64 && bad.stderr.contains("not a period like 7d"), "\(bad)")
        let unused = try box.ancre("prune", "--max-unused", "150%")
        #expect(unused.status == 64 && unused.stderr.contains("--max-unused"), "\(unused)")
    }
}
