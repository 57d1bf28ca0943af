import BSON
import Foundation
import Mongo
import Repository
import Testing
import TestSupport
@testable import Operations

/// `ancre daemon` end to end on a compressed clock (ANCRE_DAEMON_TIME_SCALE=1800: the
/// two-hourly snapshot fires every 4 s), against the simulator under loadgen.
@Suite("ancre daemon", .serialized, .timeLimit(.minutes(3)))
struct DaemonRunTests {
    typealias S = DaemonTestSupport

    @Test(.enabled(if: S.available))
    func scheduledSnapshotsAndReplicationRestoreFromTheOffsiteCopyAlone() throws {
        let source = try S.startServer(.simulator, arguments: ["--txn-chunk-ops", "40"])
        defer { source.stop() }
        let initial = try S.loadgen(uri: source.uri, seconds: 1, seed: 1, oracle: nil)
        initial.waitUntilExit()
        let setup = try DaemonSetup(sourceURI: source.uri, tables: """
            [offsite.copy]
            location = "offsite"
            [snapshot]
            schedule = "0 */2 * * *"
            [replication]
            schedule = "30 */2 * * *"
            """)
        let offsite = setup.directory.appendingPathComponent("offsite").path
        try FileManager.default.createDirectory(atPath: offsite, withIntermediateDirectories: true)

        let (daemon, log) = try setup.startDaemon(log: "daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try #require(setup.wait(15) { setup.state.jobs["snapshot"]?.runs ?? 0 >= 1 }, "the first snapshot runs at start:\n\(setup.text(log))")
        let oracleFile = setup.directory.appendingPathComponent("oracle.jsonl")
        let load = try S.loadgen(uri: source.uri, seconds: 8, seed: 2, oracle: oracleFile)

        // Scrape /metrics while the load runs.
        let address = try #require(setup.metricsAddress(log), "\(setup.text(log))")
        #expect(address.hasPrefix("127.0.0.1:"), "loopback")
        try #require(setup.wait(10) { setup.state.lastDurableOplog != nil })
        let (status, metrics) = try S.get(address, "/metrics")
        #expect(status == 200)
        for name in ["ancre_oplog_last_durable_timestamp_seconds ", "ancre_rpo_seconds ", "ancre_job_last_success_timestamp_seconds{job=\"snapshot\"} ",
                     "ancre_job_failures_total{job=\"snapshot\"} 0", "ancre_repository_stored_bytes ", "ancre_errors_total 0"] {
            #expect(metrics.contains(name), "metrics lack \(name):\n\(metrics)")
        }
        #expect(try S.get(address, "/other").0 == 404)

        load.waitUntilExit()
        let loadEnded = Date()
        // A replication that started after the load ended (and the tailer sealed it) carries every oracle moment.
        let replicated = setup.wait(30) { (setup.state.jobs["replication"]?.lastStart ?? .distantPast) > loadEnded.addingTimeInterval(1)
            && setup.state.jobs["replication"]?.running == false && (setup.state.jobs["snapshot"]?.runs ?? 0) >= 3 }
        #expect(replicated, "\(setup.text(log))")
        #expect(setup.wait(10) { setup.state.jobs["snapshot"]?.running == false })
        #expect(setup.terminate(daemon) == 0, "\(setup.text(log))")
        let text = setup.text(log)
        #expect(text.contains("daemon stopped"))

        let state = setup.state
        let snapshotRuns = state.jobs["snapshot"]?.runs ?? 0
        #expect(snapshotRuns >= 3, "the first snapshot and at least two scheduled ones: \(snapshotRuns)")
        #expect(state.jobs["snapshot"]?.failures == 0 && state.jobs["replication"]?.failures == 0, "\(text)")
        #expect((state.jobs["replication"]?.runs ?? 0) >= 1 && state.errorsTotal == 0 && state.gapsTotal == 0)
        #expect(setup.alerts.isEmpty, "\(setup.alerts)")

        // Clean shutdown: locks released in both repositories; the open segment sealed up to the source's last entry.
        let primary = try Repository.open(storage: try LocalBackend(path: setup.repo), passphrase: TestRepository.passphrase)
        let copy = try Repository.open(storage: try LocalBackend(path: offsite), passphrase: TestRepository.passphrase)
        #expect(try primary.listLocks().isEmpty && copy.listLocks().isEmpty)
        let newest = try #require(try S.client(source).find(.oplog).collect().last)
        let newestTS = try #require(newest["ts"]?.timestampValue)
        #expect(try TimelineView.load(primary).chains.last?.last == OplogTime(t: newestTS.seconds, i: newestTS.increment))
        #expect(try SnapshotCatalog(repository: primary).list().count == snapshotRuns)

        // ancre status: healthy, exit 0.
        let report = try setup.cli.run(["status", "--config", setup.configPath])
        #expect(report.status == 0, "\(report)")
        #expect(report.stdout.contains("snapshot:") && report.stdout.contains("success") && report.stdout.contains("replication:")
            && report.stdout.contains("healthy"), "\(report)")
        let json = try setup.cli.run(["status", "--config", setup.configPath, "--json"])
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((decoded?["problems"] as? [Any])?.isEmpty == true && decoded?["rpoSeconds"] != nil, "\(json)")

        // Restore from the off-site copy alone to a random moment the oracle recorded.
        let oracle = try S.Oracle.read(oracleFile)
        let windows = try TimelineView.load(copy).windows
        let candidates = oracle.filter { record in windows.contains { $0.from <= record.ts && record.ts <= $0.to } }
        try #require(candidates.count >= 3, "oracle moments inside the off-site copy's windows: \(candidates.count) of \(oracle.count)")
        let record = candidates.randomElement()!
        let target = try S.startServer(.simulator)
        defer { target.stop() }
        try? FileManager.default.removeItem(atPath: setup.repo)  // the primary is gone: only the copy remains
        let restored = try setup.cli.run(["restore", "--repo", offsite, "--uri", target.uri, "--to", "ts:\(record.ts)",
                                          "--checkpoint", setup.directory.appendingPathComponent("checkpoint.json").path])
        try #require(restored.status == 0, "\(restored)")
        let targetClient = try S.client(target)
        for (database, hashes) in record.hashes {
            #expect(try S.dbHash(targetClient, database) == hashes, "\(database) at ts:\(record.ts)")
        }
        print("daemon: \(snapshotRuns) snapshots, \(state.jobs["replication"]?.runs ?? 0) replications; restored the off-site copy to ts:\(record.ts) (\(candidates.count) candidate moments)")
    }

    @Test(.enabled(if: S.available))
    func refusesAnExposedConfigAndReportsAFailingJobAndTheRPO() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        _ = try S.client(source).runCommand(Document(["insert": .string("c"), "documents": .array([.document(Document(["_id": .int32(1)]))])]), database: "d")
        // The off-site location is a file: every copy fails.
        let setup = try DaemonSetup(sourceURI: source.uri, tables: """
            [offsite.broken]
            location = "not-a-directory"
            [replication]
            schedule = "\(DaemonSetup.dailyAt(hoursFromNow: 2))"
            """, rpoThreshold: "3s")
        try setup.write("not-a-directory", "a file")

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: setup.configPath)
        let refused = try setup.cli.run(["daemon", "--config", setup.configPath])
        #expect(refused.status == 64 && refused.stderr.contains("accessible to group or others") && refused.stderr.contains("chmod 600"), "\(refused)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: setup.configPath)

        let (daemon, log) = try setup.startDaemon(log: "daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try #require(setup.wait(10) { setup.state.pid == daemon.processIdentifier }, "\(setup.text(log))")
        let second = try setup.cli.run(["daemon", "--config", setup.configPath])
        #expect(second.status == 64 && second.stderr.contains("another ancre daemon (pid \(daemon.processIdentifier)) uses the state directory"), "\(second)")
        // 2 scheduled hours = 4 s; two attempts, 1 scheduled hour (2 s) apart.
        let failed = setup.wait(20) { setup.state.jobs["replication"]?.failures == 2 && setup.state.jobs["replication"]?.running == false }
        #expect(failed, "\(setup.text(log))")
        #expect(setup.terminate(daemon) == 0)
        let state = setup.state
        #expect(state.jobs["replication"]?.runs == 2 && state.jobs["replication"]?.lastResult == "failure")
        #expect(state.errorsTotal >= 2)
        let alerts = setup.alerts.filter { $0.hasPrefix("job_failed|replication|") }
        #expect(alerts.count == 1, "two failures within repeat_after alert once: \(setup.alerts)")

        // The source wrote nothing after the first seconds: the RPO passed 3 s and alerted once.
        #expect(setup.alerts.filter { $0.hasPrefix("rpo||RPO is ") }.count == 1, "\(setup.alerts)")

        let report = try setup.cli.run(["status", "--config", setup.configPath])
        #expect(report.status == 41, "\(report)")
        #expect(report.stdout.contains("UNHEALTHY") && report.stdout.contains("the last replication run failed")
            && report.stdout.contains("exceeds the threshold of 3 s"), "\(report)")
    }

    @Test(.enabled(if: S.available))
    func aGapInTheOplogAlertsAndTriggersASnapshot() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        let client = try S.client(source)
        let ns = Namespace(database: "d", collection: "c")
        func insert(_ range: Range<Int>) throws {
            _ = try client.insertMany(range.map { Document(["_id": .int32(Int32($0))]) }, into: ns)
        }
        try insert(0..<50)
        let setup = try DaemonSetup(sourceURI: source.uri, tables: "[snapshot]\nschedule = \"\(DaemonSetup.dailyAt(hoursFromNow: 12))\"\n")
        let (first, log1) = try setup.startDaemon(log: "first.log")
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        try #require(setup.wait(15) { setup.state.jobs["snapshot"]?.runs == 1 && setup.state.jobs["snapshot"]?.running == false }, "\(setup.text(log1))")
        try insert(50..<60)
        Thread.sleep(forTimeInterval: 1)
        #expect(setup.terminate(first) == 0)

        // While the daemon is down, the oplog rolls past its last durable entry.
        try insert(60..<100)
        _ = try client.runAdminCommand(Document(["simTruncateOplog": .int32(1), "keep": .int32(5)]))
        let (second, log2) = try setup.startDaemon(log: "second.log")
        defer { if second.isRunning { kill(second.processIdentifier, SIGKILL) } }
        let snapshotAfterGap = setup.wait(20) {
            setup.state.gapsTotal == 1 && setup.state.jobs["snapshot"]?.runs == 2 && setup.state.jobs["snapshot"]?.running == false
        }
        let metrics = try setup.metricsAddress(log2).map { try S.get($0, "/metrics").1 } ?? ""
        #expect(setup.terminate(second) == 0)
        try #require(snapshotAfterGap, "a gap asks for a snapshot at once:\n\(setup.text(log2))")
        #expect(metrics.contains("ancre_oplog_gaps_total 1"), "\(metrics)")
        #expect(setup.alerts.filter { $0.hasPrefix("gap||gap in the oplog after ts:") }.count == 1, "\(setup.alerts)")
        #expect(setup.text(log2).contains("job requested ahead of its schedule"))

        // The snapshot after the gap makes the repository whole again: status is healthy and shows the gap.
        let report = try setup.cli.run(["status", "--config", setup.configPath])
        #expect(report.status == 0 && report.stdout.contains("gaps:               1 (last: after ts:"), "\(report)")
    }
}
