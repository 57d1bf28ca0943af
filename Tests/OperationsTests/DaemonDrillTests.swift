import Foundation
import Mongo
import Repository
import Testing
import TestSupport
@testable import Operations

/// The daemon's `[drill]` job: drills of the off-site copy on a compressed clock, reports
/// in the state directory, scratch databases dropped, and a failing drill alerts.
@Suite("ancre daemon drills", .serialized, .timeLimit(.minutes(3)))
struct DaemonDrillTests {
    typealias S = DaemonTestSupport

    @Test(.enabled(if: S.available))
    func scheduledDrillsOfTheOffsiteCopyPassAndLeaveNothingBehind() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        let scratch = try S.startServer(.simulator)
        defer { scratch.stop() }
        let initial = try S.loadgen(uri: source.uri, seconds: 1, seed: 3, oracle: nil)
        initial.waitUntilExit()
        let setup = try DaemonSetup(sourceURI: source.uri, tables: """
            [offsite.copy]
            location = "offsite"
            [replication]
            schedule = "*/30 * * * *"
            [drill]
            schedule = "15,45 * * * *"
            repository = "copy"
            target_uri_file = "drill-uri"
            """)
        try setup.write("drill-uri", scratch.uri + "\n")
        try FileManager.default.createDirectory(at: setup.directory.appendingPathComponent("offsite"), withIntermediateDirectories: true)
        let load = try S.loadgen(uri: source.uri, seconds: 3, seed: 4, oracle: nil)
        let (daemon, log) = try setup.startDaemon(log: "daemon.log")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }

        // A drill that fires before the first copy lands fails (nothing to restore); the next ones must pass.
        let passed = setup.wait(90) { setup.state.jobs["drill"]?.lastSuccess != nil && setup.state.jobs["drill"]?.running == false }
        load.waitUntilExit()
        #expect(setup.terminate(daemon) == 0, "\(setup.text(log))")
        try #require(passed, "no drill passed:\n\(setup.text(log))")
        let record = try #require(setup.state.jobs["drill"])
        #expect(record.lastSummary?.contains("passed") == true && record.lastSummary?.contains("from copy") == true, "\(record)")

        // Reports and history in the state directory, readable by `ancre drill --history`.
        let drills = URL(fileURLWithPath: setup.stateDirectory).appendingPathComponent("drills")
        let history = try DrillHistory(directory: drills).summaries()
        let last = try #require(history.last)
        #expect(last.outcome == .passed && last.repositoryRole.contains("off-site"), "\(last)")
        let listed = try setup.cli.run(["drill", "--repo", setup.directory.appendingPathComponent("offsite").path,
                                        "--report-dir", drills.path, "--history"])
        #expect(listed.status == 0 && listed.stdout.contains(last.id), "\(listed)")

        // The scratch server holds nothing afterwards: every drill dropped its databases.
        let leftovers = try S.client(scratch).listDatabases().map(\.name).filter { $0.hasPrefix("ancre_drill_") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
