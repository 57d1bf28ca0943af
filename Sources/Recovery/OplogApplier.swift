import BSON
import Foundation
import Logging
import Mongo

/// Replays oplog entries onto a target server: batched `applyOps` from parallel
/// appliers partitioned by namespace and `_id`, or CRUD commands where `applyOps` is
/// refused (ARCHITECTURE.md §5).
///
/// Feed entries in `ts` order with `apply(_:)` (or `replay(_:)`), then call `finish()`:
/// only `finish()` returning means every entry was applied. Commands (DDL) are
/// barriers: the appliers drain, the command runs alone, replay continues.
/// Transactions are buffered until their commit (`partialTxn` chains, prepared
/// transactions) and dropped on abort. Replay is idempotent (inserts are upserts,
/// diffs hold absolute values, tolerated errors for DDL already applied), so a restore
/// can resume after `checkpoint`.
///
/// Threading: `apply`, `replay` and `finish` must be called from one thread at a time
/// (the reading thread); the appliers are `workers` threads of their own, which block
/// on the network. `checkpoint` may be read from any thread.
public final class OplogApplier: @unchecked Sendable {
    // @unchecked: dispatcher state is touched only by the reading thread; what the
    // worker threads share (engine, progress, lanes) is locked inside those types.

    /// How entries reach the target.
    public enum Mode: String, Sendable, CustomStringConvertible {
        /// Batches of entries in `applyOps` commands (replica-set targets that allow it).
        case applyOps
        /// Upserts, update operators, deletes and DDL commands (managed services, standalone servers).
        case crud
        public var description: String { rawValue }
    }

    public struct Options: Sendable {
        /// nil: `applyOps` when the target is a replica set that accepts it, else `crud`.
        public var mode: Mode?
        /// Parallel appliers (threads, each with its own connection).
        public var workers: Int = 4
        /// Entries per `applyOps` batch (or CRUD statements per command).
        public var batchEntries: Int = 1000
        /// Bytes per batch; below MongoDB's 16 MiB command limit with room for the envelope.
        public var batchBytes: Int = 15 << 20
        public var mapping: NamespaceMapping = .identity
        /// Replay `admin.system.*` (users, roles, version): off, as mongorestore.
        public var includeAdminSystem = false
        /// Target namespaces whose entries must keep their relative order across
        /// documents (capped collections, collections with unique secondary indexes):
        /// each goes to one applier. Extended as replay creates such collections.
        public var serialNamespaces: Set<Namespace> = []
        /// Skip entries with `ts <=` this (resume from a checkpoint).
        public var resumeAfter: Timestamp?
        /// Ignore entries with `ts >` this: the inclusive restore target.
        public var stopAfter: Timestamp?

        public init(mode: Mode? = nil, workers: Int = 4, batchEntries: Int = 1000, mapping: NamespaceMapping = .identity,
                    serialNamespaces: Set<Namespace> = [], resumeAfter: Timestamp? = nil, stopAfter: Timestamp? = nil) {
            self.mode = mode
            self.workers = workers
            self.batchEntries = batchEntries
            self.mapping = mapping
            self.serialNamespaces = serialNamespaces
            self.resumeAfter = resumeAfter
            self.stopAfter = stopAfter
        }
    }

    public let mode: Mode
    private let options: Options
    private let engine: ReplayEngine
    private let lanes: [Lane]
    private let finished = DispatchGroup()
    private var transactions = TransactionBuffer()
    private var serial: Set<Namespace>
    private var stats = ReplayResult()
    private var lastTS: Timestamp?
    private var closed = false
    private let started = ContinuousClock.now
    private let logger: Logger

    /// Chooses the mode (unless given), starts the applier threads.
    /// - Throws: `RestoreError` `.applyFailed` when the target cannot be reached to choose the mode.
    public init(client: MongoClient, options: Options = Options(), logger: Logger = MongoClient.silentLogger) throws(RestoreError) {
        self.options = options
        self.logger = logger
        if let chosen = options.mode { mode = chosen } else { mode = try Self.chooseMode(client) }
        serial = options.serialNamespaces
        engine = ReplayEngine(client: client, mode: mode)
        let workers = max(1, options.workers)
        let flight = LaneFlight()
        lanes = (0..<workers).map { _ in
            Lane(capacity: max(2 * options.batchEntries, 64), batchEntries: options.batchEntries, batchBytes: options.batchBytes,
                 flight: flight)
        }
        for lane in lanes {
            let engine = self.engine
            finished.enter()
            let group = finished
            let thread = Thread {
                while let work = lane.take() {
                    switch work {
                    case .batch(let batch): engine.execute(batch)
                    case .barrier(let barrier): barrier.arrive()
                    }
                    lane.done()
                }
                group.leave()
            }
            thread.name = "ancre.replay"
            thread.start()
        }
        stats.mode = mode
        logger.info("replay started", metadata: ["replay.mode": "\(mode)", "replay.workers": "\(workers)"])
    }

    deinit {
        for lane in lanes { lane.close() }
    }

    /// `applyOps` when the target is a replica set member that accepts it; `crud` for
    /// a standalone server or one answering Unauthorized (13) or CommandNotFound (59).
    /// - Throws: `RestoreError` `.applyFailed` when the server cannot be asked.
    public static func chooseMode(_ client: MongoClient) throws(RestoreError) -> Mode {
        let info: ServerInfo
        do { info = try client.hello() } catch {
            throw RestoreError(.applyFailed, "cannot reach the restore target to choose a replay mode: \(error)", underlying: error)
        }
        guard info.isReplicaSet else { return .crud }
        do {
            _ = try client.runAdminCommand(Document(["applyOps": .array([])]))
            return .applyOps
        } catch where error.code == .unauthorized || error.code == .commandNotFound {
            return .crud
        } catch {
            throw RestoreError(.applyFailed, "the restore target refused a probe of applyOps: \(error)", underlying: error)
        }
    }

    /// The newest `ts` such that every entry up to it has been applied (and no
    /// transaction still buffered began at or before it): resume after it.
    public var checkpoint: Timestamp? { engine.progress.checkpoint }

    // MARK: Feeding

    /// Replays every entry of `entries` (in `ts` order) and finishes.
    /// - Throws: `RestoreError` naming the first entry that failed.
    public func replay(_ entries: some Sequence<Document>) throws(RestoreError) -> ReplayResult {
        for entry in entries {
            if let stop = options.stopAfter, let ts = entry["ts"]?.timestampValue, ts > stop { break }
            try apply(entry)
        }
        return try finish()
    }

    /// Hands one entry to the appliers (a command waits for them and runs alone).
    /// - Throws: `RestoreError` `.invalidEntry` for an entry replay cannot read,
    ///   `.applyFailed` when this or an earlier entry failed on the target.
    public func apply(_ entry: Document) throws(RestoreError) {
        precondition(!closed, "OplogApplier.apply after finish()")
        try engine.throwIfFailed()
        guard let ts = entry["ts"]?.timestampValue else {
            throw RestoreError(.invalidEntry, "an oplog entry has no ts: \(entry)")
        }
        if let last = lastTS, ts <= last {
            throw RestoreError(.invalidEntry, "oplog entries are out of order: \(ts) after \(last); feed entries in ts order")
        }
        lastTS = ts
        if let resume = options.resumeAfter, ts <= resume { return }
        if let stop = options.stopAfter, ts > stop { return }
        stats.entries += 1
        let record = engine.progress.open(ts)
        defer { engine.progress.close(record) }
        try route(entry, ts: ts, record: record, transactionKey: TransactionBuffer.key(of: entry))
    }

    /// Waits until every entry handed to `apply` so far is applied on the target
    /// (transactions still buffered excepted: they wait for their commit). The target
    /// then holds the source's state as of the last entry applied.
    /// - Throws: `RestoreError` `.applyFailed` naming the first entry that failed.
    public func flush() throws(RestoreError) {
        precondition(!closed, "OplogApplier.flush after finish()")
        drain()
        try engine.throwIfFailed()
    }

    /// Waits for the appliers and stops them.
    /// - Returns: what was replayed; `lastApplied` is the final checkpoint.
    /// - Throws: `RestoreError` `.applyFailed` naming the first entry that failed.
    public func finish() throws(RestoreError) -> ReplayResult {
        if !closed {
            closed = true
            drain()
            for lane in lanes { lane.close() }
            finished.wait()
        }
        try engine.throwIfFailed()
        stats.openTransactions = transactions.count
        stats.lastApplied = engine.progress.checkpoint
        stats.roundTrips = engine.roundTrips
        stats.fallbacks = engine.fallbacks
        stats.elapsed = ContinuousClock.now - started
        logger.info("replay finished", metadata: [
            "replay.entries": "\(stats.entries)", "replay.operations": "\(stats.operations)",
            "replay.checkpoint": "\(stats.lastApplied?.description ?? "-")",
        ])
        return stats
    }

    // MARK: Routing

    private func route(_ entry: Document, ts: Timestamp, record: Int, transactionKey: TransactionBuffer.Key?) throws(RestoreError) {
        guard let op = entry["op"]?.stringValue else {
            throw RestoreError(.invalidEntry, "the oplog entry at \(ts) has no op field; the oplog segment is damaged")
        }
        let ns = entry["ns"]?.stringValue ?? ""
        switch op {
        case "n":
            stats.skipped += 1
        case "i", "u", "d":
            try dispatch(entry, ts: ts, record: record)
        case "c":
            try command(entry, ns: ns, ts: ts, record: record, transactionKey: transactionKey)
        default:
            throw RestoreError(.invalidEntry, "the oplog entry at \(ts) on \(ns) has an unknown op \"\(op)\"")
        }
    }

    private func command(_ entry: Document, ns: String, ts: Timestamp, record: Int, transactionKey: TransactionBuffer.Key?) throws(RestoreError) {
        guard let o = entry["o"]?.documentValue, let name = o.keys.first else {
            throw RestoreError(.invalidEntry, "the command entry at \(ts) on \(ns) has no command in o")
        }
        switch name {
        case "applyOps":
            guard let inner = o["applyOps"]?.arrayValue?.compactMap(\.documentValue) else {
                throw RestoreError(.invalidEntry, "the applyOps entry at \(ts) has no array of operations")
            }
            if let key = transactionKey, o["partialTxn"] == .bool(true) || o["prepare"] == .bool(true) {
                // A chain link or a prepared transaction: held until its commit.
                engine.progress.hold(record)
                transactions.add(key, operations: inner, record: record, prepared: o["prepare"] == .bool(true))
                return
            }
            var operations = inner
            if let key = transactionKey, var chain = transactions.take(key) {
                engine.progress.release(chain.records, after: record)
                chain.operations.append(contentsOf: inner)
                operations = chain.operations
                chain.operations = []  // `operations` is now the only owner: expand releases as it goes
            }
            if transactionKey != nil { stats.transactions += 1 }
            try expand(&operations, ts: ts, record: record)
        case "commitTransaction":
            guard let key = transactionKey, var txn = transactions.take(key) else {
                // Its prepare entry lies before the replayed range: it was applied with the base.
                logger.warning("commitTransaction without a prepared transaction", metadata: ["oplog.ts": "\(ts)"])
                stats.skipped += 1
                return
            }
            stats.transactions += 1
            engine.progress.release(txn.records, after: record)
            var operations = txn.operations
            txn.operations = []
            try expand(&operations, ts: ts, record: record)
        case "abortTransaction":
            if let key = transactionKey, let txn = transactions.take(key) {
                engine.progress.release(txn.records, after: record)
            }
            stats.abortedTransactions += 1
        case "startIndexBuild", "abortIndexBuild":
            stats.skipped += 1
        default:
            try barrier(entry, o: o, ns: ns, ts: ts, record: record)
        }
    }

    /// Applies a transaction's (or an `applyOps` entry's) operations as ordinary entries,
    /// releasing each one's bytes once dispatched, so a large transaction's memory
    /// shrinks while the appliers work through it.
    private func expand(_ operations: inout [Document], ts: Timestamp, record: Int) throws(RestoreError) {
        for index in operations.indices {
            let inner = operations[index]
            operations[index] = Document()
            let ns = inner["ns"]?.stringValue ?? ""
            switch inner["op"]?.stringValue {
            case "n": continue
            case "c": try command(inner, ns: ns, ts: ts, record: record, transactionKey: nil)
            default: try dispatch(inner, ts: ts, record: record)
            }
        }
    }

    /// Sends a CRUD entry to the applier owning its namespace and `_id`.
    private func dispatch(_ entry: Document, ts: Timestamp, record: Int) throws(RestoreError) {
        let nsText = entry["ns"]?.stringValue ?? ""
        let kind = entry["op"]?.stringValue ?? "?"
        guard let source = Namespace(nsText) else {
            throw RestoreError(.invalidEntry, "the \(kind) entry at \(ts) has an invalid namespace \"\(nsText)\"")
        }
        guard !Self.isInternal(source, includeAdminSystem: options.includeAdminSystem),
              let target = options.mapping.map(source) else {
            stats.skipped += 1
            return
        }
        let operation = try ReplayOperation(entry, kind: kind, source: source, target: target, ts: ts, record: record,
                                            mapping: options.mapping, mode: mode)
        stats.operations += 1
        if target.collection == "system.views" {
            // View definitions are catalog changes: run alone, in order.
            drain()
            try engine.runAlone(operation)
            return
        }
        engine.progress.add(record)
        let lane: Int
        if serial.contains(target) {
            lane = Int(ReplayOperation.hash(namespace: target, id: nil) % UInt64(lanes.count))
        } else {
            lane = Int(operation.partition % UInt64(lanes.count))
        }
        lanes[lane].push(operation)
    }

    /// Runs a DDL command alone: drain the appliers, run it, continue.
    private func barrier(_ entry: Document, o: Document, ns: String, ts: Timestamp, record: Int) throws(RestoreError) {
        guard let db = ns.split(separator: ".", maxSplits: 1).first.map(String.init) else {
            throw RestoreError(.invalidEntry, "the command entry at \(ts) has no database in ns \"\(ns)\"")
        }
        guard let command = try DDLCommand(o: o, database: db, ts: ts, mapping: options.mapping,
                                           includeAdminSystem: options.includeAdminSystem) else {
            stats.skipped += 1
            return
        }
        stats.operations += 1
        try engine.throwIfFailed()
        // Every applier stops at the barrier; the last to arrive runs the command. The
        // reading thread goes on preparing the entries after it meanwhile.
        engine.progress.add(record)
        let engine = self.engine
        let barrier = ReplayBarrier(parties: lanes.count) {
            guard !engine.hasFailed else { return }
            do throws(RestoreError) {
                try engine.run(command, entry: entry)
                engine.progress.complete(record)
            } catch {
                engine.fail(error)
            }
        }
        for lane in lanes { lane.push(barrier) }
        // Collections whose entries must stay in order across documents (routing of the
        // entries after the command, which the barrier keeps after it on the target).
        switch command.name {
        case "create" where command.o["capped"] == .bool(true):
            serial.insert(command.target)
        case "createIndexes", "commitIndexBuild":
            let specs = command.name == "createIndexes" ? [command.o] : (command.o["indexes"]?.arrayValue?.compactMap(\.documentValue) ?? [])
            if specs.contains(where: { $0["unique"] == .bool(true) }) { serial.insert(command.target) }
        case "renameCollection":
            if let to = command.renameTarget, serial.contains(command.target) { serial.insert(to) }
        default:
            break
        }
    }

    private func drain() {
        for lane in lanes { lane.drain() }
    }

    /// Namespaces replay never writes, as mongorestore: `local`, `config`, profiling,
    /// and `admin.system.*` unless asked.
    static func isInternal(_ ns: Namespace, includeAdminSystem: Bool) -> Bool {
        switch ns.database {
        case "local", "config": return true
        case "admin" where ns.collection.hasPrefix("system."): return !includeAdminSystem
        default: return ns.collection == "system.profile" || ns.collection.hasPrefix("system.indexBuilds")
        }
    }
}

/// What a replay did.
public struct ReplayResult: Sendable {
    public var mode: OplogApplier.Mode = .applyOps
    /// Entries read in the replayed range.
    public var entries = 0
    /// Operations sent to the target (CRUD operations, transaction members, commands).
    public var operations = 0
    /// Entries skipped: no-ops, internal or filtered namespaces, index-build markers.
    public var skipped = 0
    /// Committed transactions applied.
    public var transactions = 0
    public var abortedTransactions = 0
    /// Transactions still uncommitted at the end: not applied, as on the source at that time.
    public var openTransactions = 0
    /// The final checkpoint: every entry up to it is applied.
    public var lastApplied: Timestamp?
    /// Commands sent to the target.
    public var roundTrips = 0
    /// CRUD mode: diffs applied by fetching and replacing the document.
    public var fallbacks = 0
    public var elapsed: Duration = .zero

    public init() {}

    /// Entries per second.
    public var rate: Double {
        let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return s > 0 ? Double(entries) / s : 0
    }
}
