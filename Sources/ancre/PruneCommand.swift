import ArgumentParser
import Foundation
import Repository

/// Options shared by `prune` and `forget`.
struct PruneArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Repack a pack when more than this share of it is unused: 5%, 0%, 100%.", valueName: "percent"))
    var maxUnused: String = "5%"

    @Option(help: ArgumentHelp("While the repository is locked (a backup, or a compaction run of `ancre tail`), retry this long: 30s, 5m.", valueName: "duration"))
    var retryLock: String = "0s"

    func validate() throws {
        _ = try options()
        guard retryLockDuration != nil else { throw ValidationError("--retry-lock: not a duration like 30s or 5m: '\(retryLock)'") }
    }

    var retryLockDuration: Duration? { retryLock == "0s" || retryLock == "0" ? .zero : parsePeriod(retryLock) }

    /// The exclusive lock forget and prune hold.
    func lock(_ repo: Repository) throws -> RepositoryLock {
        try repo.lock(kind: .exclusive, retryFor: retryLockDuration ?? .zero)
    }

    func options() throws -> PruneOptions {
        let digits = maxUnused.hasSuffix("%") ? String(maxUnused.dropLast()) : maxUnused
        guard let percent = Double(digits), percent >= 0, percent <= 100 else {
            throw ValidationError("--max-unused: expected a percentage from 0% to 100%, got '\(maxUnused)'")
        }
        return PruneOptions(maxUnusedFraction: percent / 100)
    }
}

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete packs no kept snapshot or oplog segment uses, and repack mostly-unused ones.",
        discussion: """
            Marks what kept snapshots and live oplog segments need (each shared tree node \
            once), then deletes unused packs and packs no index lists, repacks packs whose \
            unused share exceeds --max-unused, and rewrites the index. Safe to interrupt; a \
            later prune finishes the job. It runs beside `ancre tail` (it waits up to 2 \
            minutes for the tailer to settle); backups and restores lock it out (exit 13).

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments
    @OptionGroup var pruneOptions: PruneArguments

    @Flag(help: "Print what would be deleted and repacked; change nothing.")
    var dryRun = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Output: Encodable {
        var plan: PrunePlan.Summary
        var dryRun: Bool
        var result: PruneResult?
    }

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            let lock = try pruneOptions.lock(repo)
            defer { try? lock.release() }
            let output = try Self.prune(repo, lock: lock, options: try pruneOptions.options(), dryRun: dryRun, json: json)
            if json { try printJSON(output) }
        }
    }

    /// Plans, prints (unless `json`) and, unless `dryRun`, executes.
    static func prune(_ repo: Repository, lock: RepositoryLock, options: PruneOptions, dryRun: Bool, json: Bool) throws -> Output {
        let pruner = Pruner(repository: repo, options: options)
        let plan = try pruner.plan(lock: lock)
        let s = plan.summary
        if !json {
            print("""
                Marked \(s.liveBlobs) live blobs of \(s.blobs) (\(s.snapshots) snapshots, \(s.nodesVisited) distinct tree nodes, \(s.segments) oplog segments)
                Packs: \(s.packs); delete \(s.packsToDelete) unused and \(s.unreferencedPacks) unreferenced, repack \(s.packsToRepack) (\(s.blobsToRepack) blobs, \(Table.bytes(s.bytesToRepack))), keep \(s.packsKept) (\(Table.bytes(s.unusedBytesKept)) unused left), \(s.packsProtected) written meanwhile
                """)
        }
        var output = Output(plan: s, dryRun: dryRun)
        guard !dryRun else {
            if !json { print("would free \(Table.bytes(max(0, s.bytesDeleted - s.bytesToRepack)))") }
            return output
        }
        let result = try pruner.execute(plan)
        output.result = result
        if !json {
            print("deleted \(result.packsDeleted) packs and \(result.indexFilesDeleted) index files, wrote \(result.packsWritten) packs and \(result.indexFilesWritten) index files: freed \(Table.bytes(max(0, result.bytesFreed)))")
        }
        return output
    }
}
