import Foundation
import Repository

/// The daemon's configuration, read from a TOML file (see `Packaging/ancre.toml` for the
/// documented sample and `DaemonConfigSyntax` for the subset of TOML accepted).
///
/// Strict by design: an unknown key or table is an error with its line number (a typo
/// must not silently disable a job); secrets are never inline, only named by file
/// (`*_file`) or environment variable (`*_env`); the file and every secret file must not
/// be readable or writable by group or others. Relative paths are taken from the config
/// file's directory.
public struct DaemonConfig: Sendable {
    /// Where a repository is and how to unlock it.
    public struct RepositoryLocation: Sendable, Equatable {
        /// `primary` for `[repository]`; the table name for `[offsite.NAME]`.
        public var name: String
        /// A directory, or `s3:https://host[:port]/bucket/prefix`.
        public var location: String
        public var passwordFile: String?
        public var passwordEnvironment: String?
        /// AWS-style credentials file for an `s3:` location; else `AWS_*` variables or `~/.aws/credentials`.
        public var credentialsFile: String?
        public var credentialsProfile: String = "default"
        /// Object Lock retention put on every object written there (replication only).
        public var objectLock: ObjectLockRetention?
    }

    public struct Source: Sendable, Equatable {
        public var uriFile: String?
        public var uriEnvironment: String?
        public var flushInterval: Duration = .seconds(1)
        /// nil: never compact.
        public var compactEvery: Duration? = .seconds(300)
    }

    public struct SnapshotJob: Sendable, Equatable {
        public var schedule: Schedule
        public var parallel = 4
        public var tags: [String] = ["scheduled"]
        public var include: [String] = []
        public var exclude: [String] = []
    }

    public struct ReplicationJob: Sendable, Equatable {
        public var schedule: Schedule
    }

    /// `[retention]`: `forget` with these rules, then `prune`, on the primary and every off-site copy.
    public struct RetentionJob: Sendable, Equatable {
        public var schedule: Schedule
        public var keepLast: Int?
        public var keepHourly: Int?
        public var keepDaily: Int?
        public var keepWeekly: Int?
        public var keepMonthly: Int?
        public var keepYearly: Int?
        /// Keep every snapshot and segment needed to restore to any moment within this span.
        public var keepWithinPITR: Duration?
        /// Remove unreferenced data after forgetting snapshots.
        public var prune = true
    }

    /// `[drill]`: a drill of a random moment, from the primary or an off-site copy, into a scratch server.
    public struct DrillJob: Sendable, Equatable {
        public var schedule: Schedule
        /// File holding the URI of the scratch server restored into.
        public var targetURIFile: String
        /// `primary` or the name of an `[offsite.NAME]` table.
        public var repository: String
    }

    public struct Alerts: Sendable, Equatable {
        /// argv of the hook; empty: alerts are only logged.
        public var command: [String] = []
        public var rpoThreshold: Duration = .seconds(300)
        /// The same alert (kind and job) fires at most once per this span.
        public var repeatAfter: Duration = .seconds(3600)
    }

    public var stateDirectory: String
    /// `host:port` of the Prometheus endpoint; nil when `listen = "off"`.
    public var metricsListen: (host: String, port: UInt16)?
    public var retryAttempts = 3
    public var retryDelay: Duration = .seconds(60)
    /// On SIGTERM, how long a running job may take to finish before it is abandoned
    /// (safe: every write is atomic and ordered; the run resumes at the next start).
    public var stopGrace: Duration = .seconds(60)
    public var source: Source
    public var repository: RepositoryLocation
    public var offsite: [RepositoryLocation]
    public var snapshot: SnapshotJob
    public var replication: ReplicationJob
    public var retention: RetentionJob?
    public var drill: DrillJob?
    public var alerts: Alerts

    public static let defaultSnapshotSchedule = "0 */2 * * *"
    public static let defaultReplicationSchedule = "0 1 * * *"
    public static let defaultRetentionSchedule = "0 3 * * *"
    public static let defaultDrillSchedule = "0 4 * * 0"

    /// Reads and validates the file at `path`.
    /// - Throws: `DaemonConfigError` for permissions, syntax, unknown keys, bad values and
    ///   missing or exposed secret files.
    public static func load(path: String) throws(DaemonConfigError) -> DaemonConfig {
        try checkPrivate(path, what: "the config file")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DaemonConfigError(line: nil, "cannot read the config file \(path)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let config = try DaemonConfig(parsing: String(decoding: data, as: UTF8.self), directory: directory)
        try config.checkSecretFiles()
        return config
    }

    /// Refuses a file with any group or other permission bit (it names secrets, or is one).
    static func checkPrivate(_ path: String, what: String) throws(DaemonConfigError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DaemonConfigError(line: nil, "\(what) \(path) does not exist or cannot be read")
        }
        let mode = info.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw DaemonConfigError(line: nil, "\(what) \(path) is accessible to group or others (mode \(String(mode, radix: 8))); run chmod 600 \(path)")
        }
    }

    private func checkSecretFiles() throws(DaemonConfigError) {
        var files: [(String, String)] = []
        if let f = source.uriFile { files.append((f, "[source] uri_file")) }
        for r in [repository] + offsite {
            let table = r.name == "primary" ? "[repository]" : "[offsite.\(r.name)]"
            if let f = r.passwordFile { files.append((f, "\(table) password_file")) }
            if let f = r.credentialsFile { files.append((f, "\(table) credentials_file")) }
        }
        if let drill { files.append((drill.targetURIFile, "[drill] target_uri_file")) }
        for (file, what) in files { try Self.checkPrivate(file, what: what) }
    }

    /// Parses config text; `directory` anchors relative paths. No file-system checks.
    public init(parsing text: String, directory: String) throws(DaemonConfigError) {
        let syntax = try DaemonConfigSyntax(parsing: text)
        let reader = Reader(syntax: syntax, directory: directory)
        let known: Set<String> = ["", "daemon", "metrics", "source", "repository", "snapshot", "replication", "retention", "drill", "alerts"]
        for name in syntax.order where !known.contains(name) && !name.hasPrefix("offsite.") {
            throw DaemonConfigError(line: syntax.tables[name]!.line, "unknown table [\(name)] (known: [daemon], [metrics], [source], [repository], [offsite.NAME], [snapshot], [replication], [retention], [drill], [alerts])")
        }

        try reader.table("", keys: [])
        try reader.table("daemon", keys: ["state_directory", "retry_attempts", "retry_delay", "stop_grace"])
        guard let state = try reader.path("daemon", "state_directory") else {
            throw DaemonConfigError(line: nil, "[daemon] state_directory is required: where the daemon keeps its state file")
        }
        stateDirectory = state
        retryAttempts = try reader.integer("daemon", "retry_attempts", in: 1...100) ?? 3
        retryDelay = try reader.duration("daemon", "retry_delay") ?? .seconds(60)
        stopGrace = try reader.duration("daemon", "stop_grace") ?? .seconds(60)

        try reader.table("metrics", keys: ["listen"])
        let listen = try reader.string("metrics", "listen") ?? "127.0.0.1:9464"
        if listen == "off" {
            metricsListen = nil
        } else {
            guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
                throw DaemonConfigError(line: reader.line("metrics", "listen"), "listen must be host:port (e.g. 127.0.0.1:9464) or \"off\"")
            }
            metricsListen = (String(listen[..<colon]), port)
        }

        try reader.table("source", keys: ["uri_file", "uri_env", "flush_interval", "compact_every"], secrets: ["uri": "uri_file or uri_env"])
        source = Source(uriFile: try reader.path("source", "uri_file"), uriEnvironment: try reader.string("source", "uri_env"))
        guard (source.uriFile == nil) != (source.uriEnvironment == nil) else {
            throw DaemonConfigError(line: syntax.tables["source"]?.line, "[source] needs exactly one of uri_file or uri_env")
        }
        source.flushInterval = try reader.duration("source", "flush_interval") ?? .seconds(1)
        if try reader.string("source", "compact_every") == "off" {
            source.compactEvery = nil
        } else {
            source.compactEvery = try reader.duration("source", "compact_every") ?? .seconds(300)
        }

        guard syntax.tables["repository"] != nil else { throw DaemonConfigError(line: nil, "[repository] is required: the repository the daemon backs up into") }
        repository = try reader.repository("repository", name: "primary", needsPassword: true)
        if let clash = syntax.order.first(where: { $0 == "offsite.primary" }) {
            throw DaemonConfigError(line: syntax.tables[clash]!.line, "[offsite.primary]: \"primary\" names [repository]; choose another name")
        }
        offsite = try syntax.order.filter { $0.hasPrefix("offsite.") }.map { table throws(DaemonConfigError) in
            try reader.repository(table, name: String(table.dropFirst("offsite.".count)), needsPassword: false)
        }

        try reader.table("snapshot", keys: ["schedule", "parallel", "tags", "include", "exclude"])
        snapshot = SnapshotJob(schedule: try reader.schedule("snapshot", default: Self.defaultSnapshotSchedule))
        snapshot.parallel = try reader.integer("snapshot", "parallel", in: 1...64) ?? 4
        snapshot.tags = try reader.strings("snapshot", "tags") ?? ["scheduled"]
        snapshot.include = try reader.strings("snapshot", "include") ?? []
        snapshot.exclude = try reader.strings("snapshot", "exclude") ?? []

        try reader.table("replication", keys: ["schedule"])
        if syntax.tables["replication"] != nil && offsite.isEmpty {
            throw DaemonConfigError(line: syntax.tables["replication"]!.line, "[replication] has nowhere to copy to: add an [offsite.NAME] table")
        }
        replication = ReplicationJob(schedule: try reader.schedule("replication", default: Self.defaultReplicationSchedule))

        try reader.table("retention", keys: ["schedule", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within_pitr", "prune"])
        if syntax.tables["retention"] != nil {
            var r = RetentionJob(schedule: try reader.schedule("retention", default: Self.defaultRetentionSchedule))
            r.keepLast = try reader.integer("retention", "keep_last", in: 1...100_000)
            r.keepHourly = try reader.integer("retention", "keep_hourly", in: 1...100_000)
            r.keepDaily = try reader.integer("retention", "keep_daily", in: 1...100_000)
            r.keepWeekly = try reader.integer("retention", "keep_weekly", in: 1...100_000)
            r.keepMonthly = try reader.integer("retention", "keep_monthly", in: 1...100_000)
            r.keepYearly = try reader.integer("retention", "keep_yearly", in: 1...100_000)
            r.keepWithinPITR = try reader.duration("retention", "keep_within_pitr")
            r.prune = try reader.boolean("retention", "prune") ?? true
            if r.keepLast == nil && r.keepHourly == nil && r.keepDaily == nil && r.keepWeekly == nil && r.keepMonthly == nil && r.keepYearly == nil
                && r.keepWithinPITR == nil {
                throw DaemonConfigError(line: syntax.tables["retention"]!.line, "[retention] keeps nothing: set at least one keep_* rule, or remove the table")
            }
            retention = r
        }

        try reader.table("drill", keys: ["schedule", "target_uri_file", "repository"], secrets: ["target_uri": "target_uri_file"])
        if syntax.tables["drill"] != nil {
            guard let target = try reader.path("drill", "target_uri_file") else {
                throw DaemonConfigError(line: syntax.tables["drill"]!.line, "[drill] target_uri_file is required: the scratch server a drill restores into")
            }
            let name = try reader.string("drill", "repository") ?? "primary"
            guard name == "primary" || offsite.contains(where: { $0.name == name }) else {
                throw DaemonConfigError(line: reader.line("drill", "repository"), "[drill] repository \"\(name)\" is neither primary nor an [offsite.NAME] table")
            }
            drill = DrillJob(schedule: try reader.schedule("drill", default: Self.defaultDrillSchedule), targetURIFile: target, repository: name)
        }

        try reader.table("alerts", keys: ["command", "rpo_threshold", "repeat_after"])
        alerts = Alerts()
        alerts.command = try reader.strings("alerts", "command") ?? []
        if syntax.tables["alerts"]?.entries["command"] != nil && alerts.command.isEmpty {
            throw DaemonConfigError(line: reader.line("alerts", "command"), "command must name a program: [\"/path/to/hook\", \"arg\"]")
        }
        if let first = alerts.command.first, !first.hasPrefix("/") {
            alerts.command[0] = URL(fileURLWithPath: directory).appendingPathComponent(first).path
        }
        alerts.rpoThreshold = try reader.duration("alerts", "rpo_threshold") ?? .seconds(300)
        alerts.repeatAfter = try reader.duration("alerts", "repeat_after") ?? .seconds(3600)
    }

    /// Typed access to the parsed tables, with line-numbered errors.
    private struct Reader {
        let syntax: DaemonConfigSyntax
        let directory: String

        func line(_ table: String, _ key: String) -> Int? { syntax.tables[table]?.entries[key]?.line }

        /// Rejects unknown keys of `table` (absent tables are fine), with a specific
        /// message for inline secrets.
        func table(_ table: String, keys: Set<String>, secrets: [String: String] = [:]) throws(DaemonConfigError) {
            guard let t = syntax.tables[table] else { return }
            for (key, entry) in t.entries.sorted(by: { $0.value.line < $1.value.line }) where !keys.contains(key) {
                if let instead = secrets[key] {
                    throw DaemonConfigError(line: entry.line, "\(key) must not be inline (secrets stay out of the config): use \(instead)")
                }
                let place = table.isEmpty ? "at the top level (put it in a [table])" : "in [\(table)]"
                throw DaemonConfigError(line: entry.line, "unknown key \(key) \(place); known: \(keys.sorted().joined(separator: ", "))")
            }
        }

        func string(_ table: String, _ key: String) throws(DaemonConfigError) -> String? {
            guard let entry = syntax.tables[table]?.entries[key] else { return nil }
            guard case .string(let s) = entry.value else { throw DaemonConfigError(line: entry.line, "\(key) must be a string, not \(entry.value.kind)") }
            guard !s.isEmpty else { throw DaemonConfigError(line: entry.line, "\(key) is empty") }
            return s
        }

        func path(_ table: String, _ key: String) throws(DaemonConfigError) -> String? {
            guard let s = try string(table, key) else { return nil }
            return s.hasPrefix("/") ? s : URL(fileURLWithPath: directory).appendingPathComponent(s).path
        }

        func integer(_ table: String, _ key: String, in range: ClosedRange<Int>) throws(DaemonConfigError) -> Int? {
            guard let entry = syntax.tables[table]?.entries[key] else { return nil }
            guard case .integer(let n) = entry.value else { throw DaemonConfigError(line: entry.line, "\(key) must be an integer, not \(entry.value.kind)") }
            guard range.contains(n) else { throw DaemonConfigError(line: entry.line, "\(key) must be between \(range.lowerBound) and \(range.upperBound)") }
            return n
        }

        func boolean(_ table: String, _ key: String) throws(DaemonConfigError) -> Bool? {
            guard let entry = syntax.tables[table]?.entries[key] else { return nil }
            guard case .boolean(let b) = entry.value else { throw DaemonConfigError(line: entry.line, "\(key) must be true or false, not \(entry.value.kind)") }
            return b
        }

        func strings(_ table: String, _ key: String) throws(DaemonConfigError) -> [String]? {
            guard let entry = syntax.tables[table]?.entries[key] else { return nil }
            guard case .array(let items) = entry.value else { throw DaemonConfigError(line: entry.line, "\(key) must be an array of strings, not \(entry.value.kind)") }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw DaemonConfigError(line: entry.line, "\(key) must hold only strings") }
                out.append(s)
            }
            return out
        }

        func duration(_ table: String, _ key: String) throws(DaemonConfigError) -> Duration? {
            guard let text = try string(table, key) else { return nil }
            guard let d = DaemonConfig.duration(text) else {
                throw DaemonConfigError(line: line(table, key), "\(key) = \"\(text)\" is not a duration like 500ms, 30s, 5m, 2h or 7d")
            }
            return d
        }

        func schedule(_ table: String, default expression: String) throws(DaemonConfigError) -> Schedule {
            let text = try string(table, "schedule") ?? expression
            do {
                return try Schedule(text)
            } catch {
                throw DaemonConfigError(line: line(table, "schedule"), "[\(table)] schedule: \(error.message)")
            }
        }

        func repository(_ table: String, name: String, needsPassword: Bool) throws(DaemonConfigError) -> RepositoryLocation {
            try self.table(table, keys: ["location", "password_file", "password_env", "credentials_file", "credentials_profile",
                                         "object_lock", "object_lock_mode"],
                           secrets: ["password": "password_file or password_env", "passphrase": "password_file or password_env",
                                     "aws_secret_access_key": "credentials_file", "secret_access_key": "credentials_file"])
            let header = syntax.tables[table]!.line
            guard let location = try string(table, "location") else {
                throw DaemonConfigError(line: header, "[\(table)] location is required: a directory or s3:https://host/bucket/prefix")
            }
            var r = RepositoryLocation(
                name: name,
                location: location.hasPrefix("s3:") || location.hasPrefix("/") ? location : URL(fileURLWithPath: directory).appendingPathComponent(location).path)
            r.passwordFile = try path(table, "password_file")
            r.passwordEnvironment = try string(table, "password_env")
            if r.passwordFile != nil && r.passwordEnvironment != nil {
                throw DaemonConfigError(line: line(table, "password_env"), "[\(table)] has both password_file and password_env; keep one")
            }
            if needsPassword && r.passwordFile == nil && r.passwordEnvironment == nil {
                throw DaemonConfigError(line: header, "[\(table)] needs password_file or password_env")
            }
            r.credentialsFile = try path(table, "credentials_file")
            r.credentialsProfile = try string(table, "credentials_profile") ?? "default"
            if r.credentialsFile != nil && !location.hasPrefix("s3:") {
                throw DaemonConfigError(line: line(table, "credentials_file"), "credentials_file applies only to s3: locations")
            }
            let modeText = try string(table, "object_lock_mode")
            if let period = try duration(table, "object_lock") {
                guard location.hasPrefix("s3:") else {
                    throw DaemonConfigError(line: line(table, "object_lock"), "object_lock applies only to s3: locations (an S3 bucket feature)")
                }
                guard let mode = ObjectLockRetention.Mode(rawValue: (modeText ?? "GOVERNANCE").uppercased()) else {
                    throw DaemonConfigError(line: line(table, "object_lock_mode"), "object_lock_mode is GOVERNANCE or COMPLIANCE")
                }
                r.objectLock = ObjectLockRetention(mode: mode, duration: period)
            } else if modeText != nil {
                throw DaemonConfigError(line: line(table, "object_lock_mode"), "object_lock_mode needs object_lock (how long objects stay locked)")
            }
            return r
        }
    }

    /// Parses `500ms`, `30s`, `5m`, `2h`, `7d`, `2w` (the config and the command line share it).
    public static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            // At most a thousand years: a larger number is a typo, and would overflow.
            guard let value = Double(text.dropLast(suffix.count)), value > 0, value.isFinite,
                  value * scale <= 1000 * 365 * 86_400 else { return nil }
            return .milliseconds(Int64(value * scale * 1000))
        }
        return nil
    }
}

extension DaemonConfig.RepositoryLocation {
    /// The storage at `location`.
    /// - Throws: `RepositoryError` (bad s3: location, missing credentials, unreadable directory).
    public func storage() throws -> any Storage {
        guard location.hasPrefix("s3:") else { return try LocalBackend(path: location) }
        let credentials: S3Credentials
        if let credentialsFile {
            guard let found = try S3Credentials.fromFile(credentialsFile, profile: credentialsProfile) else {
                throw RepositoryError(.accessDenied, "no profile '\(credentialsProfile)' in \(credentialsFile)")
            }
            credentials = found
        } else {
            credentials = try S3Credentials.fromEnvironment()
        }
        return try S3Backend(location: try S3Location.parse(location), credentials: credentials, options: S3Options(objectLock: objectLock))
    }

    /// The passphrase, from `password_file` (first line) or `password_env`.
    /// - Throws: `DaemonConfigError` when the file is unreadable or empty or the variable unset.
    public func passphrase(environment: [String: String] = ProcessInfo.processInfo.environment) throws(DaemonConfigError) -> String {
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8),
                  let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, !line.isEmpty else {
                throw DaemonConfigError(line: nil, "cannot read a passphrase from \(passwordFile) (first line)")
            }
            return String(line)
        }
        if let name = passwordEnvironment {
            guard let value = environment[name], !value.isEmpty else { throw DaemonConfigError(line: nil, "the environment variable \(name) (password_env) is not set") }
            return value
        }
        throw DaemonConfigError(line: nil, "no passphrase configured for repository \(name)")
    }
}

extension DaemonConfig.Source {
    /// The connection string, from `uri_file` (first line) or `uri_env`.
    public func connectionString(environment: [String: String] = ProcessInfo.processInfo.environment) throws(DaemonConfigError) -> String {
        if let uriFile {
            guard let text = try? String(contentsOfFile: uriFile, encoding: .utf8),
                  let line = text.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
                throw DaemonConfigError(line: nil, "cannot read a MongoDB URI from \(uriFile) (first line)")
            }
            return line
        }
        if let name = uriEnvironment, let value = environment[name], !value.isEmpty { return value }
        throw DaemonConfigError(line: nil, "the environment variable \(uriEnvironment ?? "") (uri_env) is not set")
    }
}
