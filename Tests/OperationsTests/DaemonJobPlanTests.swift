import Foundation
import Testing
import Repository
@testable import Operations

/// When jobs run (a pure function of their record), retry delays, and the metrics text.
@Suite struct DaemonJobPlanTests {
    static let now = DaemonScheduleTests.utc("2026-03-01T10:30:00Z")

    static func job(_ runsAtFirstStart: Bool = false) throws -> DaemonJob {
        DaemonJob(name: "snapshot", schedule: try Schedule("0 */2 * * *"), runsAtFirstStart: runsAtFirstStart) { _ in
            DaemonJobOutcome(summary: "", bytes: 0)
        }
    }

    @Test func firstRunAfterStart() throws {
        let iso = DaemonScheduleTests.iso
        // Never run: at start when the job asks for it, else at the next fire time.
        #expect(DaemonJobPlan.firstRun(of: try Self.job(true), record: nil, now: Self.now) == Self.now)
        #expect(iso(DaemonJobPlan.firstRun(of: try Self.job(), record: nil, now: Self.now)) == "2026-03-01T12:00:00Z")
        // Last fire 10:00, next 12:00: nothing missed.
        var record = DaemonState.JobRecord()
        record.lastScheduled = DaemonScheduleTests.utc("2026-03-01T10:00:00Z")
        #expect(iso(DaemonJobPlan.firstRun(of: try Self.job(true), record: record, now: Self.now)) == "2026-03-01T12:00:00Z")
        // Last fire 06:00: 08:00 and 10:00 were missed while down: one run at start.
        record.lastScheduled = DaemonScheduleTests.utc("2026-03-01T06:00:00Z")
        #expect(DaemonJobPlan.firstRun(of: try Self.job(), record: record, now: Self.now) == Self.now)
        // A run interrupted by a crash resumes at start.
        record.lastScheduled = DaemonScheduleTests.utc("2026-03-01T10:00:00Z")
        record.running = true
        #expect(DaemonJobPlan.firstRun(of: try Self.job(), record: record, now: Self.now) == Self.now)
    }

    @Test func retryDelaysDoubleAndCap() {
        let delays = (2...9).map { DaemonJobPlan.retryDelay(base: .seconds(60), attempt: $0) }
        #expect(delays == [60, 120, 240, 480, 960, 1920, 1920, 1920].map { Duration.seconds($0) })
    }

    @Test func metricsText() {
        var state = DaemonState()
        state.lastDurableOplog = OplogTime(t: 1_000_000, i: 3)
        var snapshot = DaemonState.JobRecord()
        snapshot.lastResult = "success"
        snapshot.lastSuccess = Date(timeIntervalSince1970: 999_990)
        snapshot.lastEnd = snapshot.lastSuccess
        snapshot.runs = 2
        snapshot.lastBytes = 1234
        var replication = DaemonState.JobRecord()
        replication.lastResult = "failure"
        replication.failures = 3
        replication.runs = 3
        state.jobs = ["snapshot": snapshot, "replication": replication]
        state.repositoryStoredBytes = 42
        state.errorsTotal = 3
        let text = MetricsText.render(state: state, now: Date(timeIntervalSince1970: 1_000_012.5), jobs: ["snapshot", "replication"], alertsFired: 1)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            "ancre_oplog_last_durable_timestamp_seconds 1000000",
            "ancre_rpo_seconds 12.500",
            "ancre_job_last_success_timestamp_seconds{job=\"snapshot\"} 999990",
            "ancre_job_last_success{job=\"snapshot\"} 1",
            "ancre_job_last_success{job=\"replication\"} 0",
            "ancre_job_failures_total{job=\"replication\"} 3",
            "ancre_job_failures_total{job=\"snapshot\"} 0",
            "ancre_job_last_bytes{job=\"snapshot\"} 1234",
            "ancre_repository_stored_bytes 42",
            "ancre_errors_total 3",
            "ancre_alerts_fired_total 1",
            "# TYPE ancre_job_failures_total counter",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in\n\(text)")
        }
        #expect(!text.contains("ancre_job_last_success_timestamp_seconds{job=\"replication\"}"), "never succeeded: no sample")
    }

    @Test func alertsAreRateLimited() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ancre-alert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("alerts.log").path
        let hook = AlertHook(command: ["/bin/sh", "-c", "echo \"$ANCRE_ALERT_KIND|$ANCRE_ALERT_JOB|$ANCRE_ALERT_MESSAGE\" >> \(log)"],
                             repeatAfter: .seconds(3600), logger: .init(label: "test"))
        #expect(hook.fire(.jobFailed, job: "snapshot", message: "boom"))
        #expect(!hook.fire(.jobFailed, job: "snapshot", message: "boom again"), "the same alert within repeat_after is dropped")
        #expect(hook.fire(.jobFailed, job: "replication", message: "other job"))
        #expect(hook.fire(.rpo, message: "late"))
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["job_failed|snapshot|boom", "job_failed|replication|other job", "rpo||late"])
        #expect(hook.fired == 3)
    }
}
