import BSON
import Foundation
import Mongo

/// What the applier threads share: the target, the mode, progress, the first failure.
///
/// Thread-safe: counters and the failure are behind a lock; `execute` runs on applier
/// threads, `run`/`runAlone` on the reading thread while the appliers are idle.
final class ReplayEngine: @unchecked Sendable {
    let client: MongoClient
    let mode: OplogApplier.Mode
    let progress = ReplayProgress()
    private let lock = NSLock()
    private var failure: RestoreError?
    private var _roundTrips = 0
    private var _fallbacks = 0

    init(client: MongoClient, mode: OplogApplier.Mode) {
        self.client = client
        self.mode = mode
    }

    var roundTrips: Int { lock.withLock { _roundTrips } }
    var hasFailed: Bool { lock.withLock { failure != nil } }
    var fallbacks: Int { lock.withLock { _fallbacks } }

    func throwIfFailed() throws(RestoreError) {
        if let failure = lock.withLock({ failure }) { throw failure }
    }

    func fail(_ error: RestoreError) {
        lock.withLock { if failure == nil { failure = error } }
    }

    private func count(roundTrips: Int = 0, fallbacks: Int = 0) {
        lock.withLock {
            _roundTrips += roundTrips
            _fallbacks += fallbacks
        }
    }

    /// Applies a batch on an applier thread; records the first failure (later batches are skipped).
    func execute(_ batch: [ReplayOperation]) {
        guard lock.withLock({ failure == nil }) else { return }
        do {
            switch mode {
            case .applyOps: try applyOps(batch[...])
            case .crud: try crud(batch)
            }
            progress.complete(batch.lazy.map(\.record))
        } catch {
            fail(error)
        }
    }

    /// Applies one operation on the reading thread (view definitions).
    func runAlone(_ op: ReplayOperation) throws(RestoreError) {
        switch mode {
        case .applyOps: try applyOps([op][...])
        case .crud: try crudView(op)
        }
    }

    /// Runs a DDL command on the reading thread, the appliers drained.
    func run(_ command: DDLCommand, entry: Document) throws(RestoreError) {
        do {
            switch mode {
            case .applyOps:
                count(roundTrips: 1)
                _ = try client.runAdminCommand(Document(["applyOps": .array([.document(command.applyOpsEntry)])]))
            case .crud:
                guard let (database, document) = try command.crudCommand() else { return }
                count(roundTrips: 1)
                _ = try client.runCommand(document, database: database)
            }
        } catch let error as MongoError {
            if command.tolerates(error.serverCode) { return }
            throw RestoreError(.applyFailed, "the \(command.name) entry at \(command.ts) on \(command.target) failed on the target: \(error). Fix the target (or the filters) and resume the restore.", underlying: error)
        } catch let error as RestoreError {
            throw error
        } catch {
            throw RestoreError(.applyFailed, "the \(command.name) entry at \(command.ts) failed: \(error)")
        }
    }

    static func describe(_ op: ReplayOperation) -> String {
        "the \(op.kind) entry at \(op.ts) on \(op.sourceNamespace) (_id \(BSONKey(op.id)))"
    }

    private func failure(_ op: ReplayOperation, _ error: any Error & Sendable) -> RestoreError {
        RestoreError(.applyFailed, "\(Self.describe(op)) failed on the target: \(error). Fix the target and resume the restore from its checkpoint.", underlying: error)
    }

    // MARK: applyOps

    /// One `applyOps` for the batch; on failure, each entry alone, to name the one that
    /// fails (replay is idempotent, so entries applied twice are harmless).
    private func applyOps(_ batch: ArraySlice<ReplayOperation>) throws(RestoreError) {
        let command = Document(["applyOps": .array(batch.map { .document($0.entry) })])
        count(roundTrips: 1)
        do {
            _ = try client.runAdminCommand(command)
        } catch {
            guard batch.count > 1 else {
                // A delete in a namespace that does not exist has nothing to delete. It happens
                // when another applier holds the insert that creates the collection (a
                // transaction touching several `_id`s): any earlier entry on this `_id` is in
                // this applier's lane, and drops are barriers, so nothing is lost.
                if batch.first!.kind == "d", error.serverCode == 26 { return }
                throw failure(batch.first!, error)
            }
            for op in batch { try applyOps([op][...]) }
        }
    }

    // MARK: CRUD

    private func crud(_ batch: [ReplayOperation]) throws(RestoreError) {
        var i = 0
        while i < batch.count {
            let op = batch[i]
            if case .diff(let id, let diff) = op.statement {
                try applyDiff(op, id: id, diff: diff)
                i += 1
                continue
            }
            // A run of upserts or deletes on one collection goes in one ordered command.
            var j = i + 1
            while j < batch.count, batch[j].target == op.target, Self.sameCommand(batch[j].statement, op.statement) { j += 1 }
            try send(batch[i..<j])
            i = j
        }
    }

    private static func sameCommand(_ a: ReplayOperation.Statement, _ b: ReplayOperation.Statement) -> Bool {
        switch (a, b) {
        case (.upsert, .upsert), (.delete, .delete): true
        default: false
        }
    }

    private func send(_ run: ArraySlice<ReplayOperation>) throws(RestoreError) {
        guard let first = run.first else { return }
        var statements: [BSONValue] = []
        let isDelete: Bool
        if case .delete = first.statement { isDelete = true } else { isDelete = false }
        for op in run {
            switch op.statement {
            case .upsert(let q, let u):
                statements.append(.document(Document(["q": .document(q), "u": .document(u), "upsert": .bool(true)])))
            case .delete(let q):
                statements.append(.document(Document(["q": .document(q), "limit": .int32(1)])))
            case .diff: break
            }
        }
        let command = isDelete
            ? Document(["delete": .string(first.target.collection), "deletes": .array(statements), "ordered": .bool(true)])
            : Document(["update": .string(first.target.collection), "updates": .array(statements), "ordered": .bool(true)])
        count(roundTrips: 1)
        let reply: Document
        do {
            reply = try client.runCommand(command, database: first.target.database)
        } catch {
            guard run.count > 1 else { throw failure(first, error) }
            for op in run { try send([op][...]) }
            return
        }
        if let errors = reply["writeErrors"]?.arrayValue, let e = errors.first?.documentValue {
            let index = Int(e["index"]?.int64Value ?? 0)
            let op = run[run.startIndex + min(max(index, 0), run.count - 1)]
            throw failure(op, WriteFailure(code: Int(e["code"]?.int64Value ?? 0), message: e["errmsg"]?.stringValue ?? "\(e)"))
        }
    }

    /// A `$v:2` diff: update operators under the conditions that make them equivalent,
    /// else (or when they match nothing) fetch the document, apply the diff, replace it.
    private func applyDiff(_ op: ReplayOperation, id: BSONValue, diff: Document) throws(RestoreError) {
        let ns = op.target
        do {
            if let (conditions, update) = try DocumentDiff.operators(for: diff) {
                let q = Document(pairs: ReplayOperation.idFilter(id).elements.map { ($0.key, $0.value) } + conditions.elements.map { ($0.key, $0.value) })
                count(roundTrips: 1)
                let reply = try client.runCommand(Document([
                    "update": .string(ns.collection),
                    "updates": .array([.document(Document(["q": .document(q), "u": .document(update)]))]),
                ]), database: ns.database)
                if reply["writeErrors"] == nil, (reply["n"]?.int64Value ?? 0) >= 1 { return }
            }
            count(roundTrips: 2, fallbacks: 1)
            let current = try client.find(ns, FindOptions(filter: ReplayOperation.idFilter(id), limit: 1)).collect().first
            let updated = try DocumentDiff.apply(diff, to: current ?? Document(pairs: [("_id", id)]))
            let reply = try client.runCommand(Document([
                "update": .string(ns.collection),
                "updates": .array([.document(Document(["q": .document(ReplayOperation.idFilter(id)),
                                                       "u": .document(updated), "upsert": .bool(true)]))]),
            ]), database: ns.database)
            if let e = reply["writeErrors"]?.arrayValue?.first?.documentValue {
                throw WriteFailure(code: Int(e["code"]?.int64Value ?? 0), message: e["errmsg"]?.stringValue ?? "\(e)")
            }
        } catch let error as RestoreError {
            throw RestoreError(error.code, "\(Self.describe(op)): \(error.message)", underlying: error)
        } catch let error as MongoError {
            throw failure(op, error)
        } catch let error as WriteFailure {
            throw failure(op, error)
        } catch {
            throw RestoreError(.applyFailed, "\(Self.describe(op)) failed: \(error)")
        }
    }

    /// View definitions (`db.system.views` documents) as view commands.
    private func crudView(_ op: ReplayOperation) throws(RestoreError) {
        let db = op.target.database
        guard let fullName = op.id.stringValue, let view = Namespace(fullName) else {
            throw RestoreError(.invalidEntry, "\(Self.describe(op)): a view definition's _id is not db.view")
        }
        var command: Document
        var tolerated: Set<Int> = []
        switch op.statement {
        case .upsert(_, let u) where op.kind == "i" || u["viewOn"] != nil:
            let options = u.elements.filter { $0.key != "_id" }.map { ($0.key, $0.value) }
            if op.kind == "i" {
                command = Document(pairs: [("create", .string(view.collection))] + options)
                tolerated = [48]
            } else {
                command = Document(pairs: [("collMod", .string(view.collection))] + options)
            }
        case .delete:
            command = Document(["drop": .string(view.collection)])
            tolerated = [26]
        default:
            throw RestoreError(.unsupported, "\(Self.describe(op)) changes a view definition with an update CRUD mode cannot translate; restore into a replica set that allows applyOps")
        }
        count(roundTrips: 1)
        do {
            _ = try client.runCommand(command, database: db)
        } catch {
            if let code = error.serverCode, tolerated.contains(code) { return }
            throw failure(op, error)
        }
    }
}

/// A write error the server reported inside an ok reply.
struct WriteFailure: Error, Sendable, CustomStringConvertible {
    var code: Int
    var message: String
    var description: String { "\(message) (server error \(code))" }
}

/// What an applier takes from its lane: a batch, or a barrier every lane must reach.
enum LaneWork {
    case batch([ReplayOperation])
    case barrier(ReplayBarrier)
}

/// A command (DDL) every applier must reach before it runs: the last applier to arrive
/// runs it while the others wait, then all continue. The reading thread queues it in
/// every lane and goes on preparing the entries after it, so its parsing and
/// partitioning overlap with the target applying the entries before it.
final class ReplayBarrier: @unchecked Sendable {
    private let condition = NSCondition()
    private let parties: Int
    private var arrived = 0
    private var done = false
    private let action: @Sendable () -> Void

    init(parties: Int, action: @escaping @Sendable () -> Void) {
        self.parties = parties
        self.action = action
    }

    func arrive() {
        condition.lock()
        arrived += 1
        if arrived == parties {
            condition.unlock()
            action()
            condition.lock()
            done = true
            condition.broadcast()
        } else {
            while !done { condition.wait() }
        }
        condition.unlock()
    }
}

/// How many of one replay's appliers have a batch or barrier in hand: a lane lingers
/// for a fuller batch only while another applier keeps the target busy. Thread-safe.
final class LaneFlight: @unchecked Sendable {
    private let lock = NSLock()
    private var busy = 0

    func change(by delta: Int) { lock.withLock { busy += delta } }

    /// Whether any applier is busy (asked by one that is taking, so not busy itself).
    var anyBusy: Bool { lock.withLock { busy > 0 } }
}

/// One applier's queue: the reading thread pushes, the applier thread takes batches.
///
/// A batch is taken once it is full (`batchEntries` or `batchBytes`), when the reader
/// drains or closes the lane, when a barrier follows it (the reader has moved past its
/// entries), when no applier has work in flight (the target would idle), or when its
/// oldest entry has waited `linger`: while the target is busy, an idle applier does not
/// send a round trip per entry as the reader fills its queue. A batch never crosses a
/// barrier. The reader wakes the applier only when that changes (first
/// entry, full batch, barrier), not on every push. Thread-safe (one condition
/// variable). Bounded (entries and barriers), so a fast reader waits for slow appliers.
final class Lane: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [ReplayOperation] = []
    private var head = 0
    private var pendingBytes = 0
    /// Barriers still queued, each with the number of entries pushed before it (counted
    /// from the lane's start, as `taken`).
    private var barriers: [(position: Int, barrier: ReplayBarrier)] = []
    private var barrierHead = 0
    /// Entries taken since the lane started.
    private var taken = 0
    /// When the oldest pending entry arrived (approximately: reset after each take).
    private var oldest = ContinuousClock.now
    private var busy = false
    private var flushing = false
    private var closed = false
    private var waitingForSpace = false
    private let capacity: Int
    private let batchEntries: Int
    private let batchBytes: Int
    private let linger: Duration

    /// What every lane of one replay shares: which appliers have work in flight.
    let flight: LaneFlight

    init(capacity: Int, batchEntries: Int, batchBytes: Int, linger: Duration = .milliseconds(10), flight: LaneFlight = LaneFlight()) {
        self.flight = flight
        self.capacity = max(capacity, batchEntries)
        self.batchEntries = max(1, batchEntries)
        self.batchBytes = batchBytes
        self.linger = linger
    }

    private var queued: Int { queue.count - head + barriers.count - barrierHead }

    private func waitForSpace() {
        while queued >= capacity && !closed {
            waitingForSpace = true
            condition.wait()
        }
    }

    func push(_ op: ReplayOperation) {
        condition.lock()
        defer { condition.unlock() }
        waitForSpace()
        let pending = queue.count - head
        if pending == 0 { oldest = .now }
        queue.append(op)
        pendingBytes += op.bytes
        // Wake the applier when it has something new to decide: a first entry (it starts
        // lingering) or a full batch.
        if pending == 0 || pending + 1 == batchEntries || (pendingBytes >= batchBytes && pendingBytes - op.bytes < batchBytes) {
            condition.broadcast()
        }
    }

    /// Queues `barrier` after the entries pushed so far.
    func push(_ barrier: ReplayBarrier) {
        condition.lock()
        defer { condition.unlock() }
        waitForSpace()
        barriers.append((taken + queue.count - head, barrier))
        condition.broadcast()
    }

    /// The next batch (up to the limits) or barrier, waiting for work; nil once closed and empty.
    func take() -> LaneWork? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let pending = queue.count - head
            let nextBarrier = barrierHead < barriers.count ? barriers[barrierHead].position : nil
            if let position = nextBarrier, position == taken {
                let barrier = barriers[barrierHead].barrier
                barrierHead += 1
                if barrierHead == barriers.count {
                    barriers.removeAll(keepingCapacity: true)
                    barrierHead = 0
                }
                busy = true
                flight.change(by: 1)
                wakeWriter()
                return .barrier(barrier)
            }
            if pending == 0 {
                if closed { return nil }
                condition.wait()
                continue
            }
            if closed || flushing || nextBarrier != nil || pending >= batchEntries || pendingBytes >= batchBytes { break }
            // No other applier has a round trip in flight: the target is idle, send now.
            if !flight.anyBusy { break }
            let waited = ContinuousClock.now - oldest
            if waited >= linger { break }
            // Wake up often enough to notice the other appliers going idle.
            let left = min(linger - waited, .microseconds(200))
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        let limit = barrierHead < barriers.count ? barriers[barrierHead].position - taken : Int.max
        var batch: [ReplayOperation] = []
        var bytes = 0
        while head < queue.count, batch.count < batchEntries, batch.count < limit {
            let op = queue[head]
            if !batch.isEmpty && bytes + op.bytes > batchBytes { break }
            batch.append(op)
            bytes += op.bytes
            head += 1
        }
        taken += batch.count
        pendingBytes -= bytes
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else {
            oldest = .now
            if head > 4096 {
                queue.removeFirst(head)
                head = 0
            }
        }
        busy = true
        flight.change(by: 1)
        wakeWriter()
        return .batch(batch)
    }

    private func wakeWriter() {
        if waitingForSpace {
            waitingForSpace = false
            condition.broadcast()
        }
    }

    func done() {
        flight.change(by: -1)
        condition.lock()
        busy = false
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until everything pushed has been applied (or skipped after a failure):
    /// pending entries go out at once, without lingering.
    func drain() {
        condition.lock()
        flushing = true
        condition.broadcast()
        while head < queue.count || barrierHead < barriers.count || busy { condition.wait() }
        flushing = false
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Tracks which entries are fully applied, to report the checkpoint: the newest `ts`
/// with every entry up to it applied.
///
/// Each entry gets a record with a count of pending operations (plus one while the
/// reading thread dispatches it, plus one while a transaction holds it); records are
/// retired in order once their count reaches zero. Thread-safe.
final class ReplayProgress: @unchecked Sendable {
    private struct Record {
        var ts: Timestamp
        var pending: Int
        /// Transaction entries released when this (commit) record completes.
        var releases: [Int] = []
    }

    private let lock = NSLock()
    /// Live records are `records[head...]`; retired ones before `head` are dropped in
    /// bulk, so retiring costs O(1) amortized (shifting thousands of live records on
    /// every completion cost more than applying the operation).
    private var records: [Record] = []
    private var head = 0
    private var base = 0  // record number of records[0]
    private var _checkpoint: Timestamp?

    var checkpoint: Timestamp? { lock.withLock { _checkpoint } }

    func open(_ ts: Timestamp) -> Int {
        lock.withLock {
            records.append(Record(ts: ts, pending: 1))
            return base + records.count - 1
        }
    }

    func add(_ record: Int) { lock.withLock { records[record - base].pending += 1 } }
    func hold(_ record: Int) { add(record) }
    func close(_ record: Int) { complete(record) }

    /// When `record` completes, release the held transaction entries `held`.
    func release(_ held: [Int], after record: Int) {
        lock.withLock { records[record - base].releases += held }
    }

    func complete(_ record: Int) { complete(CollectionOfOne(record)) }

    /// Completes one operation of each record in `done` (one lock for a whole batch).
    func complete(_ done: some Sequence<Int>) {
        lock.withLock {
            var stack: [Int] = []
            for record in done {
                stack.append(record)
                while let r = stack.popLast() {
                    records[r - base].pending -= 1
                    if records[r - base].pending == 0 && !records[r - base].releases.isEmpty {
                        stack += records[r - base].releases
                        records[r - base].releases = []
                    }
                }
            }
            while head < records.count, records[head].pending == 0 {
                _checkpoint = records[head].ts
                head += 1
            }
            if head > 1024 && head * 2 > records.count {
                records.removeFirst(head)
                base += head
                head = 0
            }
        }
    }
}
