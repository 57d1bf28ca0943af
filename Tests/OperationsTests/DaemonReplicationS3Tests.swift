import Foundation
import Repository
import Testing
import TestSupport
@testable import Operations

/// The replication job against S3 (moto), interrupted and faulty.
@Suite("daemon replication to S3", .serialized, .timeLimit(.minutes(3)),
       .enabled(if: ServerMoto.isAvailable && DaemonTestSupport.available, Comment(rawValue: ServerMoto.unavailableReason ?? CLIRunner.unavailableReason)))
struct DaemonReplicationS3Tests {
    typealias S = DaemonTestSupport

    /// A setup copying to a new moto bucket through `proxy` (or directly).
    static func setup(source: ServerProcess, moto: ServerMoto, bucket: String, port: Int, replication: String, retryAttempts: Int = 2) throws -> DaemonSetup {
        let setup = try DaemonSetup(sourceURI: source.uri, tables: "")
        try setup.write("s3-credentials", "[default]\naws_access_key_id = \(moto.credentials.accessKeyID)\naws_secret_access_key = \(moto.credentials.secretAccessKey)\n")
        try configure(setup, bucket: bucket, port: port, replication: replication, retryAttempts: retryAttempts)
        return setup
    }

    static func configure(_ setup: DaemonSetup, bucket: String, port: Int, replication: String, retryAttempts: Int) throws {
        try setup.writeConfig("""
            [offsite.s3]
            location = "s3:http://127.0.0.1:\(port)/\(bucket)/copy"
            credentials_file = "s3-credentials"
            [replication]
            schedule = "\(replication)"
            """)
        // retry_attempts lives in [daemon], written by writeConfig; adjust it in place.
        let text = try String(contentsOfFile: setup.configPath, encoding: .utf8)
            .replacingOccurrences(of: "retry_attempts = 2", with: "retry_attempts = \(retryAttempts)")
        try setup.write("ancre.toml", text)
    }

    /// Keys in the bucket's copy, without locks (a killed copy leaves its stale lock behind).
    static func keys(_ backend: S3Backend) throws -> Set<String> {
        Set(try backend.list(prefix: "").map(\.key).filter { !$0.hasPrefix("locks/") })
    }

    @Test func killedMidReplicationResumesWithoutCopyingTwice() throws {
        let moto = try ServerMoto.shared.get()
        let direct = try moto.makeBackend(prefix: "copy")
        // Every other PUT refused once: the copy is slow enough to be caught midway.
        let proxy = try FaultProxy(upstreamPort: moto.port, mode: .error, every: 2, match: "PUT")
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        let setup = try Self.setup(source: source, moto: moto, bucket: direct.location.bucket, port: proxy.port,
                                   replication: DaemonSetup.dailyAt(hoursFromNow: 3))
        let load = try S.loadgen(uri: source.uri, seconds: 5, seed: 3, oracle: nil)
        let (first, log1) = try setup.startDaemon(log: "first.log")
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let caught = setup.wait(30) {
            setup.state.jobs["replication"]?.running == true && ((try? direct.list(prefix: "data/").count) ?? 0) >= 5
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        load.waitUntilExit()
        try #require(caught, "the replication was not caught running:\n\(setup.text(log1))")
        let before = try Self.keys(direct)
        #expect(setup.state.jobs["replication"]?.running == true, "the state says the run was interrupted")

        // Restarted straight to moto: no refusals, so every copy after the restart is in a
        // successful run's report (a failed attempt's copies would go uncounted).
        try Self.configure(setup, bucket: direct.location.bucket, port: moto.port, replication: DaemonSetup.dailyAt(hoursFromNow: 12), retryAttempts: 2)
        let (done, status, log2) = try setup.runUntilReplicated(log: "second.log")
        #expect(status == 0)
        try #require(done, "the interrupted replication did not complete after the restart:\n\(setup.text(log2))")
        #expect(!setup.text(log2).contains("[Operations] job failed"), "\(setup.text(log2))")
        let after = try Self.keys(direct)
        let copied = DaemonSetup.values("copy.objects", in: setup.text(log2), lines: "copied repository").reduce(0, +)
        #expect(before.isSubset(of: after))
        #expect(copied == after.count - before.count, "copied \(copied) objects after the restart; \(after.count - before.count) are new: nothing twice")
        #expect(before.count < after.count, "the first run was interrupted before the end")

        let copy = try Repository.open(storage: direct, passphrase: TestRepository.passphrase)
        let check = try copy.check(readData: true)
        #expect(check.isClean, "\(check.problems)")
        #expect(try SnapshotCatalog(repository: copy).list().count >= 1)
        print("kill -9 mid-replication: \(before.count) objects before the restart, \(copied) copied after, \(after.count) in all")
    }

    @Test func refusedUploadsLeaveNothingPartialAndTheJobRetries() throws {
        let moto = try ServerMoto.shared.get()
        let direct = try moto.makeBackend(prefix: "copy")
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        // Every upload refused (HTTP 500, after the S3 client's own retries).
        let refusing = try FaultProxy(upstreamPort: moto.port, mode: .error, every: 1, match: "PUT")
        let setup = try Self.setup(source: source, moto: moto, bucket: direct.location.bucket, port: refusing.port,
                                   replication: DaemonSetup.dailyAt(hoursFromNow: 2), retryAttempts: 3)
        let (first, log1) = try setup.startDaemon(log: "first.log")
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        // Two attempts fail; SIGTERM while it waits to retry a third time.
        let retried = setup.wait(40) { setup.state.jobs["replication"]?.failures == 2 }
        #expect(setup.terminate(first) == 0)
        try #require(retried, "\(setup.text(log1))")
        #expect(refusing.faults >= 10, "5 tries per attempt, 2 attempts")
        #expect(try direct.list(prefix: "").isEmpty, "no partial object is visible")
        let state = setup.state
        #expect(state.jobs["replication"]?.running == true && state.jobs["replication"]?.lastResult == "failure")
        #expect(setup.alerts.filter { $0.hasPrefix("job_failed|replication|") }.count == 1, "\(setup.alerts)")
        let unhealthy = try setup.cli.run(["status", "--config", setup.configPath])
        #expect(unhealthy.status == 41 && unhealthy.stdout.contains("the last replication run failed"), "\(unhealthy)")

        // Restarted with storage that refuses one upload in three: the interrupted job
        // resumes at start and succeeds (the S3 client retries each refusal).
        let flaky = try FaultProxy(upstreamPort: moto.port, mode: .error, every: 3, match: "PUT")
        try Self.configure(setup, bucket: direct.location.bucket, port: flaky.port, replication: DaemonSetup.dailyAt(hoursFromNow: 2), retryAttempts: 3)
        let (done, status, log2) = try setup.runUntilReplicated(log: "second.log")
        #expect(status == 0)
        try #require(done, "\(setup.text(log2))")
        #expect(flaky.faults >= 1)
        let copy = try Repository.open(storage: direct, passphrase: TestRepository.passphrase)
        let check = try copy.check(readData: true)
        #expect(check.isClean, "\(check.problems)")
        let healthy = try setup.cli.run(["status", "--config", setup.configPath])
        #expect(healthy.status == 0, "\(healthy)")
    }
}
