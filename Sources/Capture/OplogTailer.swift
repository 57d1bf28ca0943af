import BSON
import Foundation
import Logging
import Mongo
import Repository
import Synchronization

/// An error that stops the oplog tailer: a stable code and a message that says what to do.
public struct TailError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The server refuses in a way retrying cannot fix (credentials, privileges, no oplog).
        public static let serverRefused = Code("serverRefused")
        /// The repository's last segment cannot be read back to prove continuity.
        public static let badHistory = Code("badHistory")
        /// An oplog entry has no `ts`.
        public static let badEntry = Code("badEntry")
    }

    public let code: Code
    public let message: String
    public let underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { underlying.map { "\(message) (\($0))" } ?? message }
}

/// A stop request that wakes sleepers at once; shared by the tailer's threads.
public final class StopSignal: Sendable {
    private let state = Mutex(false)
    private let condition = NSCondition()

    public init() {}

    public var isStopped: Bool { state.withLock { $0 } }

    public func stop() {
        condition.lock()
        state.withLock { $0 = true }
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps up to `duration`; returns true when stopped.
    @discardableResult
    public func wait(_ duration: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while !isStopped {
            if !condition.wait(until: deadline) { break }
        }
        return isStopped
    }
}

/// Copies the oplog of a replica set into the repository continuously.
///
/// A tailable awaitData cursor on `local.oplog.rs`, read concern majority, starts at the
/// last durable entry; entries are appended as raw bytes to an open segment, sealed every
/// `flushInterval` (or `segmentLimit` bytes): blob saved, pack and index flushed, then a
/// timeline file names the segment; only then is it durable (reported to `onDurable`).
/// Every (re)open proves continuity (see `TailState`); a break is recorded as a gap,
/// logged at error level and reported to `onGap`. Failovers and dropped connections are
/// retried with backoff. A background thread compacts closed windows.
///
/// Threading: `run()` blocks its calling thread (libmongoc is blocking; call it from a
/// thread of your own) until `stop()` (thread-safe, e.g. from a signal handler), then
/// seals the open segment, joins the compactor and releases the append lock.
public final class OplogTailer: Sendable {
    public struct Options: Sendable {
        public var flushInterval: Duration = .seconds(1)
        public var segmentLimit: Int = 8 << 20
        /// Where to start when the repository has no history (nil: the newest entry).
        public var from: OplogTime?
        /// How often to compact (nil: never).
        public var compactEvery: Duration? = .seconds(300)
        public var compactWindowSeconds: UInt32 = 600
        public var compactBlobLimit: Int = 64 << 20
        /// How often to refresh the append lock; prune waits up to this long for it.
        public var lockRefresh: Duration = .seconds(15)
        public var batchSize: Int = 10_000
        /// Pause after a getMore that returned entries, so the next one brings more
        /// (fewer round trips under a trickle of writes); zero to read at once.
        public var batchPause: Duration = .milliseconds(50)
        public var minimumBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(5)
        public init() {}
    }

    /// A segment just became durable.
    public struct Progress: Sendable {
        public var segment: TimelineSegment
        /// Entries made durable since `run()` began.
        public var totalEntries: Int
    }

    public let client: MongoClient
    public let repository: Repository
    public let options: Options
    let logger: Logger
    public let stopSignal = StopSignal()
    private let writeLock = FlushLock()
    private let onDurable: @Sendable (Progress) -> Void
    private let onGap: @Sendable (TimelineGap) -> Void
    /// Set by `refreshLockSoon`, taken by the next `refreshLockIfDue`.
    fileprivate let lockRefreshRequested = Atomic<Bool>(false)

    public init(client: MongoClient, repository: Repository, options: Options = Options(),
                logger: Logger = Logger(label: "ancre.tail"),
                onDurable: @escaping @Sendable (Progress) -> Void = { _ in },
                onGap: @escaping @Sendable (TimelineGap) -> Void = { _ in }) {
        self.client = client
        self.repository = repository
        self.options = options
        self.logger = logger
        self.onDurable = onDurable
        self.onGap = onGap
    }

    /// Asks `run()` to seal what it holds and return; thread-safe, idempotent.
    public func stop() { stopSignal.stop() }

    /// Asks `run()` to refresh its append lock at the next point where every flushed blob
    /// is named by a timeline file (within about `flushInterval`), instead of at the next
    /// `lockRefresh`; for a prune in the same process, which waits for that refresh.
    public func refreshLockSoon() { lockRefreshRequested.store(true, ordering: .sequentiallyConsistent) }

    /// Tails until `stop()`.
    /// - Throws: `TailError` (`.serverRefused` for non-retryable server errors, `.badHistory`),
    ///   `RepositoryError` (locked, storage failures; what was sealed before stays durable).
    public func run() throws {
        // Append: the tailer only adds segments, so forget and prune run beside it. It refreshes
        // the lock only after a segment's timeline file is written (`sealIfDue`), which is
        // the point prune waits for.
        let lock = try repository.lock(kind: .append)
        defer {
            do { try lock.release() } catch { logger.warning("cannot release the repository lock", metadata: ["lock.id": "\(lock.id)", "error": "\(error)"]) }
        }
        let info: ServerInfo
        do {
            info = try client.helloRequiringOplog()
        } catch {
            throw TailError(.serverRefused, error.message)
        }
        let source = info.setName.map { "replica set \($0) (\(client.hosts))" } ?? client.hosts
        var session = Session(tailer: self, source: source, lock: lock)
        let compactor = options.compactEvery.map { every in
            let thread = CompactorThread(
                compactor: SegmentCompactor(repository: repository, source: source, windowSeconds: options.compactWindowSeconds,
                                            blobLimit: options.compactBlobLimit, logger: logger),
                every: every, writeLock: writeLock, stop: stopSignal, logger: logger)
            thread.start()
            return thread
        }
        defer {
            stopSignal.stop()
            compactor?.join()
        }
        try session.run()
    }

    /// The mutable state of one `run()`; lives on the calling thread.
    private struct Session {
        let tailer: OplogTailer
        let source: String
        let lock: RepositoryLock
        var state: TailState
        var buffer: [UInt8] = []
        var count = 0
        var first = OplogTime(t: 0, i: 0)
        var last = OplogTime(t: 0, i: 0)
        var lastEntry: Document?
        var openedAt: ContinuousClock.Instant?
        /// Last entry of the previous segment of the current chain.
        var chainLast: OplogTime?
        var totalEntries = 0
        var lastRefresh = ContinuousClock.now

        init(tailer: OplogTailer, source: String, lock: RepositoryLock) {
            self.tailer = tailer
            self.source = source
            self.lock = lock
            state = TailState(minimumDelay: tailer.options.minimumBackoff, maximumDelay: tailer.options.maximumBackoff)
            buffer.reserveCapacity(tailer.options.segmentLimit + (1 << 20))
        }

        var logger: Logger { tailer.logger }
        var options: Options { tailer.options }

        mutating func run() throws {
            let anchor = try Self.lastDurable(tailer.repository)
            chainLast = anchor?.ts
            if let anchor {
                logger.info("resuming from the last durable entry", metadata: ["oplog.ts": "\(anchor.ts)"])
            } else {
                logger.info("no oplog history in the repository: restore coverage begins with the first snapshot taken after the first entry captured",
                            metadata: ["oplog.from": "\(options.from.map(\.description) ?? "newest")"])
            }
            var actions = state.handle(.start(anchor: anchor, from: options.from))
            defer {
                do { try seal() } catch { logger.error("cannot seal the last segment on shutdown", metadata: ["error": "\(error)"]) }
            }
            while !tailer.stopSignal.isStopped {
                var openFrom: OplogTime?? = nil
                for action in actions {
                    switch action {
                    case .open(let from): openFrom = .some(from)
                    case .reconnect(let delay, let from):
                        logger.info("reconnecting", metadata: ["retry.delay": "\(delay)"])
                        refreshLockIfDue()  // a server outage must not hold up prune
                        if tailer.stopSignal.wait(delay) { return }
                        openFrom = .some(from)
                    case .recordGap(let gap): try record(gap)
                    case .fail(let message): throw TailError(.serverRefused, message)
                    case .skipEntry, .acceptEntry, .none: break
                    }
                }
                guard let from = openFrom else { return }
                actions = try stream(from: from)
            }
        }

        /// Opens a cursor at `from` and reads until it fails or the tailer stops; returns what the state says next.
        mutating func stream(from: OplogTime?) throws -> [TailState.Action] {
            let cursor: Cursor
            do {
                let start = try from ?? newestEntry()
                guard let start else {
                    // An empty oplog: wait for the first entry.
                    if tailer.stopSignal.wait(.milliseconds(200)) { return [] }
                    return [.open(from: nil)]
                }
                // Short waits: a segment is sealed only when a getMore returns, so the wait
                // bounds how late past the flush interval the last segment becomes durable.
                let awaitTime: Duration = max(.milliseconds(20), min(options.flushInterval / 4, .milliseconds(250)))
                cursor = try tailer.client.tailOplog(from: Timestamp(seconds: start.t, increment: start.i),
                                                     maxAwaitTime: awaitTime, batchSize: options.batchSize)
            } catch {
                return handleFailure(error, readAny: true)
            }
            defer { cursor.close() }
            var readAny = false
            let clock = ContinuousClock()
            while !tailer.stopSignal.isStopped {
                let entry: Document?
                let asked = clock.now
                do {
                    entry = try cursor.next()
                } catch {
                    return handleFailure(error, readAny: readAny)
                }
                // A slow `next` was a getMore round trip. Under a steady trickle of writes
                // each getMore brings a handful of entries and its fixed cost dominates; a
                // short pause before the next one lets a batch build up (a few ms of RPO
                // for a third of the CPU per entry).
                if entry != nil, clock.now - asked > .microseconds(300), !segmentDue {
                    _ = tailer.stopSignal.wait(options.batchPause)
                }
                guard let entry else {
                    if !cursor.isAlive { return handleFailure(MongoError(.cursorLost, "the oplog cursor closed"), readAny: readAny) }
                    try sealIfDue(idle: true)
                    continue
                }
                guard let ts = entry["ts"]?.timestampValue else {
                    throw TailError(.badEntry, "an oplog entry has no ts: \(entry)")
                }
                let time = OplogTime(t: ts.seconds, i: ts.increment)
                if !readAny {
                    readAny = true
                    let oldest = (try? oldestEntry()) ?? nil
                    for action in state.handle(.firstEntry(ts: time, bytes: entry.bytes, oldest: oldest, now: Date())) {
                        switch action {
                        case .skipEntry: break
                        case .recordGap(let gap): try record(gap)
                        case .acceptEntry(let newChain):
                            if newChain {
                                try seal()
                                chainLast = nil
                            }
                            append(entry, time)
                        default: break
                        }
                    }
                } else {
                    append(entry, time)
                }
                try sealIfDue(idle: false)
            }
            return []
        }

        mutating func handleFailure(_ error: any Error, readAny: Bool) -> [TailState.Action] {
            if let lastEntry { state.setAnchor(.init(ts: last, bytes: lastEntry.bytes)) }
            guard let error = error as? MongoError else {
                return state.handle(.failed(.fatal("\(error)")))
            }
            if error.code == .cursorLost, error.serverCode == ServerErrorCode.cappedPositionLost, !readAny {
                return state.handle(.positionLost(oldest: (try? oldestEntry()) ?? nil, now: Date()))
            }
            switch error.code {
            case .notPrimary, .cursorLost, .connectionDropped, .serverUnreachable, .timeout, .malformedReply, .commandFailed:
                logger.warning("oplog cursor failed; reconnecting", metadata: ["error": "\(error)"])
                return state.handle(.failed(.transient(error.message)))
            default:
                return state.handle(.failed(.fatal(error.message)))
            }
        }

        mutating func append(_ entry: Document, _ time: OplogTime) {
            if count == 0 {
                first = time
                openedAt = .now
            }
            buffer.append(contentsOf: entry.bytes)
            count += 1
            last = time
            lastEntry = entry
        }

        /// True when the open segment has reached its flush interval or size limit.
        var segmentDue: Bool {
            guard let openedAt, count > 0 else { return false }
            return buffer.count >= options.segmentLimit || ContinuousClock.now - openedAt >= options.flushInterval
        }

        mutating func sealIfDue(idle: Bool) throws {
            if segmentDue { try seal() }
            refreshLockIfDue()
        }

        /// Refreshes the append lock when due. Call only where every flushed blob is named by
        /// a timeline file (after `seal` returned, or between connections): prune relies on it.
        mutating func refreshLockIfDue() {
            let requested = tailer.lockRefreshRequested.exchange(false, ordering: .sequentiallyConsistent)
            if requested || ContinuousClock.now - lastRefresh >= options.lockRefresh {
                lastRefresh = .now
                do { try lock.refresh() } catch { logger.warning("cannot refresh the repository lock", metadata: ["error": "\(error)"]) }
            }
        }

        /// Makes the open segment durable: blob, pack and index, then the timeline file.
        mutating func seal() throws {
            guard count > 0, let lastEntry else { return }
            let repository = tailer.repository
            let segment = try tailer.writeLock.withLock {
                let saved = try repository.saveBlob(type: .oplog, bytes: buffer)
                try repository.flush()
                let segment = TimelineSegment(blob: saved.id, first: first, last: last, count: count, bytes: buffer.count,
                                              term: lastEntry["t"]?.int64Value, previous: chainLast)
                try TimelineFile(source: source, segments: [segment]).save(to: repository)
                return segment
            }
            state.setAnchor(.init(ts: last, bytes: lastEntry.bytes))
            chainLast = last
            totalEntries += count
            buffer.removeAll(keepingCapacity: true)
            count = 0
            openedAt = nil
            logger.info("oplog durable", metadata: ["oplog.ts": "\(segment.last)", "segment.entries": "\(segment.count)",
                                                     "segment.bytes": "\(segment.bytes)", "blob.id": "\(segment.blob.short)"])
            tailer.onDurable(Progress(segment: segment, totalEntries: totalEntries))
        }

        /// Seals what was read before the gap, writes the gap, and alerts.
        mutating func record(_ gap: TimelineGap) throws {
            try seal()
            chainLast = nil
            let repository = tailer.repository
            try tailer.writeLock.withLock {
                _ = try TimelineFile(source: source, segments: [], gaps: [gap]).save(to: repository)
            }
            logger.error("oplog gap: \(gap.message)", metadata: [
                "gap.after": "\(gap.after.map(\.description) ?? "-")", "gap.before": "\(gap.before.map(\.description) ?? "-")",
                "gap.reason": "\(gap.reason)",
            ])
            tailer.onGap(gap)
        }

        func newestEntry() throws -> OplogTime? { try edgeEntry(direction: -1) }
        func oldestEntry() throws -> OplogTime? { try edgeEntry(direction: 1) }

        func edgeEntry(direction: Int32) throws -> OplogTime? {
            let cursor = try tailer.client.find(.oplog, FindOptions(
                sort: Document(["$natural": .int32(direction)]), projection: Document(["ts": .int32(1)]), limit: 1))
            defer { cursor.close() }
            return try cursor.next()?["ts"]?.timestampValue.map { OplogTime(t: $0.seconds, i: $0.increment) }
        }

        /// The last durable entry: the last record of the newest segment's blob.
        static func lastDurable(_ repository: Repository) throws -> TailState.Anchor? {
            let view = try TimelineView.load(repository)
            guard let segment = view.lastSegment else { return nil }
            // A gap recorded after the last segment ends its chain: nothing to continue.
            if let gap = view.gaps.last, let after = gap.after, after >= segment.last { return nil }
            let bytes: [UInt8]
            do {
                bytes = try repository.loadBlob(segment.blob)
            } catch {
                throw TailError(.badHistory, "the last oplog segment (blob \(segment.blob.short), up to ts:\(segment.last)) cannot be read, so continuity cannot be proven; run `ancre check`", underlying: error)
            }
            var lastRecord: [UInt8] = []
            try TreeReader.forEachRecord(in: bytes, id: segment.blob) { lastRecord = Array($0) }
            let document = Document(trustedBytes: lastRecord)
            guard let ts = document["ts"]?.timestampValue, OplogTime(t: ts.seconds, i: ts.increment) == segment.last else {
                throw TailError(.badHistory, "the last oplog segment (blob \(segment.blob.short)) does not end at ts:\(segment.last) as the timeline says; run `ancre check`")
            }
            return TailState.Anchor(ts: segment.last, bytes: lastRecord)
        }
    }
}

/// The background compaction loop: one run every `every`, until stopped.
private final class CompactorThread: @unchecked Sendable {
    // @unchecked: `thread` is set once before start; `done` is a semaphore.
    let compactor: SegmentCompactor
    let every: Duration
    let writeLock: FlushLock
    let stop: StopSignal
    let logger: Logger
    private let done = DispatchSemaphore(value: 0)

    init(compactor: SegmentCompactor, every: Duration, writeLock: FlushLock, stop: StopSignal, logger: Logger) {
        self.compactor = compactor
        self.every = every
        self.writeLock = writeLock
        self.stop = stop
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in
            while !stop.wait(every) {
                do {
                    // Compaction deduplicates and removes packs, so it takes a shared lock for each
                    // run: it skips a round while forget or prune (exclusive) holds the repository,
                    // and reloads the index they may have rewritten.
                    let lock = try compactor.repository.lock(kind: .shared)
                    defer { try? lock.release() }
                    try writeLock.withLock { try compactor.repository.reloadIndex() }
                    try compactor.run(writeLock: writeLock)
                } catch let error as RepositoryError where error.code == .locked {
                    logger.info("oplog compaction skipped this round: the repository is locked", metadata: ["error": "\(error)"])
                } catch {
                    logger.error("oplog compaction failed; will retry", metadata: ["error": "\(error)"])
                }
            }
            done.signal()
        }
        thread.name = "ancre-compactor"
        thread.start()
    }

    func join() { done.wait() }
}
