import BSON
import Foundation
import Mongo
import Recovery
import Repository
import Testing
import TestSupport
@testable import Operations

/// The daemon's `[retention]` job on a compressed clock: forget + prune run on the primary
/// and the off-site copy while the tailer keeps capturing, and every promised point stays restorable.
@Suite("ancre daemon retention", .serialized, .timeLimit(.minutes(3)))
struct DaemonRetentionTests {
    typealias S = DaemonTestSupport

    @Test(.enabled(if: S.available))
    func retentionForgetsAndPrunesBothCopiesWhileTheTailGoesOn() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        let initial = try S.loadgen(uri: source.uri, seconds: 1, seed: 5, oracle: nil)
        initial.waitUntilExit()
        let setup = try DaemonSetup(sourceURI: source.uri, tables: """
            [offsite.copy]
            location = "offsite"
            [snapshot]
            schedule = "0 * * * *"
            [replication]
            schedule = "20 * * * *"
            [retention]
            schedule = "40 * * * *"
            keep_last = 2
            """)
        let offsite = setup.directory.appendingPathComponent("offsite").path
        try FileManager.default.createDirectory(atPath: offsite, withIntermediateDirectories: true)
        let load = try S.loadgen(uri: source.uri, seconds: 10, seed: 6, oracle: nil)
        let (daemon, log) = try setup.startDaemon(log: "daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        load.waitUntilExit()
        let loadEnded = Date()
        // A retention run that started after the load ended, once snapshots and copies piled up.
        let retained = setup.wait(60) {
            let jobs = setup.state.jobs
            return (jobs["retention"]?.lastStart ?? .distantPast) > loadEnded.addingTimeInterval(1) && jobs["retention"]?.running == false
                && (jobs["snapshot"]?.runs ?? 0) >= 5 && (jobs["replication"]?.runs ?? 0) >= 2
        }
        // The source's newest entry before the stop (the simulator adds a no-op every 10 s, as mongod does).
        let newest = try #require(try S.client(source).find(.oplog).collect().last?["ts"]?.timestampValue)
        #expect(setup.terminate(daemon) == 0, "\(setup.text(log))")
        try #require(retained, "\(setup.text(log))")
        let state = setup.state
        let retention = try #require(state.jobs["retention"])
        #expect(retention.failures == 0 && retention.lastResult == "success" && state.gapsTotal == 0, "\(retention)\n\(setup.text(log))")
        #expect(retention.lastSummary?.contains("copy:") == true, "\(retention)")

        let snapshotRuns = state.jobs["snapshot"]?.runs ?? 0
        for path in [setup.repo, offsite] {
            let repository = try Repository.open(storage: try LocalBackend(path: path), passphrase: TestRepository.passphrase)
            let view = try TimelineView.load(repository)
            // Forgotten: far fewer snapshots than were taken (keep_last = 2, plus any taken since the last run).
            #expect(view.snapshots.count < snapshotRuns, "\(path): \(view.snapshots.count) of \(snapshotRuns)")
            let planner = RestorePlanner(view: view)
            let kept = view.snapshots.compactMap(\.record.end)
            for end in kept { _ = try planner.plan(.timestamp(end)) }
            _ = try planner.plan(.latest)
            let report = try IntegrityCheck(repository: repository).run(readData: true)
            #expect(report.problems.isEmpty, "\(path): \(report.problems.map(\.message))")
            if path == setup.repo {
                // keep_last without a PITR window keeps the oplog from the newest kept snapshot on
                // (older kept snapshots keep only their own spans): the tailer ran through every
                // forget and prune, so that last chain is unbroken, without gaps, and sealed on stop.
                let newestKept = try #require(view.snapshots.compactMap(\.record.start).max())
                let last = try #require(view.chains.last)
                #expect(view.gaps.isEmpty && last.first <= newestKept, "\(view.chains), newest kept snapshot starts at \(newestKept)")
                #expect(last.last >= OplogTime(t: newest.seconds, i: newest.increment), "\(view.chains)")
            }
        }

        // The primary, after retention, still restores to the source's final state.
        let target = try S.startServer(.simulator)
        defer { target.stop() }
        let restored = try setup.cli.run(["restore", "--repo", setup.repo, "--uri", target.uri, "--to", "latest"])
        try #require(restored.status == 0, "\(restored)")
        let sourceClient = try S.client(source)
        let targetClient = try S.client(target)
        let databases = try sourceClient.listDatabases().map(\.name).filter { !["admin", "local", "config"].contains($0) }
        #expect(!databases.isEmpty)
        for database in databases {
            #expect(try S.dbHash(targetClient, database) == S.dbHash(sourceClient, database), "\(database)")
        }
    }
}
