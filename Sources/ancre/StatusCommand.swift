import ArgumentParser
import Foundation
import Operations

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Report the daemon's health: RPO, last snapshot and replication, repository size, errors.",
        discussion: """
            Reads the daemon's state file and the repository named by the config. Exits 41 \
            when the RPO exceeds [alerts] rpo_threshold (or nothing is durable yet), the \
            last run of a job failed, or the newest gap in the oplog has no snapshot after it, \
            so it can serve as a health check.

            \(AncreExit.help)
            """)

    @Option(help: ArgumentHelp("The daemon's config file.", valueName: "file"))
    var config: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let status = try reportingErrors {
            do {
                return try DaemonStatus.gather(config: try DaemonConfig.load(path: config), logger: CLILogging.logger)
            } catch let error as DaemonConfigError {
                throw CLIError(AncreExit.usage, "\(config): \(error)")
            }
        }
        if json {
            try printJSON(status)
        } else {
            print(Self.text(status))
        }
        if !status.healthy { throw ExitCode(AncreExit.unhealthy) }
    }

    static func text(_ s: DaemonStatus) -> String {
        func age(_ seconds: Double?) -> String {
            guard let seconds else { return "never" }
            if seconds < 120 { return String(format: "%.0f s ago", seconds) }
            if seconds < 7200 { return String(format: "%.0f min ago", seconds / 60) }
            return String(format: "%.1f h ago", seconds / 3600)
        }
        let formatter = ISO8601DateFormatter()
        var lines = [
            "daemon:             " + (s.daemonPID.map { "running (pid \($0))" } ?? "not running"),
            "last durable oplog: " + (s.lastDurableOplog.map { "ts:\($0) (\(formatter.string(from: s.lastDurableOplogTime!)))" } ?? "none"),
            "RPO:                " + (s.rpoSeconds.map { String(format: "%.0f s (threshold %.0f s)", $0, s.rpoThresholdSeconds) } ?? "unknown"),
            "repository:         \(Table.bytes(s.repositoryStoredBytes)) stored, \(s.snapshots) snapshots",
        ]
        for job in s.jobs {
            var line = "\(job.name):".padding(toLength: 20, withPad: " ", startingAt: 0)
            line += job.lastResult.map { "\($0), \(age(job.ageSeconds))" } ?? "not run yet"
            if job.running { line += " (running now)" }
            if let summary = job.lastSummary, job.lastResult == "success" { line += ": \(summary)" }
            if let error = job.lastError, job.lastResult == "failure" { line += ": \(error)" }
            lines.append(line)
        }
        lines.append("gaps:               \(s.gapsTotal)" + (s.recentGaps.last.map { " (last: \($0))" } ?? ""))
        lines.append("errors:             \(s.errorsTotal)" + (s.lastError.map { " (last: \($0))" } ?? ""))
        lines.append(s.healthy ? "healthy" : "UNHEALTHY: " + s.problems.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }
}
