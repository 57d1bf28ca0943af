import Capture
import Foundation
import Logging
import Mongo
import Repository
import Synchronization

/// The scheduler's clock: wall time, optionally compressed for tests.
///
/// With `scale` 1800 (`ANCRE_DAEMON_TIME_SCALE=1800`), two scheduled hours pass in four
/// real seconds. Only scheduling (fire times, retry delays) uses it; the tailer, the
/// RPO, the state file's timestamps and alert rate limits stay on real time.
public struct DaemonClock: Sendable {
    public let scale: Double
    private let origin: Date

    public init(scale: Double = 1, origin: Date = Date()) {
        self.scale = max(scale, 1)
        self.origin = origin
    }

    public func now() -> Date { origin.addingTimeInterval(Date().timeIntervalSince(origin) * scale) }

    /// Real seconds until `date` on this clock.
    func realSeconds(until date: Date) -> Double { date.timeIntervalSince(now()) / scale }
}

/// The backup daemon: tails the oplog continuously into the primary repository and runs
/// the scheduled jobs (snapshots, replication to each off-site repository), with state
/// in a file, metrics over HTTP and alerts through a hook.
///
/// Jobs: `snapshot` (a `SnapshotDumper` run against the source, shared lock) and, when
/// `[offsite.NAME]` tables exist, `replication` (a `RepositoryCopy` to each, in name
/// order), `retention` when `[retention]` exists (`ScheduledRetention.swift`: forget and
/// prune on every repository) and `drill` when `[drill]` exists (`ScheduledDrill.swift`).
///
/// Threading: `run()` blocks the calling thread until `stop()` (thread-safe, idempotent,
/// callable from a signal handler's queue). The tailer and each job run on threads of
/// their own (libmongoc and storage calls block). On stop: no new run starts, the tailer
/// seals its open segment and releases its lock, a running job gets `[daemon] stop_grace`
/// to finish (releasing its locks); past that it is abandoned where it stands, which is
/// safe (every object is written whole, packs before the index and metadata naming them;
/// its lock is stale once the process is gone) and its run resumes at the next start.
/// Then `run()` returns.
public final class Daemon: Sendable {
    public let config: DaemonConfig
    public let clock: DaemonClock
    let logger: Logger
    let stopSignal = StopSignal()
    let store: DaemonStateStore
    let alerts: AlertHook
    let uri: String
    let passphrase: String
    private let tailer = Mutex<OplogTailer?>(nil)
    /// Jobs holding the tailer paused, and whether a tailer may hold the repository lock.
    private let tailerPauses = Mutex<Int>(0)
    private let tailerActive = Atomic<Bool>(false)
    /// Jobs asked to run now, ahead of their schedule (a gap asks for a snapshot).
    private let requested = Mutex<Set<String>>([])
    /// Jobs the daemon runs; built from the config by `init`.
    public let jobs: [DaemonJob]

    /// Checks the config's secrets and the primary repository, and builds the job list.
    /// - Throws: `DaemonConfigError` (secrets, state directory), `RepositoryError` (the
    ///   primary repository cannot be opened), `MongoError` (an invalid URI).
    ///
    /// `additionalJobs` run after the built-in ones (tests use it; so can callers with jobs of their own).
    public init(config: DaemonConfig, logger: Logger, clock: DaemonClock = DaemonClock(),
                environment: [String: String] = ProcessInfo.processInfo.environment, additionalJobs: [DaemonJob] = []) throws {
        self.config = config
        self.clock = clock
        self.logger = logger
        uri = try config.source.connectionString(environment: environment)
        _ = try MongoClient(uri: uri, logger: logger)  // validates the URI before anything starts
        passphrase = try config.repository.passphrase(environment: environment)
        store = try DaemonStateStore(directory: config.stateDirectory, logger: logger)
        alerts = AlertHook(command: config.alerts.command, repeatAfter: config.alerts.repeatAfter, logger: logger)
        let primary = try Repository.open(storage: try config.repository.storage(), passphrase: passphrase, options: RepositoryOptions(logger: logger))
        let stored = primary.stats().totalStoredBytes
        // The RPO is known from the start, even before the source's next write.
        let durable = try TimelineView.load(primary).chains.last?.last
        for offsite in config.offsite { _ = try offsite.storage() }
        store.update { s in
            s.repositoryStoredBytes = stored
            if let durable, s.lastDurableOplog.map({ $0 < durable }) ?? true { s.lastDurableOplog = durable }
        }

        var jobs: [DaemonJob] = []
        let snapshot = config.snapshot
        let (uri, passphrase) = (uri, passphrase)
        let repository = config.repository
        jobs.append(DaemonJob(name: "snapshot", schedule: snapshot.schedule, runsAtFirstStart: true) { _ in
            try Self.takeSnapshot(snapshot, uri: uri, repository: repository, passphrase: passphrase, logger: logger)
        })
        if !config.offsite.isEmpty {
            let offsite = config.offsite
            jobs.append(DaemonJob(name: "replication", schedule: config.replication.schedule) { context in
                try Self.replicate(repository, passphrase: passphrase, to: offsite, context: context, logger: logger)
            })
        }
        if let retention = config.retention {
            jobs.append(DaemonJob(name: "retention", schedule: retention.schedule) { context in
                try Self.retain(retention, config: config, passphrase: passphrase, environment: environment, context: context, logger: logger)
            })
        }
        if let drill = config.drill {
            jobs.append(DaemonJob(name: "drill", schedule: drill.schedule) { _ in
                try Self.drill(drill, config: config, passphrase: passphrase, environment: environment, logger: logger)
            })
        }
        self.jobs = jobs + additionalJobs
    }

    /// The state as last written.
    public var state: DaemonState { store.current }

    /// Asks `run()` to finish; thread-safe and idempotent.
    public func stop() {
        stopSignal.stop()
        tailer.withLock { $0?.stop() }
    }

    /// Runs until `stop()`.
    /// - Throws: `MetricsServerError` when the metrics address cannot be bound; every
    ///   later failure is recorded, alerted and retried instead.
    public func run() throws {
        store.update { s in
            s.pid = getpid()
            s.started = Date()
        }
        let metrics = try config.metricsListen.map { listen in
            try MetricsServer(host: listen.host, port: listen.port, logger: logger) { [self] in
                MetricsText.render(state: store.current, now: Date(), jobs: jobs.map(\.name), alertsFired: alerts.fired)
            }
        }
        if let metrics { logger.info("metrics listening", metadata: ["metrics.address": "\(metrics.address)"]) }
        logger.info("daemon started", metadata: ["jobs": "\(jobs.map(\.name).joined(separator: ","))", "clock.scale": "\(clock.scale)"])

        let tailing = DispatchGroup()
        let running = DispatchGroup()
        func start(_ name: String, in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
            group.enter()
            let thread = Thread {
                body()
                group.leave()
            }
            thread.name = name
            thread.start()
        }
        start("ancre-tail", in: tailing) { [self] in tailLoop() }
        for job in jobs {
            start("ancre-job-\(job.name)", in: running) { [self] in jobLoop(job) }
        }
        while !stopSignal.wait(.seconds(1)) {
            checkRPO()
        }
        logger.info("stopping: waiting for the tailer to seal and running jobs to finish")
        tailing.wait()
        let grace = Double(config.stopGrace.components.seconds) + Double(config.stopGrace.components.attoseconds) / 1e18
        if running.wait(timeout: .now() + grace) == .timedOut {
            let names = store.current.jobs.filter(\.value.running).map(\.key).sorted()
            logger.warning("abandoning running jobs after the stop grace; they resume at the next start",
                           metadata: ["jobs": "\(names.joined(separator: ","))", "stop.grace": "\(config.stopGrace)"])
        }
        metrics?.stop()
        store.update { $0.pid = 0 }
        logger.info("daemon stopped")
    }

    // MARK: Tailer

    private func tailLoop() {
        var attempt = 0
        while !stopSignal.isStopped {
            // Set before the pause check, so that `pauseTailer` waits for a tailer being built.
            tailerActive.store(true, ordering: .sequentiallyConsistent)
            if tailerPauses.withLock({ $0 }) > 0 {
                tailerActive.store(false, ordering: .sequentiallyConsistent)
                stopSignal.wait(.milliseconds(50))
                continue
            }
            let result = Result { () throws -> Void in
                let repository = try Repository.open(storage: try config.repository.storage(), passphrase: passphrase, options: RepositoryOptions(logger: logger))
                let client = try MongoClient(uri: uri, logger: logger)
                var options = OplogTailer.Options()
                options.flushInterval = config.source.flushInterval
                options.compactEvery = config.source.compactEvery
                let tailer = OplogTailer(
                    client: client, repository: repository, options: options, logger: logger,
                    onDurable: { [store] progress in
                        store.update(coalescing: .seconds(5)) { $0.lastDurableOplog = progress.segment.last }
                    },
                    onGap: { [self] gap in
                        let text = "after ts:\(gap.after.map(\.description) ?? "-") (\(gap.reason)): \(gap.message)"
                        store.update { s in
                            s.gaps.append(text)
                            if s.gaps.count > 100 { s.gaps.removeFirst(s.gaps.count - 100) }
                            s.gapsTotal += 1
                        }
                        alerts.fire(.gap, message: "gap in the oplog \(text); a new snapshot is on its way")
                        // Restores after the gap need a snapshot taken after it: take one now.
                        requestRun("snapshot")
                    })
                self.tailer.withLock { $0 = tailer }
                // A stop() or pause that came before the tailer existed.
                if stopSignal.isStopped || tailerPauses.withLock({ $0 }) > 0 { tailer.stop() }
                try tailer.run()
            }
            tailer.withLock { $0 = nil }
            tailerActive.store(false, ordering: .sequentiallyConsistent)
            guard case .failure(let error) = result else { continue }
            attempt = min(attempt + 1, 6)
            store.update { s in
                s.errorsTotal += 1
                s.lastError = "tail: \(error)"
            }
            alerts.fire(.tailFailed, message: "the oplog tailer stopped: \(error); restarting it")
            let delay = DaemonJobPlan.retryDelay(base: .seconds(1), attempt: attempt + 1)
            logger.error("the oplog tailer failed; restarting", metadata: ["error": "\(error)", "retry.in": "\(delay)"])
            stopSignal.wait(delay)
        }
    }

    /// Stops the tailer (it seals its open segment and releases its shared lock) and keeps
    /// it stopped until as many `resumeTailer()` calls; for jobs that need the repository
    /// exclusively (prune). Meanwhile the oplog waits on the server and the RPO grows.
    /// Blocks until the tailer has released its lock.
    func pauseTailer() {
        tailerPauses.withLock { $0 += 1 }
        tailer.withLock { $0?.stop() }
        while tailerActive.load(ordering: .sequentiallyConsistent) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        logger.info("oplog tailing paused")
    }

    func resumeTailer() {
        tailerPauses.withLock { $0 -= 1 }
        logger.info("oplog tailing resumes")
    }

    private func checkRPO() {
        guard let last = store.current.lastDurableOplog else { return }
        let rpo = Date().timeIntervalSince1970 - Double(last.t)
        let threshold = Double(config.alerts.rpoThreshold.components.seconds)
        if rpo > threshold {
            alerts.fire(.rpo, message: String(format: "RPO is %.0f s (threshold %.0f s): the last durable oplog entry is ts:%@", rpo, threshold, last.description))
        }
    }

    // MARK: Jobs

    /// How long a job waits for a conflicting repository lock (most often another job of
    /// this daemon: a snapshot or a copy during a prune) before it fails and is retried.
    static let jobLockWait: Duration = .seconds(600)

    /// Asks the job named `name` to run as soon as its current run (if any) ends.
    public func requestRun(_ name: String) {
        requested.withLock { _ = $0.insert(name) }
    }

    private func jobLoop(_ job: DaemonJob) {
        var next = DaemonJobPlan.firstRun(of: job, record: store.current.jobs[job.name], now: clock.now())
        while let fire = next, !stopSignal.isStopped {
            let wait = clock.realSeconds(until: fire)
            let asked = requested.withLock { $0.remove(job.name) != nil }
            if wait > 0 && !asked {
                // Short naps, so that a request to run now is seen quickly.
                if stopSignal.wait(.milliseconds(Int64(min(wait, 0.25) * 1000))) { return }
                continue
            }
            if asked && wait > 0 {
                logger.info("job requested ahead of its schedule", metadata: ["job": "\(job.name)"])
                runWithRetries(job, fire: clock.now())
                continue  // the scheduled fire still stands
            }
            runWithRetries(job, fire: fire)
            next = job.schedule.next(after: max(clock.now(), fire))
        }
    }

    private func runWithRetries(_ job: DaemonJob, fire: Date) {
        for attempt in 1...config.retryAttempts {
            if stopSignal.isStopped { return }  // `running` stays set: the run resumes at restart
            store.update { s in
                s.jobs[job.name, default: .init()].running = true
                s.jobs[job.name, default: .init()].lastStart = Date()
            }
            logger.info("job started", metadata: ["job": "\(job.name)", "job.attempt": "\(attempt)"])
            let started = ContinuousClock.now
            let context = DaemonJobContext(attempt: attempt, isStopping: { [stopSignal] in stopSignal.isStopped },
                                           pauseTailer: { [self] in pauseTailer() }, resumeTailer: { [self] in resumeTailer() },
                                           refreshTailerLock: { [self] in tailer.withLock { $0?.refreshLockSoon() } })
            let result = Result { try job.body(context) }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            switch result {
            case .success(let outcome):
                store.update { s in
                    var r = s.jobs[job.name, default: .init()]
                    r.running = false
                    r.lastEnd = Date()
                    r.lastResult = "success"
                    r.lastError = nil
                    r.lastSummary = outcome.summary
                    r.lastBytes = outcome.bytes
                    r.lastSeconds = seconds
                    r.lastSuccess = r.lastEnd
                    r.lastScheduled = fire
                    r.runs += 1
                    s.jobs[job.name] = r
                    if let stored = outcome.repositoryStoredBytes { s.repositoryStoredBytes = stored }
                }
                logger.info("job succeeded", metadata: ["job": "\(job.name)", "job.summary": "\(outcome.summary)",
                                                         "job.bytes": "\(outcome.bytes)", "job.seconds": "\(String(format: "%.2f", seconds))"])
                return
            case .failure(let error):
                let last = attempt == config.retryAttempts
                store.update { s in
                    var r = s.jobs[job.name, default: .init()]
                    r.running = !last
                    r.lastEnd = Date()
                    r.lastResult = "failure"
                    r.lastError = "\(error)"
                    r.lastSeconds = seconds
                    r.runs += 1
                    r.failures += 1
                    if last { r.lastScheduled = fire }
                    s.jobs[job.name] = r
                    s.errorsTotal += 1
                    s.lastError = "\(job.name): \(error)"
                }
                let delay = DaemonJobPlan.retryDelay(base: config.retryDelay, attempt: attempt + 1)
                logger.error("job failed", metadata: ["job": "\(job.name)", "job.attempt": "\(attempt)", "error": "\(error)",
                                                      "retry.in": "\(last ? "none" : "\(delay)")"])
                alerts.fire(.jobFailed, job: job.name,
                            message: "\(job.name) failed (attempt \(attempt) of \(config.retryAttempts)): \(error)")
                if last { return }
                let realDelay = Double(delay.components.seconds) / clock.scale
                if stopSignal.wait(.milliseconds(Int64(realDelay * 1000))) { return }
            }
        }
    }

    static func takeSnapshot(_ job: DaemonConfig.SnapshotJob, uri: String, repository location: DaemonConfig.RepositoryLocation,
                             passphrase: String, logger: Logger, lockWait: Duration = jobLockWait) throws -> DaemonJobOutcome {
        let repository = try Repository.open(storage: try location.storage(), passphrase: passphrase, options: RepositoryOptions(logger: logger))
        let client = try MongoClient(uri: uri, logger: logger)
        let filter = try NamespaceFilter(include: job.include, exclude: job.exclude)
        // Waits out a retention run (exclusive) instead of failing: both are this daemon's jobs.
        let lock = try repository.lock(kind: .shared, retryFor: lockWait)
        defer { try? lock.release() }
        let result = try SnapshotDumper(client: client, repository: repository, logger: logger)
            .run(BackupOptions(filter: filter, parallel: job.parallel, tags: job.tags))
        let r = result.record
        return DaemonJobOutcome(
            summary: "snapshot \(result.snapshotID.prefix(8)): \(r.collections) collections, \(r.documents) documents, consistent at \(r.end.map(\.description) ?? "-")",
            bytes: Int(r.addedBytes), repositoryStoredBytes: repository.stats().totalStoredBytes)
    }

    /// Copies the primary repository to every off-site one; a failed destination does not
    /// stop the others, and the run fails if any did.
    static func replicate(_ location: DaemonConfig.RepositoryLocation, passphrase: String, to offsite: [DaemonConfig.RepositoryLocation],
                          context: DaemonJobContext, logger: Logger, lockWait: Duration = jobLockWait) throws -> DaemonJobOutcome {
        let source = try Repository.open(storage: try location.storage(), passphrase: passphrase, options: RepositoryOptions(logger: logger))
        var bytes = 0
        var parts: [String] = []
        var failures: [String] = []
        for destination in offsite {
            if context.isStopping() { break }
            let outcome = Result { () throws -> CopyReport in
                var copy = RepositoryCopy(source: source, destination: try destination.storage())
                copy.lockWait = lockWait
                return try copy.run()
            }
            switch outcome {
            case .success(let report):
                bytes += report.bytesCopied
                parts.append("\(destination.name): \(report.objectsCopied) objects (\(report.packs) packs, \(report.bytesCopied) bytes) copied, \(report.objectsSkipped) already there, \(String(format: "%.2f", report.seconds)) s")
                logger.info("replicated", metadata: ["offsite": "\(destination.name)", "copy.objects": "\(report.objectsCopied)",
                                                     "copy.bytes": "\(report.bytesCopied)", "copy.seconds": "\(report.seconds)"])
            case .failure(let error):
                failures.append("\(destination.name): \(error)")
            }
        }
        if !failures.isEmpty { throw DaemonJobError(failures.joined(separator: "; ")) }
        return DaemonJobOutcome(summary: parts.joined(separator: "; "), bytes: bytes)
    }
}

/// A job run that failed for a reason of its own (the underlying errors are in the message).
public struct DaemonJobError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
