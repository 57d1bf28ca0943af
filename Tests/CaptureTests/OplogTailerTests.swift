import BSON
import Foundation
import Logging
import Mongo
import Synchronization
import Testing
import TestSupport
@testable import Capture
@testable import Repository

/// The oplog tailer against the replica-set simulator, with writes running.
@Suite("OplogTailer", .serialized, .timeLimit(.minutes(2)))
struct OplogTailerTests {
    /// A running tailer on its own thread, with what it reported.
    final class Running: @unchecked Sendable {
        let tailer: OplogTailer
        final class Reports: Sendable {
            let durable = Mutex<[(at: ContinuousClock.Instant, ts: OplogTime)]>([])
            let gaps = Mutex<[TimelineGap]>([])
        }
        let reports = Reports()
        let failure = Mutex<(any Error)?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(client: MongoClient, repository: Repository, options: OplogTailer.Options) {
            let reports = self.reports
            var logger = Logger(label: "ancre.tail.test")
            logger.logLevel = .warning
            tailer = OplogTailer(client: client, repository: repository, options: options, logger: logger,
                                 onDurable: { p in reports.durable.withLock { $0.append((.now, p.segment.last)) } },
                                 onGap: { g in reports.gaps.withLock { $0.append(g) } })
            let thread = Thread { [self] in
                do { try tailer.run() } catch { failure.withLock { $0 = error } }
                done.signal()
            }
            thread.start()
        }

        func stop() throws {
            tailer.stop()
            done.wait()
            if let error = failure.withLock({ $0 }) { throw error }
        }
    }

    /// Inserts small batches until stopped.
    final class Writer: @unchecked Sendable {
        let stopped = Atomic<Bool>(false)
        let written = Atomic<Int>(0)
        private let done = DispatchSemaphore(value: 0)
        init(client: MongoClient, collection: String = "w") {
            let thread = Thread { [self] in
                var n = 0
                let ns = Namespace(database: "tailtest", collection: collection)
                while !stopped.load(ordering: .relaxed) {
                    let docs = (0..<20).map { k in Document(["_id": .int64(Int64(n + k)), "pad": .string("payload \(n + k)")]) }
                    if (try? client.insertMany(docs, into: ns)) != nil { n += 20; written.store(n, ordering: .relaxed) }
                    else { Thread.sleep(forTimeInterval: 0.05) }
                    Thread.sleep(forTimeInterval: 0.005)
                }
                done.signal()
            }
            thread.start()
        }
        func stop() { stopped.store(true, ordering: .relaxed); done.wait() }
    }

    func startSimulator() throws -> (ServerProcess, MongoClient) {
        if let reason = ServerProcess.unavailableReason(.simulator) { try Test.cancel(Comment(rawValue: reason)) }
        let server = try ServerProcess(.simulator)
        return (server, try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(3)))
    }

    func options(flush: Duration = .milliseconds(200)) -> OplogTailer.Options {
        var o = OplogTailer.Options()
        o.flushInterval = flush
        o.compactEvery = nil
        o.minimumBackoff = .milliseconds(50)
        o.maximumBackoff = .milliseconds(500)
        return o
    }

    /// Every entry the timeline's segments hold, in order.
    static func captured(_ repository: Repository) throws -> [Document] {
        let view = try TimelineView.load(repository)
        var out: [Document] = []
        for item in view.segments {
            var n = 0
            try TreeReader.forEachRecord(in: try repository.loadBlob(item.segment.blob), id: item.segment.blob) {
                out.append(Document(trustedBytes: Array($0)))
                n += 1
            }
            #expect(n == item.segment.count)
        }
        return out
    }

    /// The oplog entries from `first` to `last` (inclusive), read directly.
    static func oplog(_ client: MongoClient, from first: Timestamp, to last: Timestamp) throws -> [Document] {
        let filter = Document(["ts": .document(Document(["$gte": .timestamp(first), "$lte": .timestamp(last)]))])
        return try client.find(.oplog, FindOptions(filter: filter)).collect()
    }

    static func ts(_ d: Document) -> Timestamp { d["ts"]!.timestampValue! }

    /// The captured entries equal the oplog from the first captured to the last, once each, in order.
    static func expectExactCopy(_ repository: Repository, _ client: MongoClient, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Document] {
        let got = try captured(repository)
        let first = try #require(got.first, sourceLocation: sourceLocation), last = try #require(got.last, sourceLocation: sourceLocation)
        let expected = try oplog(client, from: ts(first), to: ts(last))
        #expect(got.count == expected.count, "captured \(got.count) entries, the oplog has \(expected.count)", sourceLocation: sourceLocation)
        #expect(got.map(\.bytes) == expected.map(\.bytes), "captured entries differ from the oplog", sourceLocation: sourceLocation)
        return got
    }

    @Test("(a) tailing under writes copies every oplog entry exactly once, in order, in contiguous segments")
    func exactCopy() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let repository = try TestRepository.make()
        let writer = Writer(client: client)
        let running = Running(client: client, repository: repository, options: options())
        Thread.sleep(forTimeInterval: 3)
        writer.stop()
        Thread.sleep(forTimeInterval: 0.5)
        try running.stop()
        let got = try Self.expectExactCopy(repository, client)
        let view = try TimelineView.load(repository)
        #expect(view.chains.count == 1 && view.gaps.isEmpty)
        #expect(view.segments.count >= 5, "a segment every 200 ms")
        print("exact copy: \(got.count) entries in \(view.segments.count) segments; \(writer.written.load(ordering: .relaxed)) documents written")
    }

    @Test("(c) a step-down while tailing leaves no gap; (resume) a restart continues the chain")
    func stepDown() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let repository = try TestRepository.make()
        let writer = Writer(client: client)
        let running = Running(client: client, repository: repository, options: options())
        Thread.sleep(forTimeInterval: 1)
        _ = try client.runAdminCommand(Document(["simStepDown": .int32(1), "seconds": .int32(1)]))
        Thread.sleep(forTimeInterval: 2.5)
        try running.stop()
        // A restart proves continuity against the last durable entry and continues.
        let again = Running(client: client, repository: repository, options: options())
        Thread.sleep(forTimeInterval: 1)
        writer.stop()
        Thread.sleep(forTimeInterval: 0.5)
        try again.stop()
        _ = try Self.expectExactCopy(repository, client)
        let view = try TimelineView.load(repository)
        #expect(view.gaps.isEmpty && running.reports.gaps.withLock { $0.isEmpty } && again.reports.gaps.withLock { $0.isEmpty })
        #expect(view.chains.count == 1, "one contiguous run across the step-down and the restart")
        #expect(Set(view.segments.compactMap(\.segment.term)).count >= 2, "segments from both terms")
    }

    @Test("(d) an oplog truncated past the tailer's position while it is stopped records a gap and alerts")
    func truncatedWhileStopped() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let repository = try TestRepository.make()
        let ns = Namespace(database: "tailtest", collection: "trunc")
        _ = try client.insertMany((0..<50).map { Document(["_id": .int32(Int32($0))]) }, into: ns)
        let first = Running(client: client, repository: repository, options: options())
        Thread.sleep(forTimeInterval: 0.3)
        _ = try client.insertMany((50..<60).map { Document(["_id": .int32(Int32($0))]) }, into: ns)
        Thread.sleep(forTimeInterval: 0.6)
        try first.stop()
        let before = try #require(try TimelineView.load(repository).lastSegment).last
        _ = try client.insertMany((60..<100).map { Document(["_id": .int32(Int32($0))]) }, into: ns)
        _ = try client.runAdminCommand(Document(["simTruncateOplog": .int32(1), "keep": .int32(5)]))
        let second = Running(client: client, repository: repository, options: options())
        Thread.sleep(forTimeInterval: 1)
        try second.stop()
        let gaps = second.reports.gaps.withLock { $0 }
        #expect(gaps.count == 1)
        #expect(gaps.first?.reason == .rolledOver)
        #expect(gaps.first?.after == before)
        let view = try TimelineView.load(repository)
        #expect(view.gaps.count == 1, "the gap is durable in the timeline")
        #expect(view.chains.count == 2, "the gap breaks the run")
        #expect(view.chains.last?.first == gaps.first?.before)
    }

    @Test("(e) compaction keeps the same entries in fewer objects: one per window")
    func compaction() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let writer = Writer(client: client)
        let running = Running(client: client, repository: repository, options: options(flush: .milliseconds(100)))
        Thread.sleep(forTimeInterval: 3.2)
        writer.stop()
        try running.stop()
        let entries = try Self.captured(repository)
        func objects() throws -> Int { try ["data/", "index/", "timeline/"].reduce(0) { $0 + (try storage.list(prefix: $1).count) } }
        let before = try objects()
        let compactor = SegmentCompactor(repository: repository, source: "test", windowSeconds: 1)
        let result = try compactor.run(writeLock: FlushLock())
        let after = try objects()
        print("compaction: \(before) objects -> \(after); \(result)")
        #expect(try Self.captured(repository).map(\.bytes) == entries.map(\.bytes))
        let view = try TimelineView.load(repository)
        #expect(view.chains.count == 1 && view.liveFiles.count == 1)
        let windows = Set(entries.map { Self.ts($0).seconds })
        let compacted = view.segments.filter(\.segment.compacted)
        #expect(compacted.count <= windows.count)
        // Per closed window: one pack, one index file; plus one timeline file for all.
        let closedObjects = try storage.list(prefix: "data/").count
        #expect(closedObjects <= windows.count + view.segments.filter { !$0.segment.compacted }.count)
        #expect(after < before / 3)
        // A reopened repository sees the same (removed packs are gone from its index too).
        let reopened = try TestRepository.open(storage: storage)
        #expect(try Self.captured(reopened).map(\.bytes) == entries.map(\.bytes))
        #expect(try compactor.run(writeLock: FlushLock()) == SegmentCompactor.Result(), "nothing left to do")
    }

    @Test("(g) prune runs beside a tailer (append lock) and its compactor: every entry stays captured")
    func pruneBesideTail() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let writer = Writer(client: client)
        var o = options(flush: .milliseconds(100))
        o.lockRefresh = .milliseconds(100)
        o.compactEvery = .milliseconds(400)
        o.compactWindowSeconds = 1
        let running = Running(client: client, repository: repository, options: o)
        Thread.sleep(forTimeInterval: 1)
        #expect(try repository.listLocks().map(\.info.kind) == [.append])
        var pruned = 0
        let deadline = ContinuousClock.now + .seconds(4)
        while pruned < 3 && ContinuousClock.now < deadline {
            let other = try TestRepository.open(storage: storage)
            guard let lock = try? other.lock(kind: .exclusive) else {  // a compaction run holds a shared lock
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            defer { try? lock.release() }
            let pruner = Pruner(repository: other, options: PruneOptions(maxUnusedFraction: 0, appenderTimeout: .seconds(5), appenderPoll: .milliseconds(10)))
            try pruner.execute(try pruner.plan(lock: lock))
            pruned += 1
        }
        #expect(pruned == 3)
        writer.stop()
        Thread.sleep(forTimeInterval: 0.3)
        try running.stop()
        _ = try Self.expectExactCopy(try TestRepository.open(storage: storage), client)
        #expect(try TimelineView.load(repository).chains.count == 1)
        let report = try TestRepository.open(storage: storage).check(readData: true)
        #expect(report.isClean, "\(report.problems)")
    }

    @Test("(g2) a prune in the tailer's process asks it to refresh its lock now instead of waiting out the period")
    func pruneNudgesTheTailer() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let writer = Writer(client: client)
        defer { writer.stop() }
        var o = options(flush: .milliseconds(100))
        o.lockRefresh = .seconds(3600)
        o.compactEvery = nil
        let running = Running(client: client, repository: repository, options: o)
        Thread.sleep(forTimeInterval: 0.5)
        let other = try TestRepository.open(storage: storage)
        let lock = try other.lock(kind: .exclusive)
        defer { try? lock.release() }
        // Without the nudge the prune would wait for the hourly refresh and time out.
        var timedOut = PruneOptions(appenderTimeout: .milliseconds(700), appenderPoll: .milliseconds(10))
        #expect(throws: RepositoryError.self) { try Pruner(repository: other, options: timedOut).plan(lock: lock) }
        timedOut.appenderTimeout = .seconds(20)
        timedOut.willAwaitAppenders = { running.tailer.refreshLockSoon() }
        let started = ContinuousClock.now
        _ = try Pruner(repository: other, options: timedOut).plan(lock: lock)
        #expect(ContinuousClock.now - started < .seconds(5))
        try lock.release()
        try running.stop()
    }

    @Test("(f) RPO: with the default 1 s flush an entry is durable about a second after its write")
    func rpo() throws {
        let (server, client) = try startSimulator()
        defer { server.stop() }
        let repository = try TestRepository.make()
        var o = options(flush: .seconds(1))
        o.flushInterval = .seconds(1)
        let running = Running(client: client, repository: repository, options: o)
        Thread.sleep(forTimeInterval: 0.5)
        let ns = Namespace(database: "tailtest", collection: "rpo")
        var writes: [(at: ContinuousClock.Instant, ts: OplogTime)] = []
        for n in 0..<25 {
            _ = try client.insertMany([Document(["_id": .int32(Int32(n))])], into: ns)
            let at = ContinuousClock.now
            let ts = try #require(try client.hello().lastWrite)
            writes.append((at, OplogTime(t: ts.seconds, i: ts.increment)))
            Thread.sleep(forTimeInterval: 0.08)
        }
        Thread.sleep(forTimeInterval: 1.6)
        try running.stop()
        let durable = running.reports.durable.withLock { $0 }
        let delays = writes.compactMap { w in durable.first { $0.ts >= w.ts }.map { $0.at - w.at } }.sorted()
        #expect(delays.count == writes.count)
        let ms = delays.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }
        print("RPO delay (write acknowledged -> durable), ms: p50 \(Int(ms[ms.count / 2])), max \(Int(ms.last ?? 0)) over \(ms.count) writes")
        #expect((ms.last ?? 0) < 5000, "generous bound; the target (1.5 s p99) is for the benchmark")
    }
}
