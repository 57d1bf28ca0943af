import BSON
import Foundation
import Logging
import Mongo
import Repository

/// How a restore runs.
public struct RestoreOptions: Sendable {
    public var mapping: NamespaceMapping = .identity
    /// Drop target collections before loading them (else non-empty ones are refused).
    public var drop = false
    /// nil: applyOps where the target allows it, CRUD otherwise.
    public var mode: OplogApplier.Mode?
    public var workers = 4
    /// Where progress is saved so an interrupted restore can resume; nil: none.
    public var checkpointPath: String?

    public init(mapping: NamespaceMapping = .identity, drop: Bool = false, mode: OplogApplier.Mode? = nil,
                workers: Int = 4, checkpointPath: String? = nil) {
        self.mapping = mapping
        self.drop = drop
        self.mode = mode
        self.workers = workers
        self.checkpointPath = checkpointPath
    }
}

/// What a finished restore did.
public struct RestoreResult: Sendable, Encodable {
    public var snapshot: String
    public var target: String
    public var documents: UInt64
    public var collections: Int
    public var entriesReplayed: Int
    public var transactions: Int
    public var mode: String
    /// The newest oplog entry applied: the target was restored to this point.
    public var restoredTo: String?
    public var resumed: Bool
    public var loadSeconds: Double
    public var replaySeconds: Double
}

/// Progress saved between the phases of a restore, so an interrupted one resumes: the
/// data load is redone whole (with drop), replay continues after the last checkpoint.
struct RestoreCheckpoint: Codable, Equatable {
    var snapshot: String
    var target: String
    var loaded: Bool
    /// Every entry with `ts <=` this was applied.
    var applied: OplogTime?

    static func load(_ path: String) -> RestoreCheckpoint? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(RestoreCheckpoint.self, from: data)
    }

    func save(_ path: String) throws {
        let data = try JSONEncoder().encode(self)
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary), options: .atomic)
        _ = rename(temporary, path)
    }
}

/// Executes a `RestorePlan`: loads the base snapshot into the target, then replays the
/// oplog up to the target, and reports success only when every planned entry was applied.
///
/// Blocking; runs on the calling thread plus the loader's and applier's own threads.
public struct Restorer: Sendable {
    let repository: Repository
    let client: MongoClient
    let logger: Logger

    public init(repository: Repository, client: MongoClient, logger: Logger) {
        self.repository = repository
        self.client = client
        self.logger = logger
    }

    /// Runs `plan`.
    /// - Parameter progress: called now and then with (phase, done, total).
    /// - Throws: `RestoreError` (load or replay failures name the collection or the
    ///   entry), repository errors for missing or damaged blobs. On any error the
    ///   checkpoint (when enabled) records how far the restore got.
    public func run(_ plan: RestorePlan, options: RestoreOptions,
                    progress: (@Sendable (String, Int, Int) -> Void)? = nil) throws -> RestoreResult {
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: plan.snapshot)
        let targetText = plan.limit.map(\.description) ?? "snapshot \(plan.snapshotID.prefix(8))"
        var checkpoint = RestoreCheckpoint(snapshot: plan.snapshotID, target: targetText, loaded: false, applied: nil)
        var resumed = false
        if let path = options.checkpointPath, let saved = RestoreCheckpoint.load(path),
           saved.snapshot == plan.snapshotID, saved.target == targetText {
            checkpoint = saved
            resumed = true
            logger.info("resuming restore", metadata: ["restore.loaded": "\(saved.loaded)", "restore.applied": "\(saved.applied.map { "\($0)" } ?? "-")"])
        }

        // Load (again, dropping what a previous attempt left, when it did not finish).
        let loadStarted = ContinuousClock.now
        let loadOptions = DataLoader.Options(mapping: options.mapping, drop: options.drop || resumed, workers: options.workers)
        var serial: Set<Namespace> = []
        var documents: UInt64 = 0
        var collections = 0
        if !checkpoint.loaded {
            if loadOptions.drop {
                try dropReplayTargets(plan, manifest: manifest, mapping: options.mapping)
            }
            progress?("load", 0, Int(plan.documentsToLoad))
            let loaded = try DataLoader(repository: repository, client: client, options: loadOptions, logger: logger).load(manifest)
            serial = loaded.serialNamespaces
            documents = loaded.documents
            collections = loaded.collections.count
            checkpoint.loaded = true
            if let path = options.checkpointPath { try checkpoint.save(path) }
        }
        let loadSeconds = seconds(ContinuousClock.now - loadStarted)

        // Replay: the snapshot's own oplog, then the planned segments, up to the limit.
        let replayStarted = ContinuousClock.now
        // No stopAfter: the reader applies the limit, inclusive or not.
        let applierOptions = OplogApplier.Options(
            mode: options.mode, workers: options.workers, mapping: options.mapping, serialNamespaces: serial,
            resumeAfter: checkpoint.applied.map { Timestamp(seconds: $0.t, increment: $0.i) })
        let applier = try OplogApplier(client: client, options: applierOptions, logger: logger)
        // Replay state shared with the reading closure (a class: no boxed captures).
        final class ReplayState {
            var fed = 0
            var lastFed: OplogTime?
            var checkpoint: RestoreCheckpoint
            let path: String?
            init(checkpoint: RestoreCheckpoint, path: String?) {
                self.checkpoint = checkpoint
                self.path = path
            }
            func save(_ done: Timestamp?) {
                guard let path, let done else { return }
                checkpoint.applied = OplogTime(t: done.seconds, i: done.increment)
                try? checkpoint.save(path)
            }
        }
        let state = ReplayState(checkpoint: checkpoint, path: options.checkpointPath)
        let total = plan.entriesToReplay + manifest.oplog.reduce(0) { $0 + $1.count }
        do {
            try OplogReader(repository: repository).forEachEntry(
                from: plan.from, limit: plan.limit, snapshotOplog: manifest.oplog, segments: plan.segments
            ) { entry, time in
                try applier.apply(entry)
                state.fed += 1
                state.lastFed = time
                if state.fed % 10_000 == 0 {
                    progress?("replay", state.fed, total)
                    state.save(applier.checkpoint)
                }
            }
        } catch {
            state.save(applier.checkpoint)
            _ = try? applier.finish()
            throw error
        }
        let fed = state.fed
        let lastFed = state.lastFed
        let replay = try applier.finish()
        // Never report success short of the planned point.
        if let lastFed {
            let applied = replay.lastApplied.map { OplogTime(t: $0.seconds, i: $0.increment) }
            guard let applied, applied >= lastFed || replay.openTransactions > 0 else {
                throw RestoreError(.applyFailed, "replay stopped at \(replay.lastApplied.map { "\($0)" } ?? "nothing") before the last planned entry \(lastFed); the target is incomplete: restore again")
            }
        }
        if let target = plan.limit, plan.window != nil, let lastFed, lastFed < plan.snapshot.end ?? lastFed {
            throw RestoreError(.applyFailed, "the oplog read ended at \(lastFed), before the snapshot's consistency point \(plan.snapshot.end!) (target \(target)); the repository is missing segments: run `ancre check`")
        }
        if let path = options.checkpointPath { try? FileManager.default.removeItem(atPath: path) }
        logger.info("restore finished", metadata: ["restore.entries": "\(fed)", "restore.to": "\(lastFed.map { "\($0)" } ?? "-")"])
        return RestoreResult(
            snapshot: plan.snapshotID, target: plan.target.description, documents: documents, collections: collections,
            entriesReplayed: replay.entries, transactions: replay.transactions, mode: replay.mode.rawValue,
            restoredTo: lastFed.map { "ts:\($0)" }, resumed: resumed, loadSeconds: loadSeconds,
            replaySeconds: seconds(ContinuousClock.now - replayStarted))
    }

    /// With `--drop`, collections that replay creates (created or renamed into after the
    /// snapshot) are dropped too: a previous restore left them, and replaying their
    /// creation into them would fail. Reads the planned oplog once for their names.
    private func dropReplayTargets(_ plan: RestorePlan, manifest: SnapshotManifest, mapping: NamespaceMapping) throws {
        // A class, not a captured var: the 6.3 compiler crashes promoting that box.
        final class Names { var created: Set<Namespace> = [] }
        let names = Names()
        try OplogReader(repository: repository).forEachEntry(
            from: plan.from, limit: plan.limit, snapshotOplog: manifest.oplog, segments: plan.segments
        ) { entry, _ in
            guard entry["op"]?.stringValue == "c", let ns = entry["ns"]?.stringValue,
                  let o = entry["o"]?.documentValue, let first = o.elements.first else { return }
            let database = String(ns.split(separator: ".").first ?? "")
            switch first.key {
            case "create":
                if let name = first.value.stringValue { names.created.insert(Namespace(database: database, collection: name)) }
            case "renameCollection":
                if let to = o["to"]?.stringValue, let target = Namespace(to) { names.created.insert(target) }
            default: break
            }
        }
        let created = names.created
        for source in created.sorted() {
            guard let target = mapping.map(source) else { continue }
            // A Result, not do/catch with `continue`: that shape crashes the 6.3 compiler.
            let dropped = Result { () throws(MongoError) -> Document in
                try client.runCommand(Document(["drop": .string(target.collection)]), database: target.database)
            }
            if case .failure(let error) = dropped, error.code != .namespaceNotFound { throw error }
        }
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
