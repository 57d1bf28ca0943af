import BSON
import Foundation
import Repository

/// What a restore brings the target to.
///
/// Semantics are inclusive: every oplog entry with `ts <= target` is applied. A wall-clock
/// time includes its whole second (every entry whose `ts` seconds are at most the
/// time's seconds), so entries sharing that second are never skipped.
public enum RestoreTarget: Sendable, Equatable, CustomStringConvertible {
    /// The newest restorable moment.
    case latest
    /// An RFC 3339 time.
    case time(Date)
    /// An exact oplog timestamp: entries up to and including it.
    case timestamp(OplogTime)
    /// Everything strictly before this entry (to undo a fatal operation, e.g. a dropDatabase).
    case before(OplogTime)

    /// Parses `latest`, `ts:S:I` or an RFC 3339 time (for `--to`).
    /// - Throws: `RestoreError` `.badTarget` naming the accepted forms.
    public init(parsing text: String) throws {
        if text == "latest" {
            self = .latest
        } else if text.hasPrefix("ts:"), let ts = Timestamp(text.dropFirst(3)) {
            self = .timestamp(OplogTime(t: ts.seconds, i: ts.increment))
        } else if let date = RestoreTarget.parseTime(text) {
            self = .time(date)
        } else {
            throw RestoreError(.badTarget, "cannot read the target '\(text)': give `latest`, `ts:<seconds>:<increment>` or an RFC 3339 time such as 2026-11-22T09:30:00Z")
        }
    }

    /// Parses `ts:S:I` for `--before`.
    /// - Throws: `RestoreError` `.badTarget`.
    public init(before text: String) throws {
        guard text.hasPrefix("ts:"), let ts = Timestamp(text.dropFirst(3)) else {
            throw RestoreError(.badTarget, "--before takes an oplog entry's timestamp, `ts:<seconds>:<increment>` (find it with `ancre oplog search`)")
        }
        self = .before(OplogTime(t: ts.seconds, i: ts.increment))
    }

    static func parseTime(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        return try? Date(text, strategy: .iso8601)
    }

    public var description: String {
        switch self {
        case .latest: "latest"
        case .time(let d): d.formatted(.iso8601)
        case .timestamp(let t): "ts:\(t)"
        case .before(let t): "before ts:\(t)"
        }
    }
}

/// The last oplog entry a restore applies: `ts <= time` (inclusive) or `ts < time`.
public struct ReplayLimit: Sendable, Equatable, Codable, CustomStringConvertible {
    public var time: OplogTime
    public var inclusive: Bool

    public func admits(_ ts: OplogTime) -> Bool { inclusive ? ts <= time : ts < time }
    public var description: String { inclusive ? "ts <= \(time)" : "ts < \(time)" }
}

/// A restore, planned: the base snapshot, the oplog to replay and what it costs.
/// Executing it is `Restorer`'s job; `--dry-run` prints it.
public struct RestorePlan: Sendable {
    public var target: RestoreTarget
    public var snapshotID: String
    public var snapshot: SnapshotRecord
    /// Replay entries with `ts >= from` (the snapshot's start: replaying an entry the
    /// data already holds is harmless) that the limit admits.
    public var from: OplogTime?
    public var limit: ReplayLimit?
    /// Timeline segments to read after the snapshot's own oplog, in order.
    public var segments: [TimelineSegment]
    /// Entries the segments and the snapshot's oplog hold in the replay range (an upper bound:
    /// segments are counted whole).
    public var entriesToReplay: Int
    /// Stored bytes to read: the snapshot's documents (compressed estimate) and the segments.
    public var bytesToRead: UInt64
    public var documentsToLoad: UInt64
    /// A rough duration from measured rates (about 60 MB/s of document load, 20,000 entries/s of replay).
    public var estimatedSeconds: Double
    /// The window the target falls in.
    public var window: RestorableWindow?
}

/// Chooses the base snapshot and the oplog segments that reach a target (ARCHITECTURE.md §5).
public struct RestorePlanner: Sendable {
    public let view: TimelineView

    public init(view: TimelineView) {
        self.view = view
    }

    /// Plans a restore to `target`, from the newest snapshot whose consistency point is
    /// at or before it.
    /// - Parameter snapshot: restore exactly this snapshot (its consistency point, or a
    ///   later target reachable from it) instead of choosing one.
    /// - Throws: `RestoreError` `.notRestorable` for a target in a gap or outside every
    ///   window, naming the nearest restorable times.
    public func plan(_ target: RestoreTarget, snapshot chosen: String? = nil) throws -> RestorePlan {
        if let chosen, target == .latest {
            guard let s = view.snapshots.first(where: { $0.id.hasPrefix(chosen) }) else {
                throw RestoreError(.notRestorable, "no snapshot \(chosen); `ancre snapshots` lists them")
            }
            // A snapshot on its own: load it and replay its own oplog to its consistency point.
            return makePlan(target, snapshot: s, limit: s.record.end.map { ReplayLimit(time: $0, inclusive: true) }, window: nil)
        }
        let limit = try resolve(target)
        let point = limit.inclusive ? limit.time : predecessor(of: limit.time)
        guard let window = view.window(containing: point) else {
            throw RestoreError(.notRestorable, "\(target) is not restorable: \(nearest(point))")
        }
        let candidates = view.snapshots.filter { s in
            window.snapshots.contains(s.id) && (s.record.end.map { $0 <= point } ?? false)
                && (chosen.map { s.id.hasPrefix($0) } ?? true)
        }
        guard let base = candidates.max(by: { ($0.record.end!, $0.id) < ($1.record.end!, $1.id) }) else {
            throw RestoreError(.notRestorable, "\(target) is not restorable from the chosen snapshot: \(nearest(point))")
        }
        return makePlan(target, snapshot: base, limit: limit, window: window)
    }

    private func makePlan(_ target: RestoreTarget, snapshot base: (id: String, record: SnapshotRecord), limit: ReplayLimit?,
                          window: RestorableWindow?) -> RestorePlan {
        let record = base.record
        let from = record.start ?? record.end
        var segments: [TimelineSegment] = []
        if let from, let limit, let end = record.end, limit.time > end || (limit.inclusive && limit.time == end) {
            // Segments overlapping (from, limit]: binary search the first whose last >= from.
            let all = view.segments
            var low = 0, high = all.count
            while low < high {
                let mid = (low + high) / 2
                if all[mid].segment.last < from { low = mid + 1 } else { high = mid }
            }
            for item in all[low...] {
                guard limit.admits(item.segment.first) else { break }
                segments.append(item.segment)
            }
        }
        let segmentEntries = segments.reduce(0) { $0 + $1.count }
        let segmentBytes = segments.reduce(0) { $0 + $1.bytes }
        // Documents compress about 3x; the estimate only needs to be the right size.
        let snapshotBytes = record.bytes / 3
        let seconds = Double(record.bytes) / 60e6 + Double(segmentEntries) / 20_000
        return RestorePlan(
            target: target, snapshotID: base.id, snapshot: record, from: from, limit: limit, segments: segments,
            entriesToReplay: segmentEntries, bytesToRead: snapshotBytes + UInt64(segmentBytes),
            documentsToLoad: record.documents, estimatedSeconds: seconds, window: window)
    }

    /// The inclusive or exclusive bound a target stands for.
    func resolve(_ target: RestoreTarget) throws -> ReplayLimit {
        switch target {
        case .latest:
            guard let newest = view.windows.max(by: { $0.to < $1.to }) else {
                throw RestoreError(.notRestorable, "nothing is restorable yet: take a snapshot (`ancre backup`) and keep `ancre tail` running")
            }
            return ReplayLimit(time: newest.to, inclusive: true)
        case .time(let date):
            let seconds = date.timeIntervalSince1970
            guard seconds >= 0, seconds < Double(UInt32.max) else {
                throw RestoreError(.badTarget, "\(date) is outside the range of oplog timestamps")
            }
            // The whole second: every entry of that second, whatever its increment.
            return ReplayLimit(time: OplogTime(t: UInt32(seconds.rounded(.down)), i: UInt32.max), inclusive: true)
        case .timestamp(let t):
            return ReplayLimit(time: t, inclusive: true)
        case .before(let t):
            return ReplayLimit(time: t, inclusive: false)
        }
    }

    /// The greatest timestamp before `t` (for window lookups of exclusive bounds).
    func predecessor(of t: OplogTime) -> OplogTime {
        t.i > 0 ? OplogTime(t: t.t, i: t.i - 1) : OplogTime(t: t.t &- 1, i: UInt32.max)
    }

    /// A sentence naming the restorable times around `point`.
    func nearest(_ point: OplogTime) -> String {
        guard !view.windows.isEmpty else {
            return "the repository has no restorable window yet (no snapshot with an oplog time)"
        }
        func describe(_ t: OplogTime) -> String { "\(t.date.formatted(.iso8601)) (ts:\(t))" }
        let before = view.windows.last { $0.to < point }
        let after = view.windows.first { $0.from > point }
        var parts: [String] = []
        if let gap = view.gaps.first(where: { g in (g.after.map { $0 <= point } ?? true) && (g.before.map { point <= $0 } ?? false) }) {
            parts.append("it falls in a gap in the oplog (\(gap.reason): \(gap.message))")
        } else if after == nil {
            parts.append("it is after the newest restorable moment")
        } else if before == nil {
            parts.append("it is before the oldest restorable moment")
        } else {
            parts.append("no snapshot and contiguous oplog reach it")
        }
        if let before { parts.append("the nearest restorable time before it is \(describe(before.to))") }
        if let after { parts.append("the nearest after it is \(describe(after.from))") }
        return parts.joined(separator: "; ")
    }
}
