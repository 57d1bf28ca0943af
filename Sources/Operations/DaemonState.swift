import Foundation
import Logging
import Repository
import Synchronization

/// What the daemon has done, kept in `<state_directory>/daemon-state.json` so that
/// `ancre status` can report it and a restarted daemon resumes its schedule.
///
/// Times are wall-clock UTC, except `lastScheduled`, which is on the scheduler's clock
/// (the same unless `ANCRE_DAEMON_TIME_SCALE` compresses it for tests).
public struct DaemonState: Codable, Sendable, Equatable {
    /// The last runs of one job.
    public struct JobRecord: Codable, Sendable, Equatable {
        /// The fire time of the last run that finished (scheduler clock).
        public var lastScheduled: Date?
        public var lastStart: Date?
        public var lastEnd: Date?
        /// `success` or `failure` for the last finished run; nil before the first.
        public var lastResult: String?
        public var lastError: String?
        public var lastSummary: String?
        public var lastBytes: Int?
        public var lastSeconds: Double?
        public var lastSuccess: Date?
        /// True from a run's start to its end: still true after a crash, so the run is resumed at start.
        public var running = false
        public var runs = 0
        public var failures = 0

        public init() {}
    }

    public var version = 1
    public var pid: Int32 = 0
    public var started: Date?
    public var updated: Date?
    public var jobs: [String: JobRecord] = [:]
    /// The newest oplog entry known durable in the primary repository.
    public var lastDurableOplog: OplogTime?
    /// Gaps the tailer reported, newest last (at most 100 kept).
    public var gaps: [String] = []
    public var gapsTotal = 0
    /// Errors of any kind since the state began: job failures, tailer errors.
    public var errorsTotal = 0
    public var lastError: String?
    /// Stored bytes of the primary repository, measured after each snapshot.
    public var repositoryStoredBytes: Int?

    public init() {}

    public static let fileName = "daemon-state.json"

    public static func url(directory: String) -> URL {
        URL(fileURLWithPath: directory).appendingPathComponent(fileName)
    }

    /// The state in `directory`; an empty state when there is no file yet.
    /// - Throws: `DaemonConfigError` when the file exists but cannot be decoded.
    public static func load(directory: String) throws(DaemonConfigError) -> DaemonState {
        let url = url(directory: directory)
        guard let data = FileManager.default.contents(atPath: url.path) else { return DaemonState() }
        do {
            return try decoder.decode(DaemonState.self, from: data)
        } catch {
            throw DaemonConfigError(line: nil, "the state file \(url.path) is damaged (\(error)); move it away to start afresh")
        }
    }

    /// ISO 8601 with milliseconds, UTC.
    private static func formatter() -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatter().string(from: date))
        }
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = formatter().date(from: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 time with milliseconds: \(text)"))
            }
            return date
        }
        return d
    }()
}

/// The daemon's state in memory and on disk; every change is written at once.
///
/// Threading: thread-safe (a mutex around the state; writes happen under it, so the file
/// never goes backwards). Writes are atomic: a temporary file, fsync, rename.
final class DaemonStateStore: Sendable {
    private let state: Mutex<(value: DaemonState, written: ContinuousClock.Instant)>
    let directory: String
    let logger: Logger
    private let lockDescriptor: Int32

    init(directory: String, logger: Logger) throws(DaemonConfigError) {
        self.logger = logger
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw DaemonConfigError(line: nil, "cannot create the state directory \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
        // One daemon per state directory: a second one would race the first on the file.
        let lockPath = URL(fileURLWithPath: directory).appendingPathComponent("daemon.lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonConfigError(line: nil, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            let pid = (try? DaemonState.load(directory: directory))?.pid ?? 0
            throw DaemonConfigError(line: nil, "another ancre daemon\(pid > 0 ? " (pid \(pid))" : "") uses the state directory \(directory)")
        }
        lockDescriptor = fd  // held until the process exits
        state = Mutex((try DaemonState.load(directory: directory), ContinuousClock.now))
    }

    deinit { close(lockDescriptor) }

    var current: DaemonState { state.withLock { $0.value } }

    /// Applies `change` and writes the file; a write failure is logged, not thrown, so
    /// that the daemon keeps backing up on a full state disk.
    ///
    /// With `coalescing`, the file is written only if the last write is older than that
    /// (the tailer reports progress every second; the file need not follow each report).
    func update(coalescing: Duration? = nil, _ change: (inout DaemonState) -> Void) {
        state.withLock { s in
            change(&s.value)
            s.value.updated = Date()
            if let coalescing, ContinuousClock.now - s.written < coalescing { return }
            do {
                try write(s.value)
                s.written = ContinuousClock.now
            } catch {
                logger.warning("cannot write the state file", metadata: ["state.directory": "\(directory)", "error": "\(error)"])
            }
        }
    }

    private func write(_ s: DaemonState) throws {
        let data = try DaemonState.encoder.encode(s)
        let url = DaemonState.url(directory: directory)
        let temporary = url.path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw DaemonConfigError(line: nil, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw DaemonConfigError(line: nil, "cannot write the state file \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}
