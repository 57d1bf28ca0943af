import ArgumentParser
import Dispatch
import Foundation
import Logging
import Operations

struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Tail the oplog continuously and run scheduled snapshots, replication, retention and drills (see Packaging/ancre.toml).",
        discussion: """
            Reads one config file (TOML) naming the source, the repository, the off-site \
            copies, the schedules (cron: minute hour day-of-month month day-of-week, in UTC; \
            defaults: snapshot every 2 hours, replication nightly at 01:00, and when their \
            tables are present retention daily at 03:00 (forget and prune on every copy) and \
            a drill on Sundays at 04:00), alerts and the metrics address (Prometheus, 127.0.0.1:9464/metrics by default). \
            The config must not be accessible to group or others, and secrets are only \
            named by file or environment variable. A job whose fire time passed while the \
            daemon was down, or whose run was interrupted, runs once at start; the first \
            snapshot runs at the first start, and a gap in the oplog triggers one at once. \
            Failed jobs are retried with doubling delays; failures, gaps and an RPO over \
            its threshold run the alert command. State (per job results, last durable \
            oplog time, gaps) is kept in state_directory for `ancre status`; one daemon per \
            state directory. SIGTERM or SIGINT: no new job starts, the tailer seals its \
            open segment, a running job finishes (up to stop_grace, else it resumes at the \
            next start), locks are released, exit 0. Logs go to stderr (ANCRE_LOG_LEVEL, \
            default info). \
            For tests only, ANCRE_DAEMON_TIME_SCALE=1800 runs the scheduler's clock 1800 \
            times faster.

            \(AncreExit.help)
            """)

    @Option(help: ArgumentHelp("The config file.", valueName: "file"))
    var config: String

    func run() throws {
        try reportingErrors {
            let environment = ProcessInfo.processInfo.environment
            var logger = CLILogging.logger
            if environment["ANCRE_LOG_LEVEL"] == nil { logger.logLevel = .info }
            var scale = 1.0
            if let text = environment["ANCRE_DAEMON_TIME_SCALE"] {
                guard let value = Double(text), value >= 1 else {
                    throw CLIError(AncreExit.usage, "ANCRE_DAEMON_TIME_SCALE must be a number of at least 1 (a testing knob).")
                }
                scale = value
            }
            let daemon: Daemon
            do {
                daemon = try Daemon(config: try DaemonConfig.load(path: config), logger: logger, clock: DaemonClock(scale: scale))
            } catch let error as DaemonConfigError {
                throw CLIError(AncreExit.usage, "\(config): \(error)")
            }
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let sources = [SIGTERM, SIGINT].map { number in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { daemon.stop() }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            do {
                try daemon.run()
            } catch let error as MetricsServerError {
                throw CLIError(AncreExit.usage, error.message)
            }
        }
    }
}
