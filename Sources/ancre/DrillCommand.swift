import ArgumentParser
import Foundation
import Mongo
import Operations
import Recovery
import Repository

struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Rehearse a disaster recovery: restore a point into a scratch target, verify it, measure it, clean up.",
        discussion: """
            Picks a restore point (--to latest, random: a uniformly random second of the \
            restorable windows, ts:S:I or an RFC 3339 time), restores \
            it into the server at --target-uri under a scratch database prefix \
            (ancre_drill_<id>_<database>; --separate-server restores under the original \
            names into an empty server), and verifies what was restored against the \
            repository: per collection, the count and MD5 of the documents expected at \
            that point (the snapshot's leaves merged with the oplog's net effect, computed \
            independently of the restore) against the target's dbHash or the documents \
            read back, and the index definitions. A mismatch names the collection and the \
            first differing _id. The scratch databases are dropped afterwards unless --keep; \
            existing ones are never written over (exit 31).

            Reports go to --report-dir (default: a `drills` directory next to a local \
            repository, or $XDG_STATE_HOME/ancre/drills, else ~/.local/state/ancre/drills, \
            for S3): drill-<time>.json, a self-contained drill-<time>.html page with the \
            timeline of the restorable window, and history.jsonl. --history prints past \
            drills. A failed drill exits 40.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Option(name: .customLong("target-uri"), help: ArgumentHelp("The server to restore into (or ANCRE_DRILL_TARGET_URI).", valueName: "uri"))
    var targetURI: String?

    @Option(help: ArgumentHelp("latest, random, ts:S:I, or an RFC 3339 time.", valueName: "point"))
    var to: String = "latest"

    @Option(help: ArgumentHelp("Seed of --to random, to repeat a drill.", valueName: "n"))
    var seed: UInt64?

    @Flag(help: "Restore under the original names (the target is a separate, empty server).")
    var separateServer = false

    @Option(help: ArgumentHelp("Scratch database prefix (default: ancre_drill_<6 hex>_).", valueName: "prefix"))
    var scratchPrefix: String?

    @Flag(help: "Keep the restored data on the target.")
    var keep = false

    @Option(help: ArgumentHelp("Which copy this repository is, for the report: primary or off-site.", valueName: "role"))
    var role: String = "primary"

    @Option(help: ArgumentHelp("Where reports and the history go.", valueName: "dir"))
    var reportDir: String?

    @Option(help: ArgumentHelp("Replay mode: auto, applyOps or crud.", valueName: "mode"))
    var mode: String = "auto"

    @Option(help: "Parallel loaders and appliers.")
    var parallel = 4

    @Flag(help: "Print past drills instead of running one.")
    var history = false

    @Flag(help: "Print the report (or the history) as JSON.")
    var json = false

    func validate() throws {
        if !["auto", "applyOps", "crud"].contains(mode) { throw ValidationError("--mode is auto, applyOps or crud.") }
        if !["primary", "off-site"].contains(role) { throw ValidationError("--role is primary or off-site.") }
        if !(1...64).contains(parallel) { throw ValidationError("--parallel must be between 1 and 64.") }
        if seed != nil && to != "random" { throw ValidationError("--seed goes with --to random.") }
        if scratchPrefix != nil && separateServer { throw ValidationError("Give --scratch-prefix or --separate-server, not both.") }
    }

    func run() throws {
        try reportingErrors {
            let store = DrillHistory(directory: URL(fileURLWithPath: reportDirectory()))
            if history {
                try printHistory(try store.summaries())
                return
            }
            let point = try parsePoint()
            var options = DrillOptions(point: point, keep: keep, repositoryRole: role == "off-site" ? "off-site copy" : "primary",
                                       workers: parallel, mode: mode == "auto" ? nil : OplogApplier.Mode(rawValue: mode))
            if separateServer { options.scratchPrefix = nil }
            if let scratchPrefix { options.scratchPrefix = scratchPrefix }
            try options.validate()
            guard let uri = targetURI ?? ProcessInfo.processInfo.environment["ANCRE_DRILL_TARGET_URI"] else {
                throw CLIError(AncreExit.usage, "No drill target: give --target-uri (or set ANCRE_DRILL_TARGET_URI).")
            }
            // Opened on a meter, so the report gives the bytes the drill really read.
            let meter = DrillMeteredStorage(try repository.storage())
            let repo = try Repository.open(storage: meter, passphrase: try repository.passphrase(), options: RepositoryArguments.options)
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            // A point the user named must be restorable: refuse it like `restore` does (exit 30,
            // naming the nearest restorable times) rather than report a failed drill.
            if let named = try namedTarget() { _ = try RestorePlanner(view: try TimelineView.load(repo)).plan(named) }
            let client = try MongoClient(uri: uri, logger: CLILogging.logger)
            let report = try DrillRunner(repository: repo, location: repository.path, client: client, logger: CLILogging.logger,
                                         meter: meter).run(options)
            let files = try store.save(report)
            if json {
                try printJSON(report)
            } else {
                printSummary(report, page: files.html.path)
            }
            if !report.passed { throw ExitCode(AncreExit.drillFailed) }
        }
    }

    /// The restore target of an explicit `--to` (a time or a timestamp), nil for latest and random.
    private func namedTarget() throws -> RestoreTarget? {
        guard to != "random" else { return nil }
        let target = try RestoreTarget(parsing: to)
        return target == .latest ? nil : target
    }

    private func parsePoint() throws -> DrillOptions.Point {
        if to == "random" { return .random(seed: seed) }
        switch try RestoreTarget(parsing: to) {
        case .latest: return .latest
        case .time(let date): return .time(date)
        case .timestamp(let t): return .timestamp(t)
        case .before(let t): return .timestamp(t)
        }
    }

    /// --report-dir, else `drills` next to a local repository, else the state directory.
    private func reportDirectory() -> String {
        if let reportDir { return reportDir }
        if let path = repository.repo ?? ProcessInfo.processInfo.environment["ANCRE_REPOSITORY"], !path.hasPrefix("s3:") {
            return URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().appendingPathComponent("drills").path
        }
        let environment = ProcessInfo.processInfo.environment
        let state = environment["XDG_STATE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/state")
        return state.appendingPathComponent("ancre/drills").path
    }

    private func printSummary(_ r: DrillReport, page: String) {
        let m = r.measurements
        func s(_ v: Double?) -> String { v.map { String(format: "%.2f s", $0) } ?? "-" }
        print("drill \(r.id): \(r.passed ? "passed" : "FAILED")")
        print("point:    \(r.pointChoice) -> \(r.point?.ts ?? "none"), snapshot \(r.snapshot.map { String($0.prefix(8)) } ?? "-")")
        print("restore:  \(s(m.restoreSeconds)) (RTO), \(m.documentsLoaded.map(String.init) ?? "-") documents, \(m.entriesReplayed.map(String.init) ?? "-") entries replayed")
        print("data lag: \(s(m.rpoSeconds)) at drill time (RPO)")
        print("read:     \(m.bytesRead.map { Table.bytes($0) } ?? "-") from the repository (plan estimate \(m.plannedBytes.map { Table.bytes($0) } ?? "-"))")
        let rows = r.collections.map { c in
            [c.namespace, c.status.rawValue, c.method, "\(c.expectedCount)", c.restoredCount.map(String.init) ?? "?", c.firstDifferingID ?? ""]
        }
        if !rows.isEmpty {
            print(Table.render(header: ["collection", "check", "method", "expected", "restored", "first differing _id"], rows: rows))
        }
        for f in r.failures { print("error: \(f)") }
        for u in r.unverified { print("not verified: \(u)") }
        print("report:   \(page)")
    }

    private func printHistory(_ summaries: [DrillSummary]) throws {
        if json {
            try printJSON(summaries)
            return
        }
        guard !summaries.isEmpty else {
            print("no drills yet")
            return
        }
        func s(_ v: Double?) -> String { v.map { String(format: "%.1f", $0) } ?? "-" }
        print(Table.render(
            header: ["drill", "started", "outcome", "repository", "point", "RTO s", "RPO s", "collections", "problem"],
            rows: summaries.map { h in
                [h.id, h.started.formatted(.iso8601), h.outcome.rawValue, h.repositoryRole, h.point ?? "-", s(h.restoreSeconds),
                 s(h.rpoSeconds), "\(h.collections - h.failedCollections)/\(h.collections)", String((h.failure ?? "").prefix(80))]
            }))
    }
}
