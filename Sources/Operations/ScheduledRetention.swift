import Foundation
import Logging
import Repository

extension Daemon {
    /// The `retention` job: `forget` by the `[retention]` rules, then `prune`, on the
    /// primary and then on every off-site copy. Replication only adds, so each copy
    /// applies the same policy itself and stays restorable on its own.
    ///
    /// The tailer keeps running (it holds an append lock, which forget and prune
    /// tolerate). A snapshot or a replication in progress holds a lock that excludes
    /// forget; the job waits for it up to `lockWait` and then fails, to be retried. An
    /// off-site copy that replication has not created yet is skipped.
    static func retain(_ job: DaemonConfig.RetentionJob, config: DaemonConfig, passphrase primaryPassphrase: String,
                       environment: [String: String], context: DaemonJobContext, logger: Logger,
                       lockWait: Duration = jobLockWait) throws -> DaemonJobOutcome {
        let policy = RetentionPolicy(last: job.keepLast ?? 0, hourly: job.keepHourly ?? 0, daily: job.keepDaily ?? 0,
                                     weekly: job.keepWeekly ?? 0, monthly: job.keepMonthly ?? 0, yearly: job.keepYearly ?? 0,
                                     withinPITR: job.keepWithinPITR)
        var parts: [String] = []
        var freed = 0
        var stored: Int?
        for location in [config.repository] + config.offsite {
            if context.isStopping() { break }
            let passphrase = location.passwordFile != nil || location.passwordEnvironment != nil
                ? try location.passphrase(environment: environment) : primaryPassphrase
            let repository: Repository
            do {
                repository = try Repository.open(storage: try location.storage(), passphrase: passphrase, options: RepositoryOptions(logger: logger))
            } catch let error as RepositoryError where error.code == .repositoryNotFound && location.name != config.repository.name {
                // Replication creates the copy; until its first run there is nothing to retain.
                parts.append("\(location.name): not replicated yet")
                continue
            }
            let lock = try repository.lock(kind: .exclusive, retryFor: lockWait)
            defer { try? lock.release() }
            let plan = policy.plan(try TimelineView.load(repository), now: Date())
            let forgotten = try repository.forget(plan)
            var part = "\(location.name): \(forgotten.snapshotsRemoved) snapshot(s) and \(forgotten.segmentsRemoved) segment(s) forgotten, \(plan.keptSnapshots.count) kept"
            if job.prune {
                var options = PruneOptions()
                // The tailer appends to the primary only; copies have no appenders to wait for.
                if location.name == config.repository.name { options.willAwaitAppenders = context.refreshTailerLock }
                let pruner = Pruner(repository: repository, options: options)
                let result = try pruner.execute(try pruner.plan(lock: lock))
                freed += max(0, result.bytesFreed)
                part += ", \(result.packsDeleted) pack(s) deleted, \(result.bytesFreed) bytes freed"
            }
            if location.name == config.repository.name { stored = repository.stats().totalStoredBytes }
            logger.info("retention applied", metadata: ["repository": "\(location.name)", "forget.snapshots": "\(forgotten.snapshotsRemoved)",
                                                        "forget.segments": "\(forgotten.segmentsRemoved)"])
            parts.append(part)
        }
        return DaemonJobOutcome(summary: "\(policy): " + parts.joined(separator: "; "), bytes: freed, repositoryStoredBytes: stored)
    }
}
