import Foundation

/// Which snapshots and oplog to keep: restic's keep-last/hourly/daily/weekly/monthly/yearly
/// rules, applied per source, plus a point-in-time window.
///
/// Snapshots are bucketed by their consistency time (`end`, or the record's time for a
/// snapshot without oplog times) in UTC. Walking a source's snapshots newest first, each
/// rule with a count left keeps a snapshot whose bucket differs from the last bucket that
/// rule kept, and counts it (restic's semantics: `daily 7` keeps the newest snapshot of
/// each of the 7 newest days that have one).
public struct RetentionPolicy: Sendable, Equatable, Codable {
    public var last = 0
    public var hourly = 0
    public var daily = 0
    public var weekly = 0
    public var monthly = 0
    public var yearly = 0
    /// Every second from `now - withinPITR` to the newest durable oplog entry stays restorable.
    public var withinPITR: Duration?

    public init(last: Int = 0, hourly: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0,
                withinPITR: Duration? = nil) {
        self.last = last
        self.hourly = hourly
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.yearly = yearly
        self.withinPITR = withinPITR
    }

    /// True when no rule is set (forget refuses: it would remove every snapshot).
    public var isEmpty: Bool { last + hourly + daily + weekly + monthly + yearly == 0 && withinPITR == nil }

    enum Rule: String, CaseIterable { case last, hourly, daily, weekly, monthly, yearly }

    func count(_ rule: Rule) -> Int {
        switch rule {
        case .last: last
        case .hourly: hourly
        case .daily: daily
        case .weekly: weekly
        case .monthly: monthly
        case .yearly: yearly
        }
    }

    static let calendar: Calendar = {
        var c = Calendar(identifier: .iso8601)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    /// The bucket `date` falls in for `rule` (UTC; ISO weeks), printable as a reason.
    static func bucket(_ rule: Rule, _ date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .yearForWeekOfYear, .weekOfYear], from: date)
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        switch rule {
        case .last: return ""
        case .hourly: return "\(c.year!)-\(two(c.month))-\(two(c.day)) \(two(c.hour))h"
        case .daily: return "\(c.year!)-\(two(c.month))-\(two(c.day))"
        case .weekly: return "\(c.yearForWeekOfYear!)-W\(two(c.weekOfYear))"
        case .monthly: return "\(c.year!)-\(two(c.month))"
        case .yearly: return "\(c.year!)"
        }
    }
}

/// What `forget` will remove and keep, and why. Pure value: `RetentionPolicy.plan` makes
/// it, `Repository.forget` executes it, `--dry-run` prints it.
public struct ForgetPlan: Sendable, Encodable {
    public struct Decision: Sendable, Encodable, Equatable {
        public var id: String
        public var source: String
        /// The consistency time used for bucketing.
        public var time: Date
        public var start: OplogTime?
        public var end: OplogTime?
        public var keep: Bool
        /// Why it is kept ("last 1", "daily 2026-11-20", "pitr anchor"), empty when removed.
        public var reasons: [String]
    }

    /// Targets the policy promises to keep restorable by point in time.
    public struct PITRWindow: Sendable, Encodable, Equatable {
        public var from: OplogTime
        public var to: OplogTime
    }

    public var policy: String
    public var snapshots: [Decision]
    public var pitrWindow: PITRWindow?
    public var segmentsKept: Int
    public var segmentsRemoved: Int
    public var segmentBytesKept: Int
    public var segmentBytesRemoved: Int
    /// The timeline file the forget writes when segments go (superseding `timelineFilesRead`).
    let newTimeline: TimelineFile?
    /// Every timeline file read (live and superseded): the new file supersedes them.
    let timelineFilesRead: [String]

    public var removedSnapshots: [Decision] { snapshots.filter { !$0.keep } }
    public var keptSnapshots: [Decision] { snapshots.filter(\.keep) }

    private enum CodingKeys: String, CodingKey {
        case policy, snapshots, pitrWindow, segmentsKept, segmentsRemoved, segmentBytesKept, segmentBytesRemoved
    }
}

extension RetentionPolicy {
    /// Decides which snapshots and segments stay (pure).
    ///
    /// Snapshots: each source's snapshots go through the keep rules; with `withinPITR`,
    /// each contiguous oplog run (chain) reaching past the window start `W = now - withinPITR`
    /// keeps the newest snapshot restorable in it whose consistency point is at or before
    /// `max(W, chain start)`, or else its oldest one, so that every second of the window
    /// the oplog covers stays restorable.
    /// Segments: each kept snapshot keeps the segments from its `start` to its `end` in
    /// its chain; the PITR anchors and the newest kept snapshot keep every segment from
    /// their `start` onward, and the newest segment is never removed (the tailer continues
    /// from it). Gaps are always kept. A source none of whose snapshots a rule keeps (a
    /// point-in-time rule where no oplog reaches the window) keeps its newest snapshot.
    public func plan(_ view: TimelineView, now: Date = Date()) -> ForgetPlan {
        let snapshots = view.snapshots
        func consistency(_ r: SnapshotRecord) -> Date { r.end?.date ?? r.time }
        var reasons: [String: [String]] = [:]

        let sources = Dictionary(grouping: snapshots, by: \.record.source)
        for (_, group) in sources {
            let newestFirst = group.sorted { (consistency($0.record), $0.id) > (consistency($1.record), $1.id) }
            for rule in Rule.allCases {
                var left = count(rule)
                var lastBucket: String?
                for s in newestFirst where left > 0 {
                    let bucket = rule == .last ? s.id : Self.bucket(rule, consistency(s.record))
                    guard bucket != lastBucket else { continue }
                    lastBucket = bucket
                    left -= 1
                    reasons[s.id, default: []].append(rule == .last ? "last \(count(rule) - left)" : "\(rule.rawValue) \(bucket)")
                }
            }
        }

        var pitrWindow: ForgetPlan.PITRWindow?
        var openEndFrom: [OplogTime] = []  // keep every segment from these starts onward
        if let within = withinPITR, let newest = view.lastSegment?.last {
            let seconds = Double(within.components.seconds) + Double(within.components.attoseconds) / 1e18
            let windowStart = OplogTime(t: UInt32(clamping: Int64(max(0, now.timeIntervalSince1970 - seconds).rounded(.down))), i: 0)
            if windowStart <= newest { pitrWindow = .init(from: windowStart, to: newest) }
            for (_, group) in sources {
                for chain in view.chains where chain.last >= windowStart {
                    let inChain = group.filter { s in
                        guard let start = s.record.start, let end = s.record.end else { return false }
                        return chain.first <= start && end <= chain.last
                    }.sorted { ($0.record.end!, $0.id) < ($1.record.end!, $1.id) }
                    // A wall-clock second includes all its entries: a snapshot consistent at
                    // W:5 restores the target "second W" (every entry up to W:max).
                    let limit = max(OplogTime(t: windowStart.t, i: .max), chain.first)
                    guard let anchor = inChain.last(where: { $0.record.end! <= limit }) ?? inChain.first else { continue }
                    reasons[anchor.id, default: []].append("pitr anchor")
                    openEndFrom.append(anchor.record.start!)
                }
            }
        }

        // A point-in-time rule alone keeps nothing when no oplog reaches into its window
        // (no tailer, or another source): never leave a source without a snapshot.
        for (_, group) in sources where !group.contains(where: { reasons[$0.id] != nil }) {
            if let newest = group.max(by: { (consistency($0.record), $0.id) < (consistency($1.record), $1.id) }) {
                reasons[newest.id] = ["newest of its source"]
            }
        }

        let decisions = snapshots.map { s in
            ForgetPlan.Decision(id: s.id, source: s.record.source, time: consistency(s.record), start: s.record.start,
                                end: s.record.end, keep: reasons[s.id] != nil, reasons: reasons[s.id] ?? [])
        }.sorted { ($0.time, $0.id) < ($1.time, $1.id) }

        // Segments to keep, by index into view.segments.
        var keep = Array(repeating: false, count: view.segments.count)
        func chainIndex(holding start: OplogTime) -> Int? {
            view.chains.lastIndex { $0.first <= start }
        }
        /// Index of the last segment of `chain` whose first entry is at or before `t`.
        func segment(in chain: TimelineView.Chain, atOrBefore t: OplogTime) -> Int {
            chain.segments.last { view.segments[$0].segment.first <= t } ?? chain.segments.lowerBound
        }
        let kept = decisions.filter(\.keep)
        for d in kept {
            guard let start = d.start, let end = d.end, let c = chainIndex(holding: start), view.chains[c].last >= end else { continue }
            let chain = view.chains[c]
            let from = segment(in: chain, atOrBefore: start)
            let to = chain.segments.first { view.segments[$0].segment.last >= end } ?? chain.segments.upperBound - 1
            for n in from...to { keep[n] = true }
        }
        if let newest = kept.compactMap(\.start).max() { openEndFrom.append(newest) }
        if let from = openEndFrom.min() {
            let first: Int
            if let c = chainIndex(holding: from) {
                first = view.chains[c].last >= from ? segment(in: view.chains[c], atOrBefore: from) : view.chains[c].segments.upperBound
            } else {
                first = 0
            }
            for n in first..<view.segments.count { keep[n] = true }
        }
        if !keep.isEmpty { keep[keep.count - 1] = true }

        let keptSegments = view.segments.indices.filter { keep[$0] }.map { view.segments[$0].segment }
        let removedSegments = view.segments.indices.filter { !keep[$0] }.map { view.segments[$0].segment }
        let filesRead = view.liveFiles + view.supersededFiles
        var newTimeline: TimelineFile?
        if !removedSegments.isEmpty {
            newTimeline = TimelineFile(created: now, source: view.source ?? "forget", segments: keptSegments, gaps: view.gaps,
                                       supersedes: filesRead)
        }
        return ForgetPlan(
            policy: description, snapshots: decisions, pitrWindow: pitrWindow,
            segmentsKept: keptSegments.count, segmentsRemoved: removedSegments.count,
            segmentBytesKept: keptSegments.reduce(0) { $0 + $1.bytes }, segmentBytesRemoved: removedSegments.reduce(0) { $0 + $1.bytes },
            newTimeline: newTimeline, timelineFilesRead: filesRead)
    }

    /// The rules as the command line spells them.
    public var description: String {
        var parts = Rule.allCases.filter { count($0) > 0 }.map { "keep-\($0.rawValue) \(count($0))" }
        if let within = withinPITR {
            let seconds = within.components.seconds
            let unit = [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")].first { seconds % Int64($0.0) == 0 }
            parts.append("keep-within-pitr " + (unit.map { "\(seconds / Int64($0.0))\($0.1)" } ?? "\(seconds)s"))
        }
        return parts.isEmpty ? "(none)" : parts.joined(separator: ", ")
    }
}

/// What `Repository.forget` did.
public struct ForgetResult: Sendable, Encodable {
    public var snapshotsRemoved: Int
    public var segmentsRemoved: Int
    public var timelineFilesRemoved: Int
}

extension Repository {
    /// Executes a forget plan: writes the timeline file carrying the kept segments (it
    /// supersedes every timeline file the plan read), deletes those files, then deletes the
    /// records of the snapshots to remove. Blobs stay until `Pruner` runs.
    ///
    /// Crash-safe at every step: before the new timeline file lands nothing changed; after
    /// it, the superseded files are ignored whether or not they are deleted; a snapshot
    /// record left behind is removed by the next forget. Timeline files written after the
    /// plan (by a concurrent tailer) are not superseded, so their segments stay.
    /// The caller holds an exclusive lock (`LockKind.exclusive`) taken before planning.
    /// - Throws: `RepositoryError` from storage.
    @discardableResult
    public func forget(_ plan: ForgetPlan) throws -> ForgetResult {
        var filesRemoved = 0
        if let file = plan.newTimeline {
            try file.save(to: self)
            for id in plan.timelineFilesRead {
                try deleteFile(kind: .timeline, id: id)
                filesRemoved += 1
            }
        }
        let removed = plan.removedSnapshots
        for d in removed { try deleteFile(kind: .snapshot, id: d.id) }
        logger.info("forgot snapshots", metadata: [
            "snapshots.removed": "\(removed.count)", "segments.removed": "\(plan.segmentsRemoved)",
            "timeline.removed": "\(filesRemoved)",
        ])
        return ForgetResult(snapshotsRemoved: removed.count, segmentsRemoved: plan.segmentsRemoved, timelineFilesRemoved: filesRemoved)
    }
}
