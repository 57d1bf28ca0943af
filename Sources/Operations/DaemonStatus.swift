import Foundation
import Logging
import Repository

/// Health of a daemon setup, for `ancre status`: the daemon's state file plus the
/// primary repository's timeline and size.
///
/// Unhealthy when the RPO exceeds `[alerts] rpo_threshold` (or nothing is durable yet),
/// when the newest gap in the oplog has no snapshot after it, or when the last run of a
/// job failed.
public struct DaemonStatus: Sendable, Encodable {
    public struct Job: Sendable, Encodable {
        public var name: String
        public var lastResult: String?
        public var lastEnd: Date?
        /// Seconds since the last run ended.
        public var ageSeconds: Double?
        public var lastSuccess: Date?
        public var lastSummary: String?
        public var lastError: String?
        public var lastBytes: Int?
        public var lastSeconds: Double?
        public var running: Bool
        public var failures: Int
    }

    public var daemonPID: Int32?
    public var lastDurableOplog: String?
    public var lastDurableOplogTime: Date?
    public var rpoSeconds: Double?
    public var rpoThresholdSeconds: Double
    public var repositoryStoredBytes: Int
    public var snapshots: Int
    public var jobs: [Job]
    public var gapsTotal: Int
    public var recentGaps: [String]
    public var errorsTotal: Int
    public var lastError: String?
    public var problems: [String]
    public var healthy: Bool { problems.isEmpty }

    /// Reads the state file and the primary repository.
    /// - Throws: `DaemonConfigError` (secrets, damaged state), `RepositoryError`.
    public static func gather(config: DaemonConfig, now: Date = Date(), logger: Logger = Logger(label: "ancre.status"),
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DaemonStatus {
        let state = try DaemonState.load(directory: config.stateDirectory)
        let repository = try Repository.open(storage: try config.repository.storage(), passphrase: try config.repository.passphrase(environment: environment),
                                             options: RepositoryOptions(logger: logger))
        let view = try TimelineView.load(repository)
        let durable = [state.lastDurableOplog, view.chains.last?.last].compactMap { $0 }.max()
        let threshold = Double(config.alerts.rpoThreshold.components.seconds)
        let rpo = durable.map { max(0, now.timeIntervalSince1970 - Double($0.t)) }
        var jobNames = ["snapshot"] + (config.offsite.isEmpty ? [] : ["replication"]) + (config.retention == nil ? [] : ["retention"])
            + (config.drill == nil ? [] : ["drill"])
        jobNames += state.jobs.keys.filter { !jobNames.contains($0) }.sorted()
        let jobs = jobNames.map { name in
            let r = state.jobs[name] ?? DaemonState.JobRecord()
            return Job(name: name, lastResult: r.lastResult, lastEnd: r.lastEnd, ageSeconds: r.lastEnd.map { now.timeIntervalSince($0) },
                       lastSuccess: r.lastSuccess, lastSummary: r.lastSummary, lastError: r.lastError, lastBytes: r.lastBytes,
                       lastSeconds: r.lastSeconds, running: r.running, failures: r.failures)
        }
        var problems: [String] = []
        if let rpo {
            if rpo > threshold { problems.append(String(format: "RPO %.0f s exceeds the threshold of %.0f s", rpo, threshold)) }
        } else {
            problems.append("no oplog entry is durable in the repository yet")
        }
        if let gap = view.gaps.max(by: { $0.detected < $1.detected }),
           gap.detected > (view.snapshots.map(\.record.time).max() ?? .distantPast) {
            problems.append("a gap in the oplog (after ts:\(gap.after.map(\.description) ?? "-"), \(gap.reason)) has no snapshot after it: "
                + "moments after the gap cannot be restored until a snapshot is taken")
        }
        for job in jobs where job.lastResult == "failure" {
            problems.append("the last \(job.name) run failed: \(job.lastError ?? "unknown error")")
        }
        var pid: Int32?
        if state.pid > 0, kill(state.pid, 0) == 0 || errno == EPERM { pid = state.pid }
        return DaemonStatus(
            daemonPID: pid, lastDurableOplog: durable?.description,
            lastDurableOplogTime: durable.map { Date(timeIntervalSince1970: Double($0.t)) }, rpoSeconds: rpo,
            rpoThresholdSeconds: threshold, repositoryStoredBytes: repository.stats().totalStoredBytes, snapshots: view.snapshots.count,
            jobs: jobs, gapsTotal: state.gapsTotal, recentGaps: Array(state.gaps.suffix(5)), errorsTotal: state.errorsTotal,
            lastError: state.lastError, problems: problems)
    }
}
