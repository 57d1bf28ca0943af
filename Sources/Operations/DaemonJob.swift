import Foundation

/// One scheduled job of the daemon: a name, a schedule and a body.
///
/// The daemon runs each job on a thread of its own, so runs of one job never overlap
/// (a fire time that passes while the job still runs is skipped); a failed run is retried
/// `retryAttempts` times with doubling delays, and its result lands in the state file,
/// the metrics and, on failure, the alert hook.
public struct DaemonJob: Sendable {
    /// Stable name, used in the state file, metrics labels (`job="…"`) and alerts.
    public let name: String
    public let schedule: Schedule
    /// Run at start when the state has no record of this job (e.g. the first snapshot).
    public let runsAtFirstStart: Bool
    /// The work; throws to report a failure. Called on the job's thread.
    public let body: @Sendable (DaemonJobContext) throws -> DaemonJobOutcome

    public init(name: String, schedule: Schedule, runsAtFirstStart: Bool = false,
                body: @escaping @Sendable (DaemonJobContext) throws -> DaemonJobOutcome) {
        self.name = name
        self.schedule = schedule
        self.runsAtFirstStart = runsAtFirstStart
        self.body = body
    }
}

/// What a job body may consult while it runs.
public struct DaemonJobContext: Sendable {
    /// Attempt number, from 1.
    public var attempt: Int
    /// Whether the daemon is shutting down: a body that can stop at a safe point should.
    public var isStopping: @Sendable () -> Bool
    let pauseTailer: @Sendable () -> Void
    let resumeTailer: @Sendable () -> Void
    /// Asks the running tailer to refresh its append lock now (`OplogTailer.refreshLockSoon`),
    /// so that a prune of the primary repository does not wait out its refresh period.
    public let refreshTailerLock: @Sendable () -> Void

    public init(attempt: Int, isStopping: @escaping @Sendable () -> Bool,
                pauseTailer: @escaping @Sendable () -> Void, resumeTailer: @escaping @Sendable () -> Void,
                refreshTailerLock: @escaping @Sendable () -> Void = {}) {
        self.attempt = attempt
        self.isStopping = isStopping
        self.pauseTailer = pauseTailer
        self.resumeTailer = resumeTailer
        self.refreshTailerLock = refreshTailerLock
    }

    /// Runs `body` with the oplog tailer stopped and its shared repository lock released,
    /// for work that locks the repository exclusively (prune). The tailer seals its open
    /// segment first and resumes from it afterwards: no entry is lost while the server's
    /// oplog covers the pause, but the RPO grows meanwhile.
    public func withTailerPaused<T>(_ body: () throws -> T) rethrows -> T {
        pauseTailer()
        defer { resumeTailer() }
        return try body()
    }
}

/// What a successful run did, for the state file, metrics and logs.
public struct DaemonJobOutcome: Sendable, Equatable {
    public var summary: String
    /// Bytes written (snapshot: added; replication: copied).
    public var bytes: Int
    /// Stored bytes of the primary repository after the run, when the job measured it.
    public var repositoryStoredBytes: Int?

    public init(summary: String, bytes: Int, repositoryStoredBytes: Int? = nil) {
        self.summary = summary
        self.bytes = bytes
        self.repositoryStoredBytes = repositoryStoredBytes
    }
}

/// When a job runs next, from its record: a pure function, tested without a clock.
///
/// A run interrupted by a crash (`running` still set), or a fire time that passed while
/// the daemon was down, runs once at start; so does a job never run before when it
/// `runsAtFirstStart`. Otherwise the next fire time after now.
public enum DaemonJobPlan {
    public static func firstRun(of job: DaemonJob, record: DaemonState.JobRecord?, now: Date) -> Date? {
        guard let record else { return job.runsAtFirstStart ? now : job.schedule.next(after: now) }
        if record.running { return now }
        guard let last = record.lastScheduled else { return job.runsAtFirstStart ? now : job.schedule.next(after: now) }
        guard let next = job.schedule.next(after: last) else { return nil }
        return next <= now ? now : next
    }

    /// Delay before retry `attempt` (2, 3, …): `base`, doubling, at most 32 × `base`.
    public static func retryDelay(base: Duration, attempt: Int) -> Duration {
        base * (1 << min(max(attempt - 2, 0), 5))
    }
}
