import ArgumentParser
import Foundation
import Repository

struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Remove snapshots and oplog segments a retention policy does not keep.",
        discussion: """
            Rules work per source, on each snapshot's consistency time in UTC, as restic's: \
            --keep-daily 7 keeps the newest snapshot of each of the 7 newest days that have \
            one. --keep-within-pitr 7d keeps every second from 7 days ago to the newest \
            durable oplog entry restorable: the snapshot at or before the window's start and \
            every segment after it. Every kept snapshot keeps the segments from its start to \
            its consistency point, and the segments after the newest kept snapshot are never \
            removed; a source none of whose snapshots a rule keeps keeps its newest. Forget removes records only; `ancre prune` (or --prune) reclaims the \
            space. It runs beside `ancre tail`; backups and restores lock it out (exit 13).

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Option(help: ArgumentHelp("Keep the newest N snapshots.", valueName: "n")) var keepLast = 0
    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the N newest hours.", valueName: "n")) var keepHourly = 0
    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the N newest days.", valueName: "n")) var keepDaily = 0
    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the N newest ISO weeks.", valueName: "n")) var keepWeekly = 0
    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the N newest months.", valueName: "n")) var keepMonthly = 0
    @Option(help: ArgumentHelp("Keep the newest snapshot of each of the N newest years.", valueName: "n")) var keepYearly = 0

    @Option(help: ArgumentHelp("Keep every second of this last period restorable: 7d, 36h, 90m, 2w.", valueName: "duration"))
    var keepWithinPitr: String?

    @Flag(help: "Print what would be removed and kept, and why; change nothing.")
    var dryRun = false

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Run `ancre prune` afterwards.")
    var prune = false

    @OptionGroup var pruneOptions: PruneArguments

    var policy: RetentionPolicy {
        RetentionPolicy(last: keepLast, hourly: keepHourly, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly,
                        yearly: keepYearly, withinPITR: keepWithinPitr.flatMap(parsePeriod))
    }

    func validate() throws {
        for (name, n) in [("last", keepLast), ("hourly", keepHourly), ("daily", keepDaily), ("weekly", keepWeekly),
                          ("monthly", keepMonthly), ("yearly", keepYearly)] where n < 0 {
            throw ValidationError("--keep-\(name): expected a count of 0 or more, got \(n)")
        }
        if let keepWithinPitr, parsePeriod(keepWithinPitr) == nil {
            throw ValidationError("--keep-within-pitr: not a period like 7d, 36h, 90m or 2w: '\(keepWithinPitr)'")
        }
        if policy.isEmpty {
            throw ValidationError("give at least one --keep-… rule: forget without rules would remove every snapshot")
        }
    }

    /// Parses `7d`, `36h`, `90m`, `600s`, `2w`.
    struct Output: Encodable {
        var forget: ForgetPlan
        var dryRun: Bool
        var result: ForgetResult?
        var prune: PruneCommand.Output?
    }

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            // Exclusive: no backup may add a snapshot and no restore may read segments while
            // they go; tailers (append locks) keep running.
            let lock = try pruneOptions.lock(repo)
            defer { try? lock.release() }
            let plan = policy.plan(try TimelineView.load(repo), now: Date())
            var output = Output(forget: plan, dryRun: dryRun)
            if !json { print(Self.render(plan, pitrRequested: policy.withinPITR != nil)) }
            if dryRun {
                if json { try printJSON(output) }
                return
            }
            output.result = try repo.forget(plan)
            if !json {
                print("removed \(plan.removedSnapshots.count) snapshot(s) and \(plan.segmentsRemoved) oplog segment(s); run `ancre prune` to reclaim their space")
            }
            if prune {
                output.prune = try PruneCommand.prune(repo, lock: lock, options: try pruneOptions.options(), dryRun: false, json: json)
            }
            if json { try printJSON(output) }
        }
    }

    static func render(_ plan: ForgetPlan, pitrRequested: Bool) -> String {
        let rows = plan.snapshots.map { d in
            [String(d.id.prefix(8)), d.time.formatted(.iso8601), d.end.map { "ts:\($0)" } ?? "-", d.source,
             d.keep ? "keep" : "remove", d.reasons.joined(separator: ", ")]
        }
        var lines = ["Policy: \(plan.policy)"]
        lines.append(Table.render(header: ["ID", "Consistent at", "Oplog", "Source", "Action", "Why"], rows: rows))
        if let w = plan.pitrWindow {
            lines.append("Point-in-time window kept: \(w.from.date.formatted(.iso8601)) (ts:\(w.from)) .. \(w.to.date.formatted(.iso8601)) (ts:\(w.to))")
        } else if pitrRequested {
            lines.append("Point-in-time window: empty (no oplog segment reaches into it; is `ancre tail` running?)")
        }
        lines.append("Snapshots: keep \(plan.keptSnapshots.count), remove \(plan.removedSnapshots.count)")
        lines.append("Oplog segments: keep \(plan.segmentsKept) (\(Table.bytes(plan.segmentBytesKept))), remove \(plan.segmentsRemoved) (\(Table.bytes(plan.segmentBytesRemoved)))")
        return lines.joined(separator: "\n")
    }
}
