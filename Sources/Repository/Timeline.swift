import Foundation

/// A run of consecutive oplog entries stored as one `oplog` blob (concatenated BSON).
///
/// `previous` is the `ts` of the last entry of the segment this one directly follows,
/// as proven by the tailer (the entry was read again and matched); `nil` starts a new
/// chain: the first segment ever, or the first one after a gap.
public struct TimelineSegment: Codable, Sendable, Equatable {
    public var blob: BlobID
    public var first: OplogTime
    public var last: OplogTime
    /// Entries in the blob.
    public var count: Int
    /// Plaintext bytes of the blob.
    public var bytes: Int
    /// The replica set term (`t`) of the last entry, when known.
    public var term: Int64?
    public var previous: OplogTime?
    /// True for a segment written by compaction (a merge of smaller ones).
    public var compacted: Bool

    public init(blob: BlobID, first: OplogTime, last: OplogTime, count: Int, bytes: Int,
                term: Int64? = nil, previous: OplogTime? = nil, compacted: Bool = false) {
        self.blob = blob
        self.first = first
        self.last = last
        self.count = count
        self.bytes = bytes
        self.term = term
        self.previous = previous
        self.compacted = compacted
    }

    private enum CodingKeys: String, CodingKey { case blob, first, last, count, bytes, term, previous, compacted }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        blob = try c.decode(BlobID.self, forKey: .blob)
        first = try c.decode(OplogTime.self, forKey: .first)
        last = try c.decode(OplogTime.self, forKey: .last)
        count = try c.decode(Int.self, forKey: .count)
        bytes = try c.decode(Int.self, forKey: .bytes)
        term = try c.decodeIfPresent(Int64.self, forKey: .term)
        previous = try c.decodeIfPresent(OplogTime.self, forKey: .previous)
        compacted = try c.decodeIfPresent(Bool.self, forKey: .compacted) ?? false
    }
}

/// A break in the captured oplog: entries after `after` and before `before` are lost,
/// so no restore can cross it; a snapshot taken after the gap starts a new window.
public struct TimelineGap: Codable, Sendable, Equatable {
    /// Why the tailer could not continue.
    public struct Reason: RawRepresentable, Codable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The last saved entry fell off the capped oplog while the tailer was away.
        public static let rolledOver = Reason(rawValue: "rolledOver")
        /// The last saved entry is gone or different although older entries remain: the node rolled back.
        public static let rollback = Reason(rawValue: "rollback")
    }

    /// The last entry saved before the gap (nil when nothing was saved before it).
    public var after: OplogTime?
    /// The first entry available after the gap (nil until known).
    public var before: OplogTime?
    public var detected: Date
    public var reason: Reason
    /// A sentence for people: what happened and what to do.
    public var message: String

    public init(after: OplogTime?, before: OplogTime?, detected: Date, reason: Reason, message: String) {
        self.after = after
        self.before = before
        self.detected = detected
        self.reason = reason
        self.message = message
    }
}

/// One sealed file at `timeline/<id>`: segments and gaps the tailer made durable, and,
/// for a compaction, the ids of the timeline files it replaces.
public struct TimelineFile: Codable, Sendable, Equatable {
    public var version: Int = 1
    public var created: Date
    /// The replica set (or hosts) captured, for people; never a URI with credentials.
    public var source: String
    public var segments: [TimelineSegment]
    public var gaps: [TimelineGap]
    /// Timeline files whose content this one carries (compaction); readers ignore them.
    public var supersedes: [String]

    public init(created: Date = Date(), source: String, segments: [TimelineSegment], gaps: [TimelineGap] = [], supersedes: [String] = []) {
        self.created = created
        self.source = source
        self.segments = segments
        self.gaps = gaps
        self.supersedes = supersedes
    }

    /// The JSON plaintext of the sealed file.
    public func encoded() throws -> [UInt8] { Array(try SnapshotCatalog.encoder.encode(self)) }

    /// - Throws: `RepositoryError` `.invalidFormat` for bytes that are not a timeline file.
    public init(decoding bytes: [UInt8], id: String) throws {
        do {
            self = try SnapshotCatalog.decoder.decode(TimelineFile.self, from: Data(bytes))
        } catch {
            throw RepositoryError(.invalidFormat, "timeline file \(id) is not a timeline this version reads: \(error)")
        }
        guard version == 1 else {
            throw RepositoryError(.invalidFormat, "timeline file \(id) has version \(version); upgrade ancre")
        }
    }

    /// Seals and stores the file (after the packs and index naming its blobs were flushed).
    /// - Returns: the file id.
    /// - Throws: `RepositoryError` from storage.
    @discardableResult
    public func save(to repository: Repository) throws -> String {
        try repository.saveFile(kind: .timeline, bytes: try encoded())
    }
}

/// A span of time the repository can restore to: every target in `from...to` (inclusive)
/// is reachable from one of `snapshots` plus contiguous segments.
public struct RestorableWindow: Sendable, Equatable, Codable {
    public var from: OplogTime
    public var to: OplogTime
    /// Snapshot ids usable in this window, oldest consistency point first.
    public var snapshots: [String]
}

/// What the repository can restore: every live timeline file merged with the snapshots.
///
/// Built once from storage (`load`), then answers from memory; computing the windows is
/// linear in the number of segments and snapshots (milliseconds for 30 days).
public struct TimelineView: Sendable {
    /// A segment with the id of the timeline file that lists it.
    public struct Listed: Sendable, Equatable {
        public var segment: TimelineSegment
        public var file: String
    }

    /// Live segments sorted by `first` (one per `first`: duplicates from an interrupted
    /// compaction keep the compacted one).
    public let segments: [Listed]
    public let gaps: [TimelineGap]
    public let snapshots: [(id: String, record: SnapshotRecord)]
    /// Ids of the live timeline files (not superseded).
    public let liveFiles: [String]
    /// Ids of files some other file supersedes but which still exist (an interrupted compaction).
    public let supersededFiles: [String]
    /// Segments listed by those superseded files (their blobs may await removal).
    public let supersededSegments: [TimelineSegment]
    /// Contiguous runs of segments, each as (first entry, last entry, segment indexes).
    public let chains: [Chain]
    public let windows: [RestorableWindow]
    /// The `source` of the newest live timeline file (what the tailer captures), if any.
    public let source: String?

    public struct Chain: Sendable, Equatable {
        public var first: OplogTime
        public var last: OplogTime
        public var segments: Range<Int>
    }

    /// Reads every timeline file and snapshot record of `repository`.
    /// - Throws: `RepositoryError` from storage, or `.invalidFormat` for a damaged file.
    public static func load(_ repository: Repository) throws -> TimelineView {
        var files: [(id: String, file: TimelineFile)] = []
        for id in try repository.listFiles(kind: .timeline) {
            do {
                files.append((id, try TimelineFile(decoding: try repository.loadFile(kind: .timeline, id: id), id: id)))
            } catch RepositoryError.Code.objectNotFound {
                continue  // deleted by a compaction since the listing; its superseder carries it
            }
        }
        let snapshots = try SnapshotCatalog(repository: repository).list()
        return TimelineView(files: files, snapshots: snapshots)
    }

    /// Merges decoded timeline files with snapshot records (pure; for tests and `load`).
    public init(files: [(id: String, file: TimelineFile)], snapshots: [(id: String, record: SnapshotRecord)]) {
        let superseded = Set(files.flatMap(\.file.supersedes))
        let live = files.filter { !superseded.contains($0.id) }
        liveFiles = live.map(\.id).sorted()
        source = live.max { ($0.file.created, $0.id) < ($1.file.created, $1.id) }?.file.source
        supersededFiles = files.map(\.id).filter { superseded.contains($0) }.sorted()
        supersededSegments = files.filter { superseded.contains($0.id) }.flatMap(\.file.segments)
        var listed: [Listed] = []
        var gaps: [TimelineGap] = []
        for (id, file) in live {
            listed += file.segments.map { Listed(segment: $0, file: id) }
            gaps += file.gaps
        }
        listed.sort { a, b in
            a.segment.first != b.segment.first ? a.segment.first < b.segment.first
                : (a.segment.compacted && !b.segment.compacted) || (a.segment.compacted == b.segment.compacted && a.segment.last > b.segment.last)
        }
        // Drop segments inside one already kept (a compacted segment and the small ones it
        // merged, when both files survived an interrupted compaction).
        var kept: [Listed] = []
        for item in listed {
            if let last = kept.last, item.segment.last <= last.segment.last { continue }
            kept.append(item)
        }
        segments = kept
        self.gaps = gaps.sorted { ($0.after ?? OplogTime(t: 0, i: 0), $0.detected) < ($1.after ?? OplogTime(t: 0, i: 0), $1.detected) }
        self.snapshots = snapshots

        var chains: [Chain] = []
        for (n, item) in kept.enumerated() {
            let s = item.segment
            if var chain = chains.last, let previous = s.previous, previous == chain.last {
                chain.last = s.last
                chain.segments = chain.segments.lowerBound..<(n + 1)
                chains[chains.count - 1] = chain
            } else {
                chains.append(Chain(first: s.first, last: s.last, segments: n..<(n + 1)))
            }
        }
        self.chains = chains
        windows = Self.windows(chains: chains, snapshots: snapshots)
    }

    /// Each snapshot is restorable at its consistency point (`end`); when a chain holds its
    /// `start`, every target from `end` to the chain's last entry is too.
    static func windows(chains: [Chain], snapshots: [(id: String, record: SnapshotRecord)]) -> [RestorableWindow] {
        var windows: [RestorableWindow] = []
        let ordered = snapshots.compactMap { s in s.record.end.map { (id: s.id, start: s.record.start ?? $0, end: $0) } }
            .sorted { ($0.end, $0.id) < ($1.end, $1.id) }
        var perChain: [Int: RestorableWindow] = [:]
        for s in ordered {
            // Binary search for the last chain whose first entry is <= start.
            var low = 0, high = chains.count
            while low < high {
                let mid = (low + high) / 2
                if chains[mid].first <= s.start { low = mid + 1 } else { high = mid }
            }
            let c = low - 1
            if c >= 0, chains[c].last >= s.end {
                if perChain[c] == nil {
                    perChain[c] = RestorableWindow(from: s.end, to: chains[c].last, snapshots: [])
                }
                perChain[c]!.snapshots.append(s.id)
            } else {
                windows.append(RestorableWindow(from: s.end, to: s.end, snapshots: [s.id]))
            }
        }
        windows += perChain.values
        // Merge point windows that fall inside a chain window (same restorable instants).
        windows.sort { ($0.from, $0.to) < ($1.from, $1.to) }
        var merged: [RestorableWindow] = []
        for w in windows {
            if var last = merged.last, w.from <= last.to, w.to <= last.to {
                last.snapshots += w.snapshots
                merged[merged.count - 1] = last
            } else {
                merged.append(w)
            }
        }
        return merged
    }

    /// The last segment saved (the newest durable entry is its `last`).
    public var lastSegment: TimelineSegment? { segments.last?.segment }

    /// The window holding `target`, or nil when it is not restorable.
    public func window(containing target: OplogTime) -> RestorableWindow? {
        windows.first { $0.from <= target && target <= $0.to }
    }
}

extension OplogTime {
    /// The seconds part as a date (oplog `ts` seconds are wall-clock seconds).
    public var date: Date { Date(timeIntervalSince1970: TimeInterval(t)) }
}
