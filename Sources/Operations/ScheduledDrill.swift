import Foundation
import Logging
import Mongo
import Repository

extension Daemon {
    /// The `drill` job: a drill of a random moment of the restorable window, from the
    /// configured repository (the off-site copy proves the copy restores on its own),
    /// into the scratch server named by `target_uri_file`, under a fresh scratch prefix
    /// that is dropped afterwards. Reports go to `<state directory>/drills` (the same
    /// history `ancre drill --history --report-dir` reads). A failed drill fails the job,
    /// which retries and fires the alert hook like any other.
    static func drill(_ job: DaemonConfig.DrillJob, config: DaemonConfig, passphrase primaryPassphrase: String,
                      environment: [String: String], logger: Logger) throws -> DaemonJobOutcome {
        let location = job.repository == "primary" ? config.repository : config.offsite.first { $0.name == job.repository }!
        // A copy holds the primary's key slots, so the primary's passphrase opens it unless the table names its own.
        let passphrase = location.passwordFile != nil || location.passwordEnvironment != nil
            ? try location.passphrase(environment: environment) : primaryPassphrase
        let targetURI = try DaemonConfig.Source(uriFile: job.targetURIFile).connectionString(environment: environment)
        let meter = DrillMeteredStorage(try location.storage())
        let repository = try Repository.open(storage: meter, passphrase: passphrase, options: RepositoryOptions(logger: logger))
        let lock = try repository.lock(kind: .shared, retryFor: jobLockWait)
        defer { try? lock.release() }
        let client = try MongoClient(uri: targetURI, logger: logger)
        let options = DrillOptions(point: .random(seed: nil),
                                   repositoryRole: job.repository == "primary" ? "primary" : "off-site copy (\(job.repository))")
        let report = try DrillRunner(repository: repository, location: location.location, client: client, logger: logger, meter: meter)
            .run(options)
        let files = try DrillHistory(directory: URL(fileURLWithPath: config.stateDirectory).appendingPathComponent("drills")).save(report)
        let summary = DrillSummary(report)
        guard report.passed else {
            throw DaemonJobError("drill \(report.id) failed: \(summary.failure ?? "see \(files.html.path)")")
        }
        let rto = report.measurements.restoreSeconds.map { String(format: "%.1f s", $0) } ?? "-"
        let read = report.measurements.bytesRead.map { "\($0) bytes read" } ?? "bytes read unknown"
        return DaemonJobOutcome(summary: "drill \(report.id) passed: \(report.point?.ts ?? "-") from \(job.repository), RTO \(rto), \(read), \(report.collections.count) collections verified; \(files.html.path)",
                                bytes: 0)
    }
}
