import ArgumentParser
import Foundation
import Mongo
import Recovery
import Repository

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a server to any restorable moment: a snapshot plus the oplog up to the target.",
        discussion: """
            Targets are inclusive: every oplog entry with ts <= the target is applied. \
            --to takes `latest`, `ts:SECONDS:INCREMENT`, or an RFC 3339 time (which includes \
            every entry of its second); --before ts:S:I applies everything strictly before \
            an entry, to undo a fatal operation found with `ancre oplog search`. A target \
            in a gap or outside the restorable window is refused (exit 30) with the \
            nearest restorable times. --dry-run prints the plan.

            Collections load with parallel batched inserts (indexes after the data); the \
            oplog replays in batched applyOps, or as CRUD operations where the target \
            refuses applyOps. Existing non-empty collections are refused unless --drop. \
            An interrupted restore resumes from its checkpoint when run again.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments
    @OptionGroup var server: ServerArguments

    @Option(help: ArgumentHelp("latest, ts:S:I, or an RFC 3339 time.", valueName: "target"))
    var to: String?

    @Option(help: ArgumentHelp("Everything strictly before this entry (ts:S:I).", valueName: "ts"))
    var before: String?

    @Option(help: ArgumentHelp("Use this snapshot (an id or a prefix) as the base.", valueName: "id"))
    var snapshot: String?

    @Flag(help: "Print the plan and stop.")
    var dryRun = false

    @Option(name: .customLong("nsInclude"), help: ArgumentHelp("Restore only matching namespaces (repeatable).", valueName: "pattern"))
    var nsInclude: [String] = []

    @Option(name: .customLong("nsExclude"), help: ArgumentHelp("Skip matching namespaces (repeatable).", valueName: "pattern"))
    var nsExclude: [String] = []

    @Option(name: .customLong("nsFrom"), help: ArgumentHelp("Rename: source pattern, paired with --nsTo (repeatable).", valueName: "pattern"))
    var nsFrom: [String] = []

    @Option(name: .customLong("nsTo"), help: ArgumentHelp("Rename: target pattern, paired with --nsFrom.", valueName: "pattern"))
    var nsTo: [String] = []

    @Flag(help: "Drop target collections before loading them.")
    var drop = false

    @Option(help: ArgumentHelp("Replay mode: auto, applyOps or crud.", valueName: "mode"))
    var mode: String = "auto"

    @Option(help: "Parallel loaders and appliers.")
    var parallel = 4

    @Option(help: ArgumentHelp("Checkpoint file for resuming (default: .ancre-restore.json in the current directory; `none` to disable).", valueName: "file"))
    var checkpoint: String = ".ancre-restore.json"

    @Flag(help: "Print the plan or the result as JSON.")
    var json = false

    func validate() throws {
        if to != nil && before != nil { throw ValidationError("Give --to or --before, not both.") }
        if nsFrom.count != nsTo.count { throw ValidationError("Each --nsFrom needs its --nsTo.") }
        if !["auto", "applyOps", "crud"].contains(mode) { throw ValidationError("--mode is auto, applyOps or crud.") }
        if !(1...64).contains(parallel) { throw ValidationError("--parallel must be between 1 and 64.") }
    }

    func run() throws {
        try reportingErrors {
            let target: RestoreTarget = try before.map(RestoreTarget.init(before:))
                ?? RestoreTarget(parsing: to ?? "latest")
            let repo = try repository.open()
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let view = try TimelineView.load(repo)
            let plan = try RestorePlanner(view: view).plan(target, snapshot: snapshot)
            if dryRun {
                try printPlan(plan)
                return
            }
            let client = try MongoClient(uri: try server.connectionString(), logger: CLILogging.logger)
            let mapping = try NamespaceMapping(include: nsInclude, exclude: nsExclude,
                                               renames: zip(nsFrom, nsTo).map { (from: $0, to: $1) })
            let options = RestoreOptions(
                mapping: mapping, drop: drop, mode: mode == "auto" ? nil : OplogApplier.Mode(rawValue: mode),
                workers: parallel, checkpointPath: checkpoint == "none" ? nil : checkpoint)
            let interactive = isatty(STDERR_FILENO) != 0 && !json
            let result = try Restorer(repository: repo, client: client, logger: CLILogging.logger).run(plan, options: options) { phase, done, total in
                guard interactive else { return }
                FileHandle.standardError.write(Data("\r\(phase): \(done)/\(total)   ".utf8))
            }
            if interactive { FileHandle.standardError.write(Data("\r".utf8)) }
            if json {
                try printJSON(result)
            } else {
                print("restored snapshot \(result.snapshot.prefix(8)) to \(result.restoredTo ?? "its consistency point"): "
                    + "\(result.collections) collections, \(result.documents) documents loaded in "
                    + String(format: "%.1f s", result.loadSeconds) + ", \(result.entriesReplayed) oplog entries replayed ("
                    + "\(result.mode)) in " + String(format: "%.1f s", result.replaySeconds) + (result.resumed ? " (resumed)" : ""))
            }
        }
    }

    private func printPlan(_ plan: RestorePlan) throws {
        if json {
            try printJSON(PlanSummary(plan))
            return
        }
        let s = plan.snapshot
        Swift.print("""
            target:        \(plan.target)\(plan.limit.map { " (apply entries with \($0))" } ?? "")
            base snapshot: \(plan.snapshotID.prefix(8)) taken \(s.time.formatted(.iso8601)), consistent at \(s.end.map { "ts:\($0)" } ?? "-")
            load:          \(s.collections) collections, \(s.documents) documents, \(Table.bytes(s.bytes))
            replay:        from \(plan.from.map { "ts:\($0)" } ?? "-"), snapshot oplog plus \(plan.segments.count) segments, up to \(plan.entriesToReplay) entries
            read:          about \(Table.bytes(plan.bytesToRead))
            estimate:      \(String(format: "%.0f", plan.estimatedSeconds.rounded(.up))) s
            """)
        if let w = plan.window {
            Swift.print("window:        ts:\(w.from) to ts:\(w.to) (\(w.from.date.formatted(.iso8601)) to \(w.to.date.formatted(.iso8601)))")
        }
    }

    struct PlanSummary: Encodable {
        var target: String
        var limit: String?
        var snapshot: String
        var snapshotEnd: String?
        var documents: UInt64
        var segments: Int
        var entriesToReplay: Int
        var bytesToRead: UInt64
        var estimatedSeconds: Double

        init(_ p: RestorePlan) {
            target = p.target.description
            limit = p.limit?.description
            snapshot = p.snapshotID
            snapshotEnd = p.snapshot.end.map { "ts:\($0)" }
            documents = p.documentsToLoad
            segments = p.segments.count
            entriesToReplay = p.entriesToReplay
            bytesToRead = p.bytesToRead
            estimatedSeconds = p.estimatedSeconds
        }
    }
}
