import BSON
import Foundation
import Logging
import Mongo
import Repository
import Synchronization
import Testing
import TestSupport
@testable import Operations

/// A job that needs the repository exclusively (as prune will) pauses the tailer.
@Suite("daemon tailer pause", .serialized, .timeLimit(.minutes(2)))
struct DaemonTailerPauseTests {
    typealias S = DaemonTestSupport

    @Test(.enabled(if: S.available))
    func anExclusiveJobRunsWhileTheTailerIsPausedAndTailingResumesWithoutAGap() throws {
        let source = try S.startServer(.simulator)
        defer { source.stop() }
        let client = try S.client(source)
        let ns = Namespace(database: "d", collection: "c")
        let written = Atomic<Int>(0)
        func insert(_ count: Int) throws {
            let first = written.add(count, ordering: .relaxed).newValue - count
            _ = try client.insertMany((first..<(first + count)).map { Document(["_id": .int32(Int32($0))]) }, into: ns)
        }
        try insert(10)
        let setup = try DaemonSetup(sourceURI: source.uri, tables: "[snapshot]\nschedule = \"\(DaemonSetup.dailyAt(hoursFromNow: 12))\"\n")
        let config = try DaemonConfig.load(path: setup.configPath)
        let passphrase = TestRepository.passphrase
        let repo = setup.repo
        let durableBefore = Mutex<OplogTime?>(nil)
        let exclusive = DaemonJob(name: "exclusive", schedule: try Schedule(DaemonSetup.dailyAt(hoursFromNow: 1))) { context in
            try context.withTailerPaused {
                let repository = try Repository.open(storage: try LocalBackend(path: repo), passphrase: passphrase)
                durableBefore.withLock { $0 = try? TimelineView.load(repository).chains.last?.last }
                let lock = try repository.lock(exclusive: true)  // refused (locked) if the tailer still held its shared lock
                try lock.release()
                return DaemonJobOutcome(summary: "held the repository exclusively", bytes: 0)
            }
        }
        let daemon = try Daemon(config: config, logger: Logger(label: "test"), clock: DaemonClock(scale: 1800), additionalJobs: [exclusive])
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            try? daemon.run()
            finished.signal()
        }
        thread.start()
        var running = true
        defer {
            if running {
                daemon.stop()
                finished.wait()
            }
        }
        // 1 scheduled hour = 2 s; keep writing meanwhile.
        let ran = setup.wait(15) {
            try? insert(5)
            return daemon.state.jobs["exclusive"]?.lastResult != nil && daemon.state.jobs["exclusive"]?.running == false
        }
        try #require(ran)
        #expect(daemon.state.jobs["exclusive"]?.lastResult == "success", "\(daemon.state.jobs["exclusive"]?.lastError ?? "")")
        let before = try #require(durableBefore.withLock { $0 })
        // Tailing resumed: entries written after the pause become durable, in one chain.
        try insert(5)
        let newest = try #require(try client.find(.oplog).collect().last?["ts"]?.timestampValue)
        let resumed = setup.wait(10) {
            let view = try? TimelineView.load(try Repository.open(storage: try LocalBackend(path: setup.repo), passphrase: passphrase))
            return view?.chains.last?.last == OplogTime(t: newest.seconds, i: newest.increment)
        }
        #expect(resumed)
        daemon.stop()
        finished.wait()
        running = false
        let view = try TimelineView.load(try Repository.open(storage: try LocalBackend(path: setup.repo), passphrase: passphrase))
        #expect(view.gaps.isEmpty && view.chains.count == 1, "no gap across the pause")
        #expect(try #require(view.chains.last?.last) > before)
        #expect(try Repository.open(storage: try LocalBackend(path: setup.repo), passphrase: passphrase).listLocks().isEmpty)
    }
}
