import BSON
import Foundation
import Logging
import Mongo
import Recovery
import Repository

/// How a drill runs.
public struct DrillOptions: Sendable {
    /// Which restorable moment to drill.
    public enum Point: Sendable, Equatable {
        case latest
        case time(Date)
        case timestamp(OplogTime)
        /// A uniformly random second inside the restorable windows (seeded for tests).
        case random(seed: UInt64?)
    }

    public var point: Point = .latest
    /// Restore under `<prefix><database>` on the target (a scratch area of a shared
    /// server); nil restores under the original names, for a separate server.
    public var scratchPrefix: String? = DrillOptions.newScratchPrefix()
    /// Leave the restored data on the target (else it is dropped after the check).
    public var keep = false
    /// "primary" or "off-site copy": which repository this is, for the report.
    public var repositoryRole = "primary"
    public var workers = 4
    /// nil: applyOps where the target allows it, CRUD otherwise.
    public var mode: OplogApplier.Mode?
    /// Read every collection back instead of trusting the target's `dbHash`.
    public var readBack = false
    /// Called after the restore and before the verification (tests alter the target here).
    public var beforeVerify: (@Sendable (MongoClient, NamespaceMapping) throws -> Void)?

    public init(point: Point = .latest, scratchPrefix: String? = DrillOptions.newScratchPrefix(), keep: Bool = false,
                repositoryRole: String = "primary", workers: Int = 4, mode: OplogApplier.Mode? = nil) {
        self.point = point
        self.scratchPrefix = scratchPrefix
        self.keep = keep
        self.repositoryRole = repositoryRole
        self.workers = workers
        self.mode = mode
    }

    /// - Throws: `DrillError` `.badOptions` for a prefix that cannot start database names
    ///   or a worker count out of range.
    public func validate() throws {
        if let prefix = scratchPrefix {
            // Database names refuse `/\. "$` and are at most 64 bytes: keep room for the original name.
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
            guard !prefix.isEmpty, prefix.count <= 32, prefix.allSatisfy(allowed.contains) else {
                throw DrillError(.badOptions, "the scratch prefix '\(prefix)' must be 1 to 32 letters, digits, '_' or '-'")
            }
        }
        guard (1...64).contains(workers) else {
            throw DrillError(.badOptions, "a drill runs with 1 to 64 workers, not \(workers)")
        }
    }

    /// `ancre_drill_<6 hex>_`: database names stay well under MongoDB's 64 characters.
    public static func newScratchPrefix() -> String {
        "ancre_drill_" + String(UInt32.random(in: 0...0xFF_FFFF), radix: 16).leftPadded(to: 6) + "_"
    }
}

/// Runs a disaster-recovery drill: picks a restore point, restores it into a scratch
/// target, verifies the result against an expectation computed independently from
/// the repository, measures it, cleans up and returns the report.
///
/// The daemon calls `run` on a schedule and alerts on `!report.passed`; save reports
/// with `DrillHistory`. Blocking: run it off the cooperative pool. For example:
///
///     let meter = DrillMeteredStorage(offsiteStorage)
///     let repository = try Repository.open(storage: meter, passphrase: passphrase, options: options)
///     let report = try DrillRunner(repository: repository, location: "s3:…", client: scratchServer,
///                                  logger: logger, meter: meter)
///         .run(DrillOptions(point: .random(seed: nil), repositoryRole: "off-site copy"))
///     try DrillHistory(directory: stateDirectory.appendingPathComponent("drills")).save(report)
///     if !report.passed { alert(DrillSummary(report).failure ?? "drill failed") }
public struct DrillRunner: Sendable {
    let repository: Repository
    /// Where the repository is (shown in the report; never credentials).
    let location: String
    let client: MongoClient
    let logger: Logger
    /// The storage the repository was opened on, when it counts bytes read.
    let meter: DrillMeteredStorage?

    /// - Parameter meter: the storage `repository` was opened on, to report the bytes
    ///   the drill read; nil reports only the plan's estimate and the verification's reads.
    public init(repository: Repository, location: String, client: MongoClient, logger: Logger, meter: DrillMeteredStorage? = nil) {
        self.repository = repository
        self.location = location
        self.client = client
        self.logger = logger
        self.meter = meter
    }

    /// Runs one drill.
    /// - Returns: the report; damage, a failed restore or a mismatch is a report with
    ///   outcome `.failed` naming what is wrong.
    /// - Throws: `DrillError` `.targetNotEmpty` (before writing anything) when the scratch
    ///   namespaces already exist, `.badOptions` for a prefix that cannot start database
    ///   names or a worker count out of range; `RepositoryError` when the timeline cannot
    ///   be read; `MongoError` when the target cannot be listed.
    public func run(_ options: DrillOptions) throws -> DrillReport {
        try options.validate()
        let started = Date()
        let readBefore = meter?.bytesRead
        let view = try TimelineView.load(repository)
        var report = DrillReport(
            id: Self.reportID(started), started: started, finished: started, outcome: .failed, failures: [], unverified: [],
            repository: location, repositoryRole: options.repositoryRole, target: client.redactedURI,
            scratchPrefix: options.scratchPrefix, keptScratch: options.keep, pointChoice: Self.describe(options.point),
            point: nil, snapshot: nil,
            measurements: DrillMeasurements(verificationBytesRead: 0, entriesModelled: 0),
            collections: [], timeline: Self.timeline(view))
        if let newest = view.windows.map(\.to).max() {
            report.measurements.rpoSeconds = started.timeIntervalSince(newest.date)
        }

        // Plan.
        let plan: RestorePlan
        do {
            plan = try RestorePlanner(view: view).plan(try Self.target(options.point, view: view))
        } catch {
            report.failures.append("no restore point: \(error)")
            report.finished = Date()
            return report
        }
        report.snapshot = plan.snapshotID
        report.measurements.plannedBytes = plan.bytesToRead
        let mapping: NamespaceMapping
        if let prefix = options.scratchPrefix {
            mapping = try NamespaceMapping(renames: [(from: "*.*", to: Self.escaped(prefix) + "*.*")])
        } else {
            mapping = .identity
        }
        let manifest: SnapshotManifest
        do {
            manifest = try SnapshotCatalog(repository: repository).manifest(of: plan.snapshot)
        } catch {
            report.failures.append("cannot read the manifest of snapshot \(plan.snapshotID.prefix(8)) (blob \(plan.snapshot.manifest.hex)): \(error)")
            report.finished = Date()
            return report
        }
        try refuseExisting(manifest, mapping: mapping, prefix: options.scratchPrefix)

        // The expectation first: it reads every leaf and segment the restore needs, so
        // damage is named with the collection or segment it belongs to.
        let expectation: DrillExpectation?
        let expectationStarted = ContinuousClock.now
        do {
            let built = try DrillExpectation.build(repository: repository, manifest: manifest, plan: plan)
            report.measurements.entriesModelled = built.entriesRead
            report.measurements.verificationBytesRead = built.bytesRead
            for command in built.unmodelled {
                report.unverified.append("the oplog holds `\(command)` commands, whose effect the drill does not model")
            }
            for (_, problem) in built.problems.sorted(by: { $0.key < $1.key }) { report.failures.append(problem.message) }
            expectation = built
        } catch let problem as DrillProblem {
            report.failures.append(problem.message)
            expectation = nil
        } catch {
            report.failures.append("cannot compute the expected state: \(error)")
            expectation = nil
        }
        let expectationDuration = ContinuousClock.now - expectationStarted

        // Restore.
        var restored: RestoreResult?
        let restoreStarted = ContinuousClock.now
        do {
            let restoreOptions = RestoreOptions(mapping: mapping, drop: false, mode: options.mode, workers: options.workers)
            restored = try Restorer(repository: repository, client: client, logger: logger).run(plan, options: restoreOptions)
        } catch {
            report.failures.append("the restore failed: \(error)")
        }
        defer { if !options.keep { cleanUp(manifest, mapping: mapping, prefix: options.scratchPrefix) } }
        if let restored {
            report.measurements.restoreSeconds = Self.seconds(ContinuousClock.now - restoreStarted)
            report.measurements.loadSeconds = restored.loadSeconds
            report.measurements.replaySeconds = restored.replaySeconds
            report.measurements.entriesReplayed = restored.entriesReplayed
            report.measurements.documentsLoaded = restored.documents
            report.measurements.replayMode = restored.mode
        }
        let restoredTo = restored?.restoredTo.flatMap { Timestamp($0.dropFirst(3)) }.map { OplogTime(t: $0.seconds, i: $0.increment) }
        // The restore and the expectation read the oplog separately: they must end on the same entry.
        if let restored, let expectation, restoredTo != expectation.lastEntry {
            report.failures.append("the restore reports reaching \(restored.restoredTo ?? "no oplog entry") but the oplog up to the point ends at \(expectation.lastEntry.map { "ts:\($0)" } ?? "no entry")")
        }
        let pointTime = restoredTo ?? expectation?.lastEntry ?? plan.snapshot.end
        if let pointTime {
            report.point = DrillPoint(ts: "ts:\(pointTime)", time: Double(pointTime.t))
            report.timeline.drilled = Double(pointTime.t)
            report.measurements.pointAgeSeconds = started.timeIntervalSince(pointTime.date)
        }

        // Verify.
        if restored != nil, let expectation {
            let verifyStarted = ContinuousClock.now
            do {
                try options.beforeVerify?(client, mapping)
                report.collections = try DrillVerification(expectation: expectation, client: client, mapping: mapping,
                                                           readBack: options.readBack).run()
            } catch let problem as DrillProblem {
                report.failures.append(problem.message)
            } catch {
                report.failures.append("the verification failed: \(error)")
            }
            // Computing the expectation is part of the verification's cost.
            report.measurements.verifySeconds = Self.seconds(ContinuousClock.now - verifyStarted + expectationDuration)
            report.measurements.verificationBytesRead = expectation.bytesRead
        } else if restored != nil {
            report.unverified.append("the restored data was not verified: the expected state could not be computed")
        }
        for check in report.collections {
            switch check.status {
            case .failed: report.failures.append(contentsOf: check.problems.map { "\(check.namespace): \($0)" })
            case .unverified: report.unverified.append(contentsOf: check.problems.map { "\(check.namespace): \($0)" })
            case .passed: break
            }
        }
        if let readBefore, let meter { report.measurements.bytesRead = meter.bytesRead - readBefore }
        var seen: Set<String> = []
        report.failures = report.failures.filter { seen.insert($0).inserted }
        report.outcome = report.failures.isEmpty && report.unverified.isEmpty && restored != nil && !report.collections.isEmpty
            ? .passed : .failed
        if report.outcome == .failed && report.failures.isEmpty && report.unverified.isEmpty {
            report.unverified.append("nothing was verified: the snapshot holds no collection")
        }
        logger.info("drill finished", metadata: ["drill.id": "\(report.id)", "drill.outcome": "\(report.outcome.rawValue)"])
        report.finished = Date()
        return report
    }

    // MARK: Steps

    /// The target databases a drill writes: refuse before writing when any exists.
    private func refuseExisting(_ manifest: SnapshotManifest, mapping: NamespaceMapping, prefix: String?) throws {
        let existing = Set((try client.listDatabases()).map(\.name))
        let clashing: [String]
        if let prefix {
            clashing = existing.filter { $0.hasPrefix(prefix) }.sorted()
        } else {
            clashing = Set(manifest.collections.compactMap { c -> String? in
                guard DrillExpectation.isRestored(c.database, c.collection) else { return nil }
                return mapping.mapDatabase(c.database)
            }).intersection(existing).sorted()
        }
        if !clashing.isEmpty {
            throw DrillError(.targetNotEmpty, "the drill target already holds \(clashing.joined(separator: ", ")); a drill never writes over existing data: drill into an empty server or with a fresh scratch prefix")
        }
    }

    /// Drops every database the drill created.
    private func cleanUp(_ manifest: SnapshotManifest, mapping: NamespaceMapping, prefix: String?) {
        var databases = Set(manifest.collections.compactMap { mapping.mapDatabase($0.database) })
        if let prefix, let all = try? client.listDatabases() {
            databases.formUnion(all.map(\.name).filter { $0.hasPrefix(prefix) })
        }
        for database in databases.sorted() where database != "admin" && database != "local" && database != "config" {
            _ = try? client.runCommand(Document(["dropDatabase": .int32(1)]), database: database)
        }
    }

    // MARK: Choosing the point

    static func target(_ point: DrillOptions.Point, view: TimelineView) throws -> RestoreTarget {
        switch point {
        case .latest: return .latest
        case .time(let date): return .time(date)
        case .timestamp(let t): return .timestamp(t)
        case .random(let seed):
            var generator = SeededGenerator(seed: seed ?? UInt64.random(in: 1...UInt64.max))
            let windows = view.windows
            let total = windows.reduce(0) { $0 + Int($1.to.t - $1.from.t) + 1 }
            guard total > 0 else { return .latest }
            var pick = Int.random(in: 0..<total, using: &generator)
            for w in windows {
                let span = Int(w.to.t - w.from.t) + 1
                if pick < span {
                    let second = w.from.t + UInt32(pick)
                    // The window's last second ends at its last entry, not at the second's end.
                    return .timestamp(second == w.to.t ? w.to : OplogTime(t: second, i: UInt32.max))
                }
                pick -= span
            }
            return .latest
        }
    }

    static func describe(_ point: DrillOptions.Point) -> String {
        switch point {
        case .latest: "latest"
        case .time(let d): d.formatted(.iso8601)
        case .timestamp(let t): "ts:\(t)"
        case .random: "random"
        }
    }

    /// `drill-20261122T235959.123Z`: milliseconds, so drills started in one second keep their own files.
    static func reportID(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return "drill-" + f.string(from: date)
    }

    static func timeline(_ view: TimelineView) -> DrillTimeline {
        DrillTimeline(
            snapshots: view.snapshots.compactMap { s in
                s.record.end.map { DrillTimeline.Mark(time: Double($0.t), label: String(s.id.prefix(8))) }
            },
            coverage: view.chains.map { .init(from: Double($0.first.t), to: Double($0.last.t)) },
            gaps: view.gaps.compactMap { g in
                guard let after = g.after ?? g.before, let before = g.before ?? g.after else { return nil }
                return .init(from: Double(after.t), to: Double(before.t))
            },
            windows: view.windows.map { .init(from: Double($0.from.t), to: Double($0.to.t)) })
    }

    /// A prefix as a literal in a namespace pattern.
    static func escaped(_ text: String) -> String {
        text.map { $0 == "*" || $0 == "\\" ? "\\\($0)" : String($0) }.joined()
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// SplitMix64: a reproducible random point for a given seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
