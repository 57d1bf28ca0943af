import Foundation
import Logging
import Synchronization

/// Runs the configured alert command when something needs a human: the RPO above its
/// threshold, a gap in the oplog, a job or the tailer failing.
///
/// The command gets `ANCRE_ALERT_KIND` (`rpo`, `gap`, `job_failed`, `tail_failed`),
/// `ANCRE_ALERT_MESSAGE` and `ANCRE_ALERT_JOB` (empty when no job is concerned) in its
/// environment. The same kind and job alert at most once per `repeatAfter`, so a lasting
/// problem does not become a storm. Every alert is also logged at error level.
///
/// Threading: thread-safe; `fire` runs the command on the calling thread and waits for
/// it (hooks are expected to be quick), so callers are the daemon's own threads.
public final class AlertHook: Sendable {
    public struct Kind: RawRepresentable, Sendable, Hashable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let rpo = Kind(rawValue: "rpo")
        public static let gap = Kind(rawValue: "gap")
        public static let jobFailed = Kind(rawValue: "job_failed")
        public static let tailFailed = Kind(rawValue: "tail_failed")
    }

    let command: [String]
    let repeatAfter: Duration
    let logger: Logger
    private let lastFired = Mutex<[String: ContinuousClock.Instant]>([:])
    private let firedCount = Atomic<Int>(0)

    public init(command: [String], repeatAfter: Duration, logger: Logger) {
        self.command = command
        self.repeatAfter = repeatAfter
        self.logger = logger
    }

    /// Alerts fired (not rate-limited away) since start.
    public var fired: Int { firedCount.load(ordering: .relaxed) }

    /// Fires unless the same kind and job fired less than `repeatAfter` ago; returns whether it fired.
    @discardableResult
    public func fire(_ kind: Kind, job: String? = nil, message: String) -> Bool {
        let key = kind.rawValue + "/" + (job ?? "")
        let now = ContinuousClock.now
        let allowed = lastFired.withLock { last in
            if let previous = last[key], now - previous < repeatAfter { return false }
            last[key] = now
            return true
        }
        guard allowed else { return false }
        firedCount.add(1, ordering: .relaxed)
        logger.error("alert", metadata: ["alert.kind": "\(kind.rawValue)", "alert.job": "\(job ?? "")", "alert.message": "\(message)"])
        guard let program = command.first else { return true }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(command.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["ANCRE_ALERT_KIND"] = kind.rawValue
        environment["ANCRE_ALERT_MESSAGE"] = message
        environment["ANCRE_ALERT_JOB"] = job ?? ""
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                logger.warning("the alert command failed", metadata: ["alert.command": "\(program)", "exit": "\(process.terminationStatus)"])
            }
        } catch {
            logger.warning("cannot run the alert command", metadata: ["alert.command": "\(program)", "error": "\(error)"])
        }
        return true
    }
}
