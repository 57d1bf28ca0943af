import Foundation

/// Runs the built `ancre` executable as a subprocess, for end-to-end tests.
///
/// The binary is looked up next to the running test binary (SwiftPM puts both in the
/// same products directory), or at `ANCRE_BINARY` when set. Tests skip when it is not
/// built: `@Test(.enabled(if: CLIRunner.isAvailable, Comment(rawValue: CLIRunner.unavailableReason)))`.
/// Every run gets `ANCRE_SCRYPT_N=1024` (a weak KDF, so tests unlock in milliseconds)
/// and no inherited `ANCRE_*` variables unless given. Thread-safe: each run is its own process.
public struct CLIRunner: Sendable {
    /// What one run printed and how it ended.
    public struct Result: Sendable, CustomStringConvertible {
        public var arguments: [String]
        public var status: Int32
        /// stdout as text (empty when it is not UTF-8); `stdoutData` has the bytes.
        public var stdout: String
        public var stdoutData: Data
        public var stderr: String
        /// stdout and stderr together, for "the output names X" checks.
        public var output: String { stdout + "\n" + stderr }
        public var description: String {
            "ancre \(arguments.joined(separator: " ")) -> exit \(status)\n--- stdout:\n\(stdout)\n--- stderr:\n\(stderr)"
        }
    }

    /// The `ancre` executable, or nil when it has not been built.
    public static let binary: URL? = {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["ANCRE_BINARY"], fm.isExecutableFile(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).resolvingSymlinksInPath()
        // Linux: .build/<triple>/debug/AncrePackageTests.xctest; macOS: …/debug/X.xctest/Contents/MacOS/X.
        var directory = argv0.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("ancre"))
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("ancre"))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("ancre"))
        return candidates.first { fm.isExecutableFile(atPath: $0.path) }
    }()

    public static var isAvailable: Bool { binary != nil }
    public static let unavailableReason = "the ancre executable is not built next to the test binary (run `swift build` first, or set ANCRE_BINARY)"

    /// Environment every run starts from.
    public var environment: [String: String]

    public init(password: String? = nil, environment: [String: String] = [:]) {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ANCRE_") }
        env["ANCRE_SCRYPT_N"] = "1024"
        if let password { env["ANCRE_PASSWORD"] = password }
        env.merge(environment) { $1 }
        self.environment = env
    }

    /// Runs `ancre arguments…`, with `environment` added to (or, for nil values, removed from) the runner's.
    /// - Throws: only when the process cannot be started.
    @discardableResult
    public func run(_ arguments: [String], environment extra: [String: String?] = [:]) throws -> Result {
        guard let binary = Self.binary else { throw RunnerFailure(message: Self.unavailableReason) }
        var env = environment
        for (key, value) in extra { env[key] = value }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ancre-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        process.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        let stdoutData = (try? Data(contentsOf: out)) ?? Data()
        return Result(
            arguments: arguments, status: process.terminationStatus,
            stdout: String(data: stdoutData, encoding: .utf8) ?? "", stdoutData: stdoutData,
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// `run` with variadic arguments.
    @discardableResult
    public func callAsFunction(_ arguments: String...) throws -> Result { try run(arguments) }

    public struct RunnerFailure: Error, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }
}

extension CLIRunner {
    /// Starts `ancre ARGUMENTS` in the background, logging at info level, its stdout and
    /// stderr appended to `log` (created empty); the caller stops it.
    public func start(_ arguments: [String], log: URL, environment extra: [String: String] = [:]) throws -> Process {
        guard let binary = Self.binary else { throw CocoaError(.executableNotLoadable) }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = environment
        env["ANCRE_LOG_LEVEL"] = "info"
        env.merge(extra) { _, new in new }
        process.environment = env
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
        return process
    }

    /// Runs `body` while `ancre tail` (200 ms flush, no compaction) captures `uri` into
    /// `repo`: the tail gets half a second to start first and a second after `body` to
    /// seal the last entries, then stops (SIGTERM seals its open segment).
    public func whileTailing<T>(uri: String, repo: String, _ body: () throws -> T) throws -> T {
        guard let binary = Self.binary else { throw CocoaError(.executableNotLoadable) }
        let tail = Process()
        tail.executableURL = binary
        tail.arguments = ["tail", "--uri", uri, "--repo", repo, "--flush-interval", "200ms", "--compact-every", "off"]
        tail.environment = environment
        tail.standardOutput = FileHandle.nullDevice
        tail.standardError = FileHandle.nullDevice
        try tail.run()
        defer {
            tail.terminate()
            tail.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.5)
        let result = try body()
        Thread.sleep(forTimeInterval: 1.0)
        return result
    }
}
