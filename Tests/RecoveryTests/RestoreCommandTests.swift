import BSON
import Foundation
import Mongo
import Repository
import Testing
import TestSupport

/// `ancre backup`, `tail` and `restore` end to end: a source under load, restored into
/// fresh servers to recorded moments, compared with the oracle's hashes.
@Suite("ancre restore", .serialized, .timeLimit(.minutes(3)))
struct RestoreCommandTests {
    static var available: Bool { CLIRunner.isAvailable && ServerProcess.isAvailable(.simulator) }

    /// A repository holding a backup of a loaded simulator and the oplog tailed after it,
    /// with oracle records taken while the load ran.
    final class Scenario {
        let source: ServerProcess
        let directory = Fixtures.temporaryDirectory("ancre-restore")
        var repo: String { directory.appendingPathComponent("repo").path }
        var oracle: [Oracle] = []
        let cli = CLIRunner(password: TestRepository.passphrase)

        init(loadSeconds: Double = 3) throws {
            source = try startServer(.simulator, arguments: ["--txn-chunk-ops", "40"])
            try #require(try cli.run(["init", "--repo", repo]).status == 0)
            try loadgen(seconds: 1, seed: 1, oracle: nil)
            try cli.whileTailing(uri: source.uri, repo: repo) {
                let backup = try cli.run(["backup", "--uri", source.uri, "--repo", repo])
                try #require(backup.status == 0, "\(backup)")
                try loadgen(seconds: loadSeconds, seed: 2, oracle: directory.appendingPathComponent("oracle.jsonl"))
            }
        }

        deinit {
            source.stop()
            try? FileManager.default.removeItem(at: directory)
        }

        func loadgen(seconds: Double, seed: Int, oracle: URL?) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", ServerProcess.repositoryRoot.appendingPathComponent("Tools/simulator/loadgen.py").path,
                                 "--uri", source.uri, "--rate", "400", "--duration", "\(seconds)", "--seed", "\(seed)"]
                + (oracle.map { ["--oracle", $0.path, "--oracle-every", "0.5"] } ?? [])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0)
            if let oracle { self.oracle = try Oracle.read(oracle) }
        }

        func restore(into target: ServerProcess, _ arguments: [String]) throws -> CLIRunner.Result {
            try cli.run(["restore", "--repo", repo, "--uri", target.uri,
                         "--checkpoint", directory.appendingPathComponent("checkpoint-\(UUID().uuidString).json").path] + arguments)
        }
    }

    /// One line of loadgen's oracle: the source's hashes at an oplog time.
    struct Oracle {
        var ts: String
        var hashes: [String: [String: String]]

        static func read(_ url: URL) throws -> [Oracle] {
            try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let ts = object["ts"] as! [Int]
                return Oracle(ts: "\(ts[0]):\(ts[1])", hashes: object["hashes"] as! [String: [String: String]])
            }
        }
    }

    /// The target's per-collection hashes for the databases the oracle names.
    static func hashes(_ server: ServerProcess, like expected: [String: [String: String]]) throws -> [String: [String: String]] {
        let c = try client(server)
        var out: [String: [String: String]] = [:]
        for db in expected.keys { out[db] = try dbHash(c, db) }
        return out
    }

    @Test(.enabled(if: available)) func restoresToRecordedMomentsExactly() throws {
        let scenario = try Scenario()
        try #require(scenario.oracle.count >= 3)
        for record in [scenario.oracle[0], scenario.oracle[scenario.oracle.count / 2], scenario.oracle.last!] {
            let target = try startServer(.simulator)
            defer { target.stop() }
            let r = try scenario.restore(into: target, ["--to", "ts:\(record.ts)"])
            try #require(r.status == 0, "\(r)")
            #expect(r.stdout.contains("restored snapshot"))
            #expect(try Self.hashes(target, like: record.hashes) == record.hashes, "restore to ts:\(record.ts)")
        }
    }

    @Test(.enabled(if: available)) func dryRunPlansAndRefusesTargetsOutsideTheWindow() throws {
        let scenario = try Scenario(loadSeconds: 1)
        let target = try startServer(.simulator)
        defer { target.stop() }
        let plan = try scenario.restore(into: target, ["--to", "latest", "--dry-run"])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("base snapshot:") && plan.stdout.contains("replay:"), "\(plan)")
        #expect(try dbHash(try client(target), "clinic0").isEmpty, "a dry run writes nothing")

        let early = try scenario.restore(into: target, ["--to", "ts:1000:0"])
        #expect(early.status == 30, "\(early)")
        #expect(early.stderr.contains("before the oldest restorable moment") && early.stderr.contains("nearest after it"), "\(early)")
        let late = try scenario.restore(into: target, ["--to", "2099-01-01T00:00:00Z"])
        #expect(late.status == 30 && late.stderr.contains("after the newest restorable moment"), "\(late)")
        let bad = try scenario.restore(into: target, ["--to", "yesterday"])
        #expect(bad.status == 64, "\(bad)")
    }

    /// Undo a fatal dropDatabase: find it with `oplog search`, restore `--before` it.
    @Test(.enabled(if: available)) func undoesADropDatabase() throws {
        let scenario = try Scenario(loadSeconds: 1)
        let sourceClient = try client(scenario.source)
        let before = try dbHash(sourceClient, "clinic0")
        // Drop while the tailer is gone: start it again to capture the drop.
        _ = try sourceClient.runCommand(Document(["dropDatabase": .int32(1)]), database: "clinic0")
        let tail = Process()
        tail.executableURL = CLIRunner.binary
        tail.arguments = ["tail", "--uri", scenario.source.uri, "--repo", scenario.repo, "--flush-interval", "200ms", "--compact-every", "off"]
        tail.environment = scenario.cli.environment
        tail.standardOutput = FileHandle.nullDevice
        tail.standardError = FileHandle.nullDevice
        try tail.run()
        Thread.sleep(forTimeInterval: 1.5)
        tail.terminate()
        tail.waitUntilExit()

        let search = try scenario.cli.run(["oplog", "search", "--repo", scenario.repo, "--ns", "clinic0", "--command", "dropDatabase", "--json"])
        try #require(search.status == 0, "\(search)")
        struct Match: Decodable { var ts: String; var op: String; var undoBefore: String? }
        let matches = try JSONDecoder().decode([Match].self, from: Data(search.stdout.utf8))
        let found = try #require(matches.last, "the search finds the dropDatabase: \(search)")
        // MongoDB logs a drop per collection before the dropDatabase: undo from the first.
        let undo = try #require(found.undoBefore)
        #expect(undo < found.ts)

        let target = try startServer(.simulator)
        defer { target.stop() }
        let r = try scenario.restore(into: target, ["--before", undo])
        try #require(r.status == 0, "\(r)")
        #expect(try dbHash(try client(target), "clinic0") == before, "everything up to the drop, nothing after")
        // Restoring again into the same, now non-empty target is refused without --drop.
        let again = try scenario.restore(into: target, ["--before", undo])
        #expect(again.status == 31, "\(again)")
        let replaced = try scenario.restore(into: target, ["--before", undo, "--drop"])
        #expect(replaced.status == 0, "\(replaced)")
    }

    /// A restore killed after its data load resumes from the checkpoint and ends at the
    /// same state as an uninterrupted one.
    @Test(.enabled(if: available)) func resumesAfterBeingKilled() throws {
        let scenario = try Scenario(loadSeconds: 2)
        let record = try #require(scenario.oracle.last)
        let target = try startServer(.simulator)
        defer { target.stop() }
        // Slow replies so the kill lands during the restore.
        _ = try client(target).runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(150)]))
        let checkpoint = scenario.directory.appendingPathComponent("resume.json").path
        let restore = Process()
        restore.executableURL = CLIRunner.binary
        restore.arguments = ["restore", "--repo", scenario.repo, "--uri", target.uri, "--to", "ts:\(record.ts)",
                             "--checkpoint", checkpoint, "--parallel", "1"]
        restore.environment = scenario.cli.environment
        restore.standardOutput = FileHandle.nullDevice
        restore.standardError = FileHandle.nullDevice
        try restore.run()
        // Kill it once the load is recorded as done (replay has started).
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, restore.isRunning {
            if let text = try? String(contentsOfFile: checkpoint, encoding: .utf8), text.contains("\"loaded\":true") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let killed = restore.isRunning
        kill(restore.processIdentifier, SIGKILL)
        restore.waitUntilExit()
        #expect(killed, "the restore was still running when killed")
        _ = try client(target).runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(0)]))

        let resumed = try scenario.cli.run(["restore", "--repo", scenario.repo, "--uri", target.uri, "--to", "ts:\(record.ts)",
                                            "--checkpoint", checkpoint])
        #expect(resumed.status == 0, "\(resumed)")
        #expect(resumed.stdout.contains("(resumed)"), "\(resumed)")
        #expect(try Self.hashes(target, like: record.hashes) == record.hashes)
        #expect(!FileManager.default.fileExists(atPath: checkpoint), "a finished restore removes its checkpoint")
    }
}
