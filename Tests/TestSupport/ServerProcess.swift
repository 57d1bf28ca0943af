import Foundation

/// A MongoDB-compatible server a test can start: the project's replica-set simulator
/// or nx-27017 (SQLite-backed, no oplog).
public enum ServerKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// `Tools/simulator/simulator.py`: a one-node replica set with an oplog and fault injection.
    case simulator
    /// nx-27017 from PyPI (`pip install nx-27017==0.8.1`): no replica set, no oplog.
    case nx27017

    public var description: String { rawValue }
}

/// A test server running as a subprocess on a free loopback port.
///
/// `start` returns once the server prints `listening on HOST:PORT`; `stop()` (or deinit)
/// terminates it and removes its temporary directory. Output goes to `logPath`, read
/// by `log` when a test needs to explain a failure.
///
/// Tests should skip when the server cannot run:
/// `@Test(.enabled(if: ServerProcess.isAvailable(.nx27017)))` or, in parameterized
/// tests, `if let why = ServerProcess.unavailableReason(kind) { try Test.cancel(Comment(rawValue: why)) }`.
public final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched under `lock`; the rest is immutable.
    public let kind: ServerKind
    public let host: String
    public let port: Int
    /// Where stdout and stderr go.
    public let logPath: String
    private let directory: URL
    private let process: Process
    private let lock = NSLock()
    private var stopped = false

    /// `mongodb://127.0.0.1:PORT/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000`: a direct
    /// connection with short timeouts, as tests want.
    public var uri: String {
        "mongodb://\(host):\(port)/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000"
    }

    /// `uri` with `replicaSet=` (for simulator runs that exercise replica-set discovery).
    public func uri(replicaSet: String) -> String { uri + "&replicaSet=\(replicaSet)" }

    /// Starts a server and waits until it accepts connections.
    ///
    /// - Parameters:
    ///   - standalone: simulator only: no replica set, no oplog (`--standalone`).
    ///   - setName: simulator only: the replica set name (`--set-name`).
    ///   - arguments: more command-line arguments for the server.
    ///   - timeout: how long to wait for `listening on`.
    /// - Throws: `ServerProcess.Failure` when python3 or the package is missing, the
    ///   server exits early, or it does not become ready in time (with its log).
    public init(_ kind: ServerKind, standalone: Bool = false, setName: String = "rs0",
                arguments: [String] = [], timeout: Duration = .seconds(20)) throws {
        if let reason = Self.unavailableReason(kind) { throw Failure(message: reason) }
        self.kind = kind
        host = "127.0.0.1"
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ancre-\(kind.rawValue)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        logPath = directory.appendingPathComponent("server.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)

        var args: [String]
        switch kind {
        case .simulator:
            args = [Self.simulatorScript.path, "--host", host, "--port", "0", "--set-name", setName]
            if standalone { args.append("--standalone") }
        case .nx27017:
            // In-memory databases, one per logical database; pid and log files kept in our
            // directory so parallel servers do not collide on /tmp/nx_27017.pid.
            args = ["-m", "nx_27017.nx_27017", "--host", host, "--port", "0", "--data-dir", "memory",
                    "--pid-file", directory.appendingPathComponent("nx.pid").path,
                    "--log-file", directory.appendingPathComponent("nx.log").path]
        }
        args += arguments

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python3!)
        process.arguments = args
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        self.process = process

        // Wait for "listening on HOST:PORT" (the simulator) or "Listening on HOST:PORT" (nx-27017).
        let deadline = ContinuousClock.now + timeout
        var found: Int?
        while found == nil {
            if let text = try? String(contentsOfFile: logPath, encoding: .utf8) {
                found = Self.listeningPort(in: text)
            }
            if found != nil { break }
            if !process.isRunning {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: directory)
                throw Failure(message: "\(kind) exited with status \(process.terminationStatus) before listening:\n\(text.suffix(4000))")
            }
            if ContinuousClock.now > deadline {
                process.terminate()
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                try? FileManager.default.removeItem(at: directory)
                throw Failure(message: "\(kind) did not print 'listening on' within \(timeout):\n\(text.suffix(4000))")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        port = found!
    }

    deinit { stop() }

    /// Terminates the server (SIGTERM, then SIGKILL after 2 s) and removes its directory; idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        Self.terminate(process)
        try? FileManager.default.removeItem(at: directory)
    }

    /// True while the subprocess runs.
    public var isRunning: Bool { process.isRunning }

    /// The server's process id.
    public var pid: Int32 { process.processIdentifier }

    /// CPU seconds (user + system) the server process has used so far, from
    /// `/proc/<pid>/stat` (10 ms ticks); nil where there is no procfs.
    public var cpuSeconds: Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The server's output so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Why `kind` cannot run here (python3 or a package missing), or nil when it can.
    public static func unavailableReason(_ kind: ServerKind) -> String? {
        availability.withLock { cache in
            if let cached = cache[kind] { return cached }
            let reason = probe(kind)
            cache[kind] = .some(reason)
            return reason
        }
    }

    public static func isAvailable(_ kind: ServerKind) -> Bool { unavailableReason(kind) == nil }

    /// The repository root, found from this file's path (Tests/TestSupport/ServerProcess.swift).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var simulatorScript: URL {
        repositoryRoot.appendingPathComponent("Tools/simulator/simulator.py")
    }

    /// Why a server could not start, with its output.
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    // MARK: Internals

    private static let availability = ServerProbeCache<[ServerKind: String?]>([:])

    /// The first python3 on PATH.
    static let python3: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    private static func probe(_ kind: ServerKind) -> String? {
        guard python3 != nil else { return "python3 is not on PATH; \(kind) tests are skipped" }
        let module: String
        switch kind {
        case .simulator:
            guard FileManager.default.fileExists(atPath: simulatorScript.path) else {
                return "\(simulatorScript.path) does not exist; simulator tests are skipped"
            }
            module = "bson, pymongo"
        case .nx27017:
            module = "nx_27017"
        }
        let package = kind == .simulator ? "pymongo" : "nx-27017==0.8.1"
        return pythonImportProblem(module, package: package, skipping: "\(kind) tests")
    }

    /// Stops a server subprocess: SIGTERM, then SIGKILL after 2 s; waits for it.
    static func terminate(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Why `python3 -c "import <modules>"` fails, or nil when it works; for skip messages.
    public static func pythonImportProblem(_ modules: String, package: String, skipping what: String) -> String? {
        guard let python3 else { return "python3 is not on PATH; \(what) are skipped" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python3)
        process.arguments = ["-c", "import \(modules)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return "python3 could not run (\(error)); \(what) are skipped"
        }
        guard process.terminationStatus == 0 else {
            return "python3 cannot import \(modules): run `pip install \(package)`; \(what) are skipped"
        }
        return nil
    }

    static func listeningPort(in text: String) -> Int? {
        for line in text.split(separator: "\n") {
            guard let range = line.range(of: "listening on ", options: .caseInsensitive) else { continue }
            let address = line[range.upperBound...].prefix { !$0.isWhitespace }
            if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), port > 0 {
                return port
            }
        }
        return nil
    }
}

/// Availability probes, run once per kind and process (a process launch each).
private final class ServerProbeCache<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
