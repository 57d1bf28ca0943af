import ArgumentParser
import BSON
import Capture
import Foundation
import Mongo
import Repository

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take a snapshot of a live MongoDB server.",
        discussion: """
            Reads every collection sorted by _id (several at once, large ones as \
            several _id ranges), with metadata and indexes, and stores the oplog \
            entries written meanwhile, so the snapshot restores to the moment the read \
            ended. Documents an earlier snapshot already holds cost nothing.

            The URI comes from --uri, --uri-file or ANCRE_MONGODB_URI (prefer the last \
            two when it holds a password: argv is visible to other users). Servers \
            without an oplog (standalone) need --snapshot-only: the snapshot is then \
            not point-in-time.

            Patterns: db.coll, db.* (or db), globs such as *.users. local is never \
            backed up; config and admin.system.* only with --include-system.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @OptionGroup var server: ServerArguments

    @Option(help: ArgumentHelp("Back up only namespaces matching this pattern (repeatable).", valueName: "pattern"))
    var include: [String] = []

    @Option(help: ArgumentHelp("Skip namespaces matching this pattern (repeatable).", valueName: "pattern"))
    var exclude: [String] = []

    @Flag(help: "Also back up config and admin.system.* (users, roles).")
    var includeSystem = false

    @Flag(help: "Take a snapshot without oplog bounds (for servers without an oplog): not point-in-time.")
    var snapshotOnly = false

    @Option(help: "Collections (and _id ranges) read at once.")
    var parallel = 4

    @Option(help: "A tag to record with the snapshot (repeatable).")
    var tag: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if !(1...64).contains(parallel) { throw ValidationError("--parallel must be between 1 and 64.") }
    }

    func run() throws {
        try reportingErrors {
            let uri = try server.connectionString()
            let filter = try NamespaceFilter(include: include, exclude: exclude, includeSystem: includeSystem)
            let client = try MongoClient(uri: uri, logger: CLILogging.logger)
            let repo = try repository.open()
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let progress = DumpProgress()
            let display = isatty(STDERR_FILENO) != 0 && !json ? ProgressDisplay(progress) : nil
            let dumper = SnapshotDumper(client: client, repository: repo, logger: CLILogging.logger, progress: progress)
            let result: BackupResult
            do {
                defer { display?.stop() }
                result = try dumper.run(BackupOptions(filter: filter, snapshotOnly: snapshotOnly, parallel: parallel, tags: tag))
            } catch let error as MongoError where error.code == .noOplog {
                throw CLIError(AncreExit.noOplog, "\(error.message) To back it up anyway without point-in-time consistency, run with --snapshot-only.")
            }
            let r = result.record
            let summary = BackupSummary(
                snapshot: result.snapshotID, source: client.redactedURI, pointInTime: result.pointInTime,
                start: r.start.map(\.description), end: r.end.map(\.description), collections: r.collections,
                documents: r.documents, bytes: r.bytes, addedBytes: r.addedBytes, oplogEntries: result.oplogEntries,
                droppedDuringSnapshot: result.droppedDuringSnapshot.map(\.description), seconds: result.seconds)
            if json {
                try printJSON(summary)
            } else {
                let rate = Double(r.bytes) / max(result.seconds, 0.001) / 1_048_576
                var line = "snapshot \(result.snapshotID.prefix(8)) saved: \(r.collections) collections, \(r.documents) documents, "
                    + "\(Table.bytes(r.bytes)) read, \(Table.bytes(r.addedBytes)) added, "
                    + String(format: "%.1f s (%.1f MiB/s)", result.seconds, rate)
                if let start = r.start, let end = r.end {
                    line += ", oplog \(start)..\(end) (\(result.oplogEntries) entries), consistent at \(end)"
                } else {
                    line += ", snapshot only: not point-in-time"
                }
                if !result.droppedDuringSnapshot.isEmpty {
                    line += "; dropped while read (the oplog replays them): "
                        + result.droppedDuringSnapshot.map(\.description).joined(separator: ", ")
                }
                print(line)
            }
        }
    }

    struct BackupSummary: Encodable {
        var snapshot: String
        var source: String
        var pointInTime: Bool
        var start: String?
        var end: String?
        var collections: Int
        var documents: UInt64
        var bytes: UInt64
        var addedBytes: UInt64
        var oplogEntries: Int
        var droppedDuringSnapshot: [String]
        var seconds: Double
    }
}

/// A one-line progress display on stderr (a terminal): bytes, documents, rate, ETA.
///
/// Threading: redraws from a thread of its own twice a second until `stop()`.
final class ProgressDisplay: @unchecked Sendable {
    // @unchecked: `stopped` is guarded by `condition`; the rest is immutable.
    private let progress: DumpProgress
    private let condition = NSCondition()
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    init(_ progress: DumpProgress) {
        self.progress = progress
        let thread = Thread { [self] in self.loop() }
        thread.name = "ancre-progress"
        thread.start()
    }

    func stop() {
        condition.lock()
        let wasStopped = stopped
        stopped = true
        condition.broadcast()
        condition.unlock()
        if !wasStopped { done.wait() }
    }

    private func loop() {
        let started = Date()
        while true {
            condition.lock()
            if !stopped { _ = condition.wait(until: Date().addingTimeInterval(0.5)) }
            let finished = stopped
            condition.unlock()
            let c = progress.snapshot()
            let elapsed = max(0.001, Date().timeIntervalSince(started))
            let rate = Double(c.bytes) / elapsed
            var line = "\(Table.bytes(c.bytes))"
            if c.expectedBytes > 0 { line += " of ~\(Table.bytes(c.expectedBytes))" }
            line += ", \(c.documents) documents, \(c.collectionsDone)/\(c.collectionsTotal) collections, "
                + String(format: "%.1f MiB/s", rate / 1_048_576)
            if let fraction = c.fraction, fraction > 0.01, fraction < 1, rate > 0 {
                let left = Double(c.expectedBytes - c.bytes) / rate
                line += String(format: ", ETA %.0f s", max(0, left))
            }
            let text = finished ? "\r\u{1B}[K" : "\r\u{1B}[K" + line
            FileHandle.standardError.write(Data(text.utf8))
            if finished {
                done.signal()
                return
            }
        }
    }
}
