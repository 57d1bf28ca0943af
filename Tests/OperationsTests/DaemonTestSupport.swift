import BSON
import Foundation
import Mongo
import Repository
import Testing
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Operations

/// A daemon setup on disk for end-to-end tests: a repository, private secret files,
/// an alert hook that appends to a file, and a config; runs `ancre daemon` as a process.
final class DaemonSetup {
    let directory = Fixtures.temporaryDirectory("ancre-daemon")
    let cli = CLIRunner(password: TestRepository.passphrase)
    var repo: String { directory.appendingPathComponent("repo").path }
    var configPath: String { directory.appendingPathComponent("ancre.toml").path }
    var alertLog: String { directory.appendingPathComponent("alerts.log").path }
    var stateDirectory: String { directory.appendingPathComponent("state").path }

    /// Writes the secrets and a config whose tables are `tables` (appended to the common ones).
    let rpoThreshold: String

    init(sourceURI: String, tables: String, rpoThreshold: String = "5m") throws {
        self.rpoThreshold = rpoThreshold
        let initialized = try cli.run(["init", "--repo", repo])
        try #require(initialized.status == 0, "\(initialized)")
        try write("uri", sourceURI + "\n")
        try write("passphrase", TestRepository.passphrase + "\n")
        try write("alert.sh", "#!/bin/sh\necho \"$ANCRE_ALERT_KIND|$ANCRE_ALERT_JOB|$ANCRE_ALERT_MESSAGE\" >> \(alertLog)\n", mode: 0o700)
        try writeConfig(tables)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func writeConfig(_ tables: String) throws {
        try write("ancre.toml", """
            [daemon]
            state_directory = "state"
            retry_attempts = 2
            retry_delay = "1h"
            [metrics]
            listen = "127.0.0.1:0"
            [source]
            uri_file = "uri"
            flush_interval = "200ms"
            compact_every = "off"
            [repository]
            location = "repo"
            password_file = "passphrase"
            [alerts]
            command = ["alert.sh"]
            repeat_after = "10m"
            rpo_threshold = "\(rpoThreshold)"

            """ + tables)
    }

    func write(_ name: String, _ text: String, mode: Int = 0o600) throws {
        let path = directory.appendingPathComponent(name).path
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw DaemonConfigError(line: nil, "cannot write \(path)")
        }
    }

    /// Starts `ancre daemon` with the scheduler's clock 1800 times faster (2 h in 4 s).
    func startDaemon(log name: String, scale: Int = 1800) throws -> (Process, URL) {
        let log = directory.appendingPathComponent(name)
        let process = try cli.start(["daemon", "--config", configPath], log: log, environment: ["ANCRE_DAEMON_TIME_SCALE": "\(scale)"])
        return (process, log)
    }

    /// Starts the daemon, waits up to `seconds` for a replication run started after now to
    /// succeed, then stops it (SIGTERM): whether that run succeeded, the exit status, the log.
    func runUntilReplicated(log name: String, seconds: Double = 60) throws -> (succeeded: Bool, status: Int32, log: URL) {
        let started = Date()
        let (daemon, log) = try startDaemon(log: name)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        let succeeded = wait(seconds) {
            let r = state.jobs["replication"]
            return r?.running == false && r?.lastResult == "success" && (r?.lastStart ?? .distantPast) > started
        }
        return (succeeded, terminate(daemon), log)
    }

    func text(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

    var state: DaemonState { (try? DaemonState.load(directory: stateDirectory)) ?? DaemonState() }

    var alerts: [String] {
        ((try? String(contentsOfFile: alertLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
    @discardableResult
    func wait(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition()
    }

    /// SIGTERM, then the exit status (SIGKILL and a failed expectation after 30 s).
    func terminate(_ process: Process) -> Int32 {
        process.terminate()
        let stopped = wait(30) { !process.isRunning }
        if !stopped {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("the daemon did not stop within 30 s of SIGTERM")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The metrics address the daemon logged (it listens on a free port).
    func metricsAddress(_ log: URL) -> String? {
        guard let line = text(log).split(separator: "\n").first(where: { $0.contains("metrics listening") }),
              let range = line.range(of: "metrics.address=") else { return nil }
        return String(line[range.upperBound...].prefix { !$0.isWhitespace })
    }

    /// A schedule firing once a day at the scheduler-clock time `hours` from now
    /// (the daemon's compressed clock starts at the real time it starts).
    static func dailyAt(hoursFromNow hours: Double) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.hour, .minute], from: Date().addingTimeInterval(hours * 3600))
        return "\(c.minute!) \(c.hour!) * * *"
    }

    /// Every `ancre` log line's `key=` value, as integers, in order.
    static func values(_ key: String, in text: String, lines marker: String) -> [Int] {
        text.split(separator: "\n").filter { $0.contains(marker) }.compactMap { line in
            guard let range = line.range(of: " \(key)=") else { return nil }
            return Int(line[range.upperBound...].prefix { !$0.isWhitespace })
        }
    }
}

enum DaemonTestSupport {
    static var available: Bool { CLIRunner.isAvailable && ServerProcess.isAvailable(.simulator) }

    static func startServer(_ kind: ServerKind, arguments: [String] = []) throws -> ServerProcess {
        if let reason = ServerProcess.unavailableReason(kind) { try Test.cancel(Comment(rawValue: reason)) }
        return try ServerProcess(kind, arguments: arguments)
    }

    static func client(_ server: ServerProcess) throws -> MongoClient {
        try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(5))
    }

    /// `dbHash` collections of `database`: name -> md5.
    static func dbHash(_ client: MongoClient, _ database: String) throws -> [String: String] {
        let reply = try client.runCommand(Document(["dbHash": .int32(1)]), database: database)
        var out: [String: String] = [:]
        for (k, v) in reply["collections"]?.documentValue?.elements ?? [] { out[k] = v.stringValue }
        return out
    }

    /// Runs loadgen against `uri`; with `oracle`, records (ts, hashes) every 0.5 s.
    static func loadgen(uri: String, seconds: Double, seed: Int, oracle: URL?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", ServerProcess.repositoryRoot.appendingPathComponent("Tools/simulator/loadgen.py").path,
                             "--uri", uri, "--rate", "300", "--duration", "\(seconds)", "--seed", "\(seed)"]
            + (oracle.map { ["--oracle", $0.path, "--oracle-every", "0.5"] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// One oracle line: the source's hashes at an oplog time.
    struct Oracle {
        var ts: OplogTime
        var hashes: [String: [String: String]]

        static func read(_ url: URL) throws -> [Oracle] {
            try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let ts = object["ts"] as! [Int]
                return Oracle(ts: OplogTime(t: UInt32(ts[0]), i: UInt32(ts[1])), hashes: object["hashes"] as! [String: [String: String]])
            }
        }
    }

    /// GET http://address/path: status and body.
    static func get(_ address: String, _ path: String) throws -> (Int, String) {
        let url = try #require(URL(string: "http://\(address)\(path)"))
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, String) = (0, "")
        let task = URLSession.shared.dataTask(with: url) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data.map { String(decoding: $0, as: UTF8.self) } ?? "")
            done.signal()
        }
        task.resume()
        _ = done.wait(timeout: .now() + 10)
        return result
    }
}
