import BSON
import Foundation
import Mongo
import Testing
import TestSupport
@testable import Capture
@testable import Repository

/// `ancre tail` as a process: kill -9 at random moments loses nothing reported durable.
@Suite("ancre tail", .serialized, .timeLimit(.minutes(2)))
struct TailCommandTests {
    /// Starts `ancre tail` with stderr to a file.
    func startTail(uri: String, repo: String, log: URL) throws -> Process {
        try CLIRunner(password: TestRepository.passphrase)
            .start(["tail", "--uri", uri, "--repo", repo, "--flush-interval", "200ms", "--compact-every", "off"], log: log)
    }

    /// Every `oplog.ts=S:I` the process logged as durable.
    func reportedDurable(_ log: URL) -> [OplogTime] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains("oplog durable") }.compactMap { line in
            guard let range = line.range(of: "oplog.ts=") else { return nil }
            let parts = line[range.upperBound...].prefix { !$0.isWhitespace }.split(separator: ":")
            guard parts.count == 2, let t = UInt32(parts[0]), let i = UInt32(parts[1]) else { return nil }
            return OplogTime(t: t, i: i)
        }
    }

    @Test("(b) kill -9 at random moments, restarted each time: nothing reported durable is lost, no gap, no duplicate",
          .enabled(if: CLIRunner.isAvailable, Comment(rawValue: CLIRunner.unavailableReason)))
    func killNine() throws {
        if let reason = ServerProcess.unavailableReason(.simulator) { try Test.cancel(Comment(rawValue: reason)) }
        let server = try ServerProcess(.simulator)
        defer { server.stop() }
        let client = try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(3))
        let directory = Fixtures.temporaryDirectory("ancre-tail")
        defer { try? FileManager.default.removeItem(at: directory) }
        let repo = directory.appendingPathComponent("repo").path
        let initialized = try CLIRunner(password: TestRepository.passphrase).run(["init", "--repo", repo])
        try #require(initialized.status == 0, "\(initialized)")

        let writer = OplogTailerTests.Writer(client: client)
        var reported: [OplogTime] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<4 {
            let log = directory.appendingPathComponent("tail-\(round).log")
            let process = try startTail(uri: server.uri, repo: repo, log: log)
            Thread.sleep(forTimeInterval: Double.random(in: 0.6...1.4, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let durable = reportedDurable(log)
            #expect(!durable.isEmpty, "round \(round) reported nothing durable:\n\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
            reported += durable
        }
        writer.stop()
        // A last run ends cleanly on SIGTERM after catching up.
        let log = directory.appendingPathComponent("tail-final.log")
        let process = try startTail(uri: server.uri, repo: repo, log: log)
        Thread.sleep(forTimeInterval: 1.2)
        process.terminate()
        process.waitUntilExit()
        let finalLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(finalLog)")
        #expect(!finalLog.contains("GAP"))
        reported += reportedDurable(log)

        let repository = try Repository.open(storage: try LocalBackend(path: repo), passphrase: TestRepository.passphrase)
        let view = try TimelineView.load(repository)
        #expect(view.gaps.isEmpty)
        #expect(view.chains.count == 1, "one contiguous run across every kill")
        let entries = try OplogTailerTests.expectExactCopy(repository, client)
        let captured = Set(entries.map { d in OplogTailerTests.ts(d) }.map { OplogTime(t: $0.seconds, i: $0.increment) })
        #expect(captured.count == entries.count, "no duplicate")
        #expect(reported.allSatisfy(captured.contains), "every entry reported durable is in the repository")
        #expect(try repository.listLocks().allSatisfy { $0.info.isStale(staleAfter: .seconds(1800)) }, "the clean run released its lock; killed ones are stale (pid gone)")
        print("kill -9: \(entries.count) entries in \(view.segments.count) segments after 4 kills; \(reported.count) durable reports checked")
    }
}
