import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Repository

/// A storage that fails every put and delete (lock files aside) after a budget of them:
/// a process killed part-way through forget or prune.
final class InterruptedStorage: Storage {
    let base: any Storage
    private let budget = Mutex<Int?>(nil)
    init(_ base: any Storage) { self.base = base }

    func failAfter(_ changes: Int?) { budget.withLock { $0 = changes } }

    private func spend(_ key: String) throws {
        guard !key.hasPrefix("locks/") else { return }
        try budget.withLock { left in
            guard let n = left else { return }
            if n <= 0 { throw RepositoryError(.ioFailure, "injected interruption") }
            left = n - 1
        }
    }

    func put(_ key: String, _ bytes: [UInt8]) throws { try spend(key); try base.put(key, bytes) }
    func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool { try spend(key); return try base.putIfAbsent(key, bytes) }
    func get(_ key: String, range: Range<Int>?) throws -> [UInt8] { try base.get(key, range: range) }
    func list(prefix: String) throws -> [StorageEntry] { try base.list(prefix: prefix) }
    func delete(_ key: String) throws { try spend(key); try base.delete(key) }
    func stat(_ key: String) throws -> Int? { try base.stat(key) }
}

@Suite struct PruneTests {
    /// Six snapshots over an hour of oplog segments, packs small enough to mix snapshots.
    static func history(storage: any Storage = InMemoryBackend()) throws -> SyntheticHistory {
        let repository = try TestRepository.make(storage: storage, packTargetSize: 16 << 10)
        var history = SyntheticHistory(repository: repository)
        let o = history.origin
        try history.appendSegments(until: o + 600)
        for k in 0..<6 {
            try history.snapshot(at: o + 600 + UInt32(k) * 600)
            try history.appendSegments(until: o + 600 + UInt32(k + 1) * 600)
        }
        return history
    }

    static func forgetAndPrune(_ repository: Repository, _ policy: RetentionPolicy, now: Date,
                               options: PruneOptions = PruneOptions()) throws -> (ForgetPlan, PrunePlan, PruneResult) {
        let lock = try repository.lock(kind: .exclusive)
        defer { try? lock.release() }
        let plan = policy.plan(try TimelineView.load(repository), now: now)
        try repository.forget(plan)
        let pruner = Pruner(repository: repository, options: options)
        let prunePlan = try pruner.plan(lock: lock)
        return (plan, prunePlan, try pruner.execute(prunePlan))
    }

    /// Every blob a kept snapshot or a live segment needs reads back, every kept snapshot is
    /// restorable at its consistency point, and the structure checks clean.
    static func expectIntact(_ storage: any Storage, kept: [String], readData: Bool = false,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        let repository = try TestRepository.open(storage: storage)
        let view = try TimelineView.load(repository)
        let catalog = SnapshotCatalog(repository: repository)
        for id in kept {
            guard let s = view.snapshots.first(where: { $0.id == id }) else {
                Issue.record("kept snapshot \(id.prefix(8)) is gone", sourceLocation: sourceLocation)
                continue
            }
            for blob in try catalog.blobs(of: s.record) { _ = try repository.loadBlob(blob) }
            #expect(view.window(containing: s.record.end!) != nil, "snapshot \(id.prefix(8)) not restorable", sourceLocation: sourceLocation)
        }
        for item in view.segments { _ = try repository.loadBlob(item.segment.blob) }
        let report = try IntegrityCheck(repository: repository).run(readData: readData)
        #expect(report.problems.isEmpty, "\(report.problems.map(\.message))", sourceLocation: sourceLocation)
    }

    @Test func forgetThenPruneFreesSpaceAndKeepsWhatIsPromised() throws {
        let storage = InMemoryBackend()
        let history = try Self.history(storage: storage)
        let repository = history.repository
        let before = try storage.list(prefix: "data/").reduce(0) { $0 + $1.size }
        let now = history.segments.last!.last.date
        let (plan, prunePlan, result) = try Self.forgetAndPrune(repository, RetentionPolicy(last: 2), now: now)
        #expect(plan.keptSnapshots.map(\.id) == history.snapshots.suffix(2).map(\.id))
        #expect(plan.segmentsRemoved > 0)
        #expect(result.packsDeleted > 0 && result.bytesFreed > 0)
        // The two kept snapshots share one of their level-0 nodes: 2 roots + 3 distinct nodes.
        #expect(prunePlan.summary.nodesVisited == 5)
        let after = try storage.list(prefix: "data/").reduce(0) { $0 + $1.size }
        #expect(after < before)
        #expect(try repository.check(readData: true).unreferencedPacks.isEmpty)
        try Self.expectIntact(storage, kept: plan.keptSnapshots.map(\.id), readData: true)
        #expect(try SnapshotCatalog(repository: repository).list().count == 2)

        // Nothing left to do: a second prune changes nothing.
        let lock = try repository.lock(kind: .exclusive)
        defer { try? lock.release() }
        let again = try Pruner(repository: repository).plan(lock: lock)
        #expect(again.isEmpty, "\(again.summary)")
    }

    @Test func repackLeavesNoUnusedBlobInAnyPack() throws {
        let storage = InMemoryBackend()
        let history = try Self.history(storage: storage)
        let now = history.segments.last!.last.date
        let (plan, prunePlan, result) = try Self.forgetAndPrune(
            history.repository, RetentionPolicy(last: 3), now: now, options: PruneOptions(maxUnusedFraction: 0))
        #expect(prunePlan.summary.packsToRepack > 0 && result.packsWritten > 0)
        let repository = try TestRepository.open(storage: storage)
        let view = try TimelineView.load(repository)
        let catalog = SnapshotCatalog(repository: repository)
        var live = Set(view.segments.map(\.segment.blob))
        for s in view.snapshots { live.formUnion(try catalog.blobs(of: s.record)) }
        for entry in try storage.list(prefix: "data/") {
            let name = String(entry.key.split(separator: "/").last!)
            let header = try PackReader.readHeader(storage: storage, name: name, master: repository.master).entries
            #expect(header.allSatisfy { live.contains($0.id) }, "pack \(name.prefix(8)) keeps unused blobs")
        }
        try Self.expectIntact(storage, kept: plan.keptSnapshots.map(\.id), readData: true)
    }

    @Test func interruptedForgetAndPruneLoseNothingAndARerunFinishes() throws {
        let memory = InMemoryBackend()
        let storage = InterruptedStorage(memory)
        let history = try Self.history(storage: storage)
        let now = history.segments.last!.last.date
        let policy = RetentionPolicy(last: 1, withinPITR: .seconds(1500))
        let promised = policy.plan(try TimelineView.load(history.repository), now: now)
        let kept = promised.keptSnapshots.map(\.id)
        #expect(kept.count == 2 && promised.removedSnapshots.count == 4)

        var interruptions = 0
        for budget in 0..<1000 {
            storage.failAfter(budget)
            do {
                _ = try Self.forgetAndPrune(try TestRepository.open(storage: storage, packTargetSize: 16 << 10), policy, now: now,
                                            options: PruneOptions(maxUnusedFraction: 0))
                storage.failAfter(nil)
                break
            } catch let error as RepositoryError where error.message.contains("injected interruption") {
                interruptions += 1
            }
            storage.failAfter(nil)
            try Self.expectIntact(memory, kept: kept)
            // Every promised second of the PITR window is still restorable.
            let view = try TimelineView.load(try TestRepository.open(storage: memory))
            let window = promised.pitrWindow!
            for t in stride(from: window.from.t + 1, through: window.to.t, by: 7) {
                #expect(view.window(containing: OplogTime(t: t, i: 1)) != nil, "ts \(t) lost after \(budget) changes")
            }
        }
        #expect(interruptions > 10)
        let final = try TestRepository.open(storage: memory)
        #expect(try final.check(readData: true).unreferencedPacks.isEmpty)
        #expect(try SnapshotCatalog(repository: final).list().map(\.id).sorted() == kept.sorted())
        try Self.expectIntact(memory, kept: kept, readData: true)
    }

    @Test func locksLetTailersBesideForgetAndPruneButNotBackups() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let other = try TestRepository.open(storage: storage)
        let tail = try other.lock(kind: .append)
        let prune = try repository.lock(kind: .exclusive)
        #expect(try other.listLocks().map(\.info.kind).sorted { $0.rawValue < $1.rawValue } == [.append, .exclusive])
        #expect { try other.lock(kind: .shared) } throws: { ($0 as? RepositoryError)?.code == .locked }
        #expect { try other.lock(kind: .exclusive) } throws: { ($0 as? RepositoryError)?.code == .locked }
        try other.lock(kind: .append).release()
        try prune.release()
        let backup = try other.lock(kind: .shared)
        #expect { try repository.lock(kind: .exclusive) } throws: { ($0 as? RepositoryError)?.code == .locked }
        try backup.release()
        try tail.release()
    }

    @Test func pruneWaitsForATailerThatDoesNotSettle() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let tail = try TestRepository.open(storage: storage).lock(kind: .append)
        let lock = try repository.lock(kind: .exclusive)
        let clock = ContinuousClock()
        let started = clock.now
        #expect {
            try Pruner(repository: repository, options: PruneOptions(appenderTimeout: .milliseconds(300), appenderPoll: .milliseconds(20)))
                .plan(lock: lock)
        } throws: { ($0 as? RepositoryError)?.code == .locked && "\($0)".contains("did not refresh") }
        #expect(clock.now - started >= .milliseconds(300))
        try tail.release()
        try lock.release()
    }

    /// A tailer appending segments the whole time, sometimes pausing between its flush and
    /// its timeline write, while forget and prune run: every segment it wrote survives.
    @Test func pruneBesideAnAppendingTailerKeepsEverySegment() throws {
        let storage = InMemoryBackend()
        var history = try Self.history(storage: storage)
        let now = history.segments.last!.last.date
        let tailer = try TestRepository.open(storage: storage, packTargetSize: 16 << 10)
        let lock = try tailer.lock(kind: .append)
        final class Shared: @unchecked Sendable {
            // @unchecked: every field is read and written under `lock`.
            let lock = NSLock()
            var stop = false
            var written: [TimelineSegment] = []
            var failure: String?
        }
        let shared = Shared()
        let start = history.segments.last!.last
        let thread = Thread {
            var n: UInt32 = 0
            var last = start
            while !shared.lock.withLock({ shared.stop }) {
                n += 1
                do {
                    let bytes = Array("tail \(n)".utf8) + TestRepository.bytes(count: 300, seed: UInt64(n) + 99, alphabet: 64)
                    let saved = try tailer.saveBlob(type: .oplog, bytes: bytes)
                    try tailer.flush()
                    if n % 3 == 0 { Thread.sleep(forTimeInterval: 0.03) }  // flushed, not yet listed
                    let segment = TimelineSegment(blob: saved.id, first: OplogTime(t: last.t + 1, i: 1), last: OplogTime(t: last.t + 1, i: 2),
                                                  count: 2, bytes: bytes.count, previous: last)
                    try TimelineFile(source: "tail", segments: [segment]).save(to: tailer)
                    shared.lock.withLock { shared.written.append(segment) }
                    last = segment.last
                    try lock.refresh()  // settled: every flushed blob is listed
                    Thread.sleep(forTimeInterval: 0.005)
                } catch {
                    shared.lock.withLock { shared.failure = "\(error)" }
                    return
                }
            }
        }
        thread.start()
        defer { shared.lock.withLock { shared.stop = true } }
        Thread.sleep(forTimeInterval: 0.05)
        let options = PruneOptions(maxUnusedFraction: 0, appenderTimeout: .seconds(10), appenderPoll: .milliseconds(5))
        for _ in 0..<3 {
            _ = try Self.forgetAndPrune(history.repository, RetentionPolicy(last: 1), now: now, options: options)
            Thread.sleep(forTimeInterval: 0.02)
        }
        shared.lock.withLock { shared.stop = true }
        while !thread.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        try lock.release()
        #expect(shared.lock.withLock { shared.failure } == nil)
        let segments = shared.lock.withLock { shared.written }
        #expect(segments.count > 5)
        let repository = try TestRepository.open(storage: storage)
        let view = try TimelineView.load(repository)
        let listed = Set(view.segments.map(\.segment.blob))
        for s in segments {
            #expect(listed.contains(s.blob), "segment \(s.first) dropped from the timeline")
            #expect(throws: Never.self) { _ = try repository.loadBlob(s.blob) }
        }
        history.segments += segments
        try Self.expectIntact(storage, kept: [history.snapshots.last!.id], readData: true)
    }
}
