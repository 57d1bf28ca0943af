import BSON
import Foundation
import Logging
import Mongo
import Repository
import Testing
import TestSupport
@testable import Operations

/// The daemon's jobs share repositories: one waits for another's lock instead of failing,
/// and retention leaves alone an off-site copy that replication has not created yet.
@Suite("daemon jobs and locks", .serialized, .timeLimit(.minutes(2)))
struct DaemonLockWaitTests {
    typealias S = DaemonTestSupport

    static let context = DaemonJobContext(attempt: 1, isStopping: { false }, pauseTailer: {}, resumeTailer: {})

    @Test func retentionSkipsAnOffsiteCopyNotReplicatedYet() throws {
        let setup = try DaemonSetup(sourceURI: "mongodb://127.0.0.1:1", tables: """
            [offsite.copy]
            location = "offsite"
            [retention]
            keep_last = 1
            """)
        try FileManager.default.createDirectory(at: setup.directory.appendingPathComponent("offsite"), withIntermediateDirectories: true)
        let config = try DaemonConfig.load(path: setup.configPath)
        let outcome = try Daemon.retain(try #require(config.retention), config: config, passphrase: TestRepository.passphrase,
                                        environment: [:], context: Self.context, logger: Logger(label: "test"))
        #expect(outcome.summary.contains("primary: 0 snapshot(s)") && outcome.summary.contains("copy: not replicated yet"), "\(outcome.summary)")
        // Nothing was created where the copy will go.
        #expect(try FileManager.default.contentsOfDirectory(atPath: setup.directory.appendingPathComponent("offsite").path).isEmpty)
    }

    @Test(.enabled(if: S.available))
    func aSnapshotWaitsForAnExclusiveLockAndFailsOnlyPastItsWait() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        _ = try S.client(source).runCommand(Document(["insert": .string("c"), "documents": .array([.document(Document(["_id": .int32(1)]))])]), database: "d")
        let setup = try DaemonSetup(sourceURI: source.uri, tables: "")
        let config = try DaemonConfig.load(path: setup.configPath)
        let repository = try Repository.open(storage: try LocalBackend(path: setup.repo), passphrase: TestRepository.passphrase)
        let held = try repository.lock(kind: .exclusive)  // as a retention run's prune holds it

        // No wait: refused at once as locked, the holder named.
        #expect {
            try Daemon.takeSnapshot(config.snapshot, uri: source.uri, repository: config.repository, passphrase: TestRepository.passphrase,
                                    logger: Logger(label: "test"), lockWait: .zero)
        } throws: { ($0 as? RepositoryError)?.code == .locked }

        // With a wait: it starts once the lock is released.
        let release = Thread {
            Thread.sleep(forTimeInterval: 1.5)
            try? held.release()
        }
        release.start()
        let started = ContinuousClock.now
        let outcome = try Daemon.takeSnapshot(config.snapshot, uri: source.uri, repository: config.repository, passphrase: TestRepository.passphrase,
                                              logger: Logger(label: "test"), lockWait: .seconds(30))
        #expect(ContinuousClock.now - started >= .seconds(1), "it waited for the release")
        #expect(outcome.summary.hasPrefix("snapshot "), "\(outcome.summary)")
        #expect(try SnapshotCatalog(repository: repository).list().count == 1)
    }
}
