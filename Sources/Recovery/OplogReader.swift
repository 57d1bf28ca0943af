import BSON
import Foundation
import Repository

/// Reads oplog entries back from a repository, in `ts` order, from a snapshot's own
/// oplog and then from timeline segments, each entry once.
///
/// Segments and a snapshot's captured oplog overlap (both hold the entries between
/// the snapshot's start and end); entries at or before the last one handed out are
/// skipped, so the sequence is strictly increasing. Loads one blob at a time.
public struct OplogReader: Sendable {
    public let repository: Repository

    public init(repository: Repository) {
        self.repository = repository
    }

    /// Calls `body` with every entry with `from <= ts` that `limit` admits.
    ///
    /// - Parameters:
    ///   - snapshotOplog: the snapshot manifest's oplog chunks (read first).
    ///   - segments: timeline segments in `first` order.
    /// - Returns: the number of entries handed to `body`.
    /// - Throws: repository errors for missing or damaged blobs, `RestoreError`
    ///   `.invalidEntry` for an entry without `ts`, or what `body` throws.
    @discardableResult
    public func forEachEntry(
        from: OplogTime?, limit: ReplayLimit?, snapshotOplog: [OplogChunk], segments: [TimelineSegment],
        _ body: (Document, OplogTime) throws -> Void
    ) throws -> Int {
        var last: OplogTime?
        var count = 0
        var done = false
        func read(_ blob: BlobID) throws {
            let bytes = try repository.loadBlob(blob)
            try TreeReader.forEachRecord(in: bytes, id: blob) { raw in
                guard !done else { return }
                let entry = Document(trustedBytes: Array(raw))
                guard let ts = entry["ts"]?.timestampValue else {
                    throw RestoreError(.invalidEntry, "an oplog entry in blob \(blob.short) has no ts")
                }
                let time = OplogTime(t: ts.seconds, i: ts.increment)
                if let from, time < from { return }
                if let last, time <= last { return }
                if let limit, !limit.admits(time) {
                    done = true
                    return
                }
                last = time
                count += 1
                try body(entry, time)
            }
        }
        for chunk in snapshotOplog where !done {
            if let limit, !limit.admits(chunk.first) { break }
            try read(chunk.blob)
        }
        for segment in segments where !done {
            if let last, segment.last <= last { continue }
            if let limit, !limit.admits(segment.first) { break }
            try read(segment.blob)
        }
        return count
    }
}

/// A filter for `ancre oplog search`: which entries to show.
public struct OplogQuery: Sendable {
    /// `db` or `db.coll` (a database matches its `db.$cmd` commands too); nil for all.
    public var namespace: String?
    /// `i`, `u`, `d`, `c`, `n`; empty for all.
    public var ops: Set<String>
    /// A command name (`drop`, `dropDatabase`, `renameCollection`...), matched in `o`.
    public var command: String?
    public var from: OplogTime?
    public var to: OplogTime?
    public var limit: Int

    public init(namespace: String? = nil, ops: Set<String> = [], command: String? = nil, from: OplogTime? = nil,
                to: OplogTime? = nil, limit: Int = 100) {
        self.namespace = namespace
        self.ops = ops
        self.command = command
        self.from = from
        self.to = to
        self.limit = limit
    }

    public func matches(_ entry: Document) -> Bool {
        let op = entry["op"]?.stringValue ?? ""
        if !ops.isEmpty && !ops.contains(op) { return false }
        let ns = entry["ns"]?.stringValue ?? ""
        if let namespace {
            let database = namespace.split(separator: ".", maxSplits: 1).first.map(String.init) ?? namespace
            let isDatabase = !namespace.contains(".")
            let matchesNamespace = isDatabase ? (ns == namespace || ns.hasPrefix(database + "."))
                : (ns == namespace || (ns == database + ".$cmd" && commandTarget(entry) == namespace))
            if !matchesNamespace { return false }
        }
        if let command {
            guard op == "c", let o = entry["o"]?.documentValue, o.keys.first == command else { return false }
        }
        return true
    }

    /// The namespace a command entry acts on (`db.coll` for drop, create, renameCollection...).
    func commandTarget(_ entry: Document) -> String? {
        guard let ns = entry["ns"]?.stringValue, let o = entry["o"]?.documentValue,
              let first = o.elements.first else { return nil }
        let database = String(ns.split(separator: ".").first ?? "")
        switch first.value {
        case .string(let name) where first.key == "renameCollection": return name
        case .string(let name): return "\(database).\(name)"
        default: return nil
        }
    }
}

/// One entry found by `ancre oplog search`, summarized.
public struct OplogMatch: Sendable, Encodable {
    public var ts: String
    public var time: Date
    public var op: String
    public var ns: String
    /// For commands the command and its argument; for CRUD the `_id`.
    public var summary: String
    /// For a dropDatabase: the entry to restore `--before` to undo it. MongoDB logs one
    /// `drop` per collection just before the dropDatabase, so it is the first of those.
    public var undoBefore: String?
}

/// Finds oplog entries in the repository's timeline and snapshots.
public struct OplogSearch: Sendable {
    public let repository: Repository

    public init(repository: Repository) {
        self.repository = repository
    }

    /// Entries matching `query`, oldest first, at most `query.limit`.
    /// - Throws: repository errors for missing or damaged blobs.
    public func search(_ query: OplogQuery, view: TimelineView) throws -> [OplogMatch] {
        var matches: [OplogMatch] = []
        let limit = query.to.map { ReplayLimit(time: $0, inclusive: true) }
        let segments = view.segments.map(\.segment).filter { s in
            (query.from.map { s.last >= $0 } ?? true) && (query.to.map { s.first <= $0 } ?? true)
        }
        // Snapshots' own oplog covers times the tailer may not have (a backup without `tail`).
        var chunks: [OplogChunk] = []
        let catalog = SnapshotCatalog(repository: repository)
        for (_, record) in view.snapshots {
            for chunk in try catalog.manifest(of: record).oplog
            where (query.from.map { chunk.last >= $0 } ?? true) && (query.to.map { chunk.first <= $0 } ?? true) {
                chunks.append(chunk)
            }
        }
        chunks.sort { $0.first < $1.first }
        struct Enough: Error {}
        var dropRun: (database: String, first: OplogTime)?
        do {
            try OplogReader(repository: repository).forEachEntry(
                from: query.from, limit: limit, snapshotOplog: chunks, segments: segments
            ) { entry, time in
                // The run of per-collection drops that precedes a dropDatabase.
                let o = entry["o"]?.documentValue
                let command = entry["op"]?.stringValue == "c" ? o?.keys.first : nil
                let database = entry["ns"]?.stringValue.map { String($0.split(separator: ".").first ?? "") } ?? ""
                if command == "drop" {
                    if dropRun?.database != database { dropRun = (database, time) }
                } else if command != "dropDatabase" {
                    dropRun = nil
                }
                guard query.matches(entry) else { return }
                var match = Self.summarize(entry, time)
                if command == "dropDatabase" {
                    match.undoBefore = "ts:\(dropRun?.database == database ? dropRun!.first : time)"
                }
                matches.append(match)
                if matches.count >= query.limit { throw Enough() }
            }
        } catch is Enough {}
        return matches
    }

    static func summarize(_ entry: Document, _ time: OplogTime) -> OplogMatch {
        let op = entry["op"]?.stringValue ?? "?"
        var summary = ""
        if op == "c", let o = entry["o"]?.documentValue, let first = o.elements.first {
            summary = "\(first.key) \(Document(pairs: [(first.key, first.value)]).description)"
        } else if let o2 = entry["o2"]?.documentValue, let id = o2["_id"] {
            summary = "_id \(BSONKey(id))"
        } else if let o = entry["o"]?.documentValue, let id = o["_id"] {
            summary = "_id \(BSONKey(id))"
        }
        var wall = time.date
        if case .datetime(let ms) = entry["wall"] { wall = Date(timeIntervalSince1970: Double(ms) / 1000) }
        return OplogMatch(ts: "ts:\(time)", time: wall, op: op, ns: entry["ns"]?.stringValue ?? "", summary: summary, undoBefore: nil)
    }
}
