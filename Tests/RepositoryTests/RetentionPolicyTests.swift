import Foundation
import Testing
import TestSupport
@testable import Repository

/// `RetentionPolicy.plan` on in-memory timelines: bucket edges, sources, the PITR window.
@Suite struct RetentionPolicyTests {
    static func record(end: UInt32, start: UInt32? = nil, source: String = "rs0") -> SnapshotRecord {
        let endTime = OplogTime(t: end, i: 1)
        return SnapshotRecord(time: endTime.date, hostname: "h", source: source, kind: "backup",
                              manifest: BlobID(hex: String(format: "%064x", end))!,
                              start: OplogTime(t: start ?? end - 5, i: 1), end: endTime,
                              collections: 1, documents: 1, bytes: 1, addedBytes: 1)
    }

    static func view(_ ends: [UInt32], source: String = "rs0", segments: [TimelineSegment] = []) -> TimelineView {
        let snapshots = ends.map { (id: "s\($0)", record: record(end: $0, source: source)) }
        let file = TimelineFile(created: Date(), source: "rs0", segments: segments)
        return TimelineView(files: segments.isEmpty ? [] : [("f", file)], snapshots: snapshots)
    }

    /// Contiguous segments of `seconds` each from `from` through `to`.
    static func chain(from: UInt32, to: UInt32, seconds: UInt32 = 10, linkedTo previous: OplogTime? = nil) -> [TimelineSegment] {
        var out: [TimelineSegment] = []
        var previous = previous
        for t in stride(from: from, through: to, by: Int(seconds)) {
            let last = OplogTime(t: t + seconds - 1, i: 1)
            out.append(TimelineSegment(blob: BlobID(hex: String(format: "%064x", 0xABC0_0000 + Int(t)))!, first: OplogTime(t: t, i: 1),
                                       last: last, count: 1, bytes: 100, previous: previous))
            previous = last
        }
        return out
    }

    static func kept(_ plan: ForgetPlan) -> [String] { plan.keptSnapshots.map(\.id) }

    @Test func keepLastKeepsTheNewest() {
        let plan = RetentionPolicy(last: 2).plan(Self.view([100, 200, 300, 400, 500]))
        #expect(Self.kept(plan) == ["s400", "s500"])
        #expect(plan.snapshots.first { $0.id == "s500" }?.reasons == ["last 1"])
        #expect(plan.removedSnapshots.map(\.id) == ["s100", "s200", "s300"])
    }

    @Test func dailyBucketsEndAtUTCMidnight() {
        // 2026-11-20 23:59:59, 11-21 00:00:00, 11-21 12:00:00, 11-22 00:00:01
        let ends: [UInt32] = [1_795_219_199, 1_795_219_200, 1_795_262_400, 1_795_305_601]
        #expect(Self.kept(RetentionPolicy(daily: 2).plan(Self.view(ends))) == ["s1795262400", "s1795305601"])
        let three = RetentionPolicy(daily: 3).plan(Self.view(ends))
        #expect(Self.kept(three) == ["s1795219199", "s1795262400", "s1795305601"])
        #expect(three.snapshots.first { $0.id == "s1795219199" }?.reasons == ["daily 2026-11-20"])
    }

    @Test func hourlyWeeklyMonthlyYearlyEdges() {
        // 10:59:59 and 11:00:00 fall in different hours.
        #expect(Self.kept(RetentionPolicy(hourly: 2).plan(Self.view([1_795_345_199, 1_795_345_200]))).count == 2)
        // Sunday 2026-11-22 23:59:59 (ISO week 47) and Monday 00:00:00 (week 48).
        let weekly = RetentionPolicy(weekly: 5).plan(Self.view([1_795_391_999, 1_795_392_000]))
        #expect(weekly.snapshots.map(\.reasons) == [["weekly 2026-W47"], ["weekly 2026-W48"]])
        // 2025-12-31 and 2026-01-01: two years and two months, but one ISO week (2026-W01).
        let newYear: [UInt32] = [1_767_225_599, 1_767_225_600]
        #expect(Self.kept(RetentionPolicy(yearly: 5).plan(Self.view(newYear))).count == 2)
        #expect(Self.kept(RetentionPolicy(monthly: 5).plan(Self.view(newYear))).count == 2)
        #expect(Self.kept(RetentionPolicy(weekly: 5).plan(Self.view(newYear))) == ["s1767225600"])
        #expect(Self.kept(RetentionPolicy(monthly: 1).plan(Self.view(newYear))) == ["s1767225600"])
    }

    @Test func rulesApplyPerSource() {
        let a = [100, 200, 300].map { (id: "a\($0)", record: Self.record(end: UInt32($0), source: "rs-a")) }
        let b = [150, 250].map { (id: "b\($0)", record: Self.record(end: UInt32($0), source: "rs-b")) }
        let plan = RetentionPolicy(last: 1).plan(TimelineView(files: [], snapshots: a + b))
        #expect(Set(Self.kept(plan)) == ["a300", "b250"])
    }

    @Test func aPITRRuleWithoutOplogStillKeepsEachSourcesNewestSnapshot() {
        let a = [100, 200].map { (id: "a\($0)", record: Self.record(end: UInt32($0), source: "rs-a")) }
        let b = [150].map { (id: "b\($0)", record: Self.record(end: UInt32($0), source: "dump")) }
        let plan = RetentionPolicy(withinPITR: .seconds(3600)).plan(TimelineView(files: [], snapshots: a + b),
                                                                   now: Date(timeIntervalSince1970: 10_000))
        #expect(plan.pitrWindow == nil)
        #expect(Set(Self.kept(plan)) == ["a200", "b150"])
        #expect(plan.snapshots.first { $0.id == "a200" }?.reasons == ["newest of its source"])
    }

    @Test func emptyPolicyIsEmpty() {
        #expect(RetentionPolicy().isEmpty)
        #expect(!RetentionPolicy(withinPITR: .seconds(1)).isEmpty)
    }

    /// Every second of [now - within, newest entry] must be restorable after the plan.
    static func expectWindowRestorable(_ plan: ForgetPlan, _ view: TimelineView, from: UInt32, to: UInt32,
                                       sourceLocation: SourceLocation = #_sourceLocation) {
        let kept = view.snapshots.filter { s in plan.keptSnapshots.contains { $0.id == s.id } }
        let after = TimelineView(files: plan.newTimeline.map { [("new", $0)] } ?? [("f", TimelineFile(source: "rs0", segments: view.segments.map(\.segment)))],
                                 snapshots: kept)
        let missing = (from...to).filter { after.window(containing: OplogTime(t: $0, i: 1)) == nil }
        #expect(missing.isEmpty, "not restorable: \(missing.prefix(5))… of \(from)...\(to)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        // (snapshot consistency points, expected anchor): window start W = 1000.
        ([990, 1000, 1010], "s1000"),  // exactly at W: that one
        ([990, 999, 1010], "s999"),  // newest before W
        ([1010, 1020], "s1010"),  // none at or before W: the oldest after it
    ])
    func pitrAnchor(ends: [UInt32], anchor: String) {
        let segments = Self.chain(from: 900, to: 1200)
        let view = Self.view(ends, segments: segments)
        let plan = RetentionPolicy(withinPITR: .seconds(200)).plan(view, now: Date(timeIntervalSince1970: 1200))
        #expect(Self.kept(plan) == [anchor])
        #expect(plan.snapshots.first { $0.id == anchor }?.reasons == ["pitr anchor"])
        #expect(plan.pitrWindow == .init(from: OplogTime(t: 1000, i: 0), to: OplogTime(t: 1209, i: 1)))
        // Segments before the anchor's start go; every one from it onward stays.
        let start = Self.record(end: UInt32(anchor.dropFirst())!).start!
        let first = segments.lastIndex { $0.first <= start }!
        #expect(plan.segmentsRemoved == first)
        #expect(plan.newTimeline?.segments == Array(segments[first...]))
        Self.expectWindowRestorable(plan, view, from: max(1000, UInt32(anchor.dropFirst())!), to: 1209)
    }

    @Test func keptSnapshotsKeepTheirOwnSegmentsAndTheOpenEnd() {
        let segments = Self.chain(from: 0, to: 5000, seconds: 100)
        let view = Self.view([1000, 2000, 3000, 4000], segments: segments)
        let plan = RetentionPolicy(last: 1, daily: 0).plan(view, now: Date(timeIntervalSince1970: 5100))
        #expect(Self.kept(plan) == ["s4000"])
        // From the segment holding start 3995 onward.
        #expect(plan.newTimeline?.segments.first?.first == OplogTime(t: 3900, i: 1))
        #expect(plan.newTimeline?.segments.last == segments.last)

        // An older kept snapshot keeps exactly the segments from its start to its end.
        let two = RetentionPolicy(last: 1).plan(Self.view([1000, 2000, 3000, 4000], segments: segments).keeping("s2000"),
                                               now: Date(timeIntervalSince1970: 5100))
        let firsts = two.newTimeline!.segments.map(\.first.t)
        // Start 1995 lies in the segment from 1900, end 2000:1 in the one from 2000.
        #expect(firsts.contains(1900) && firsts.contains(2000) && !firsts.contains(1800) && !firsts.contains(2100) && !firsts.contains(3800))
        let after = TimelineView(files: [("new", two.newTimeline!)], snapshots: view.snapshots.filter { $0.id == "s2000" || $0.id == "s4000" })
        #expect(after.window(containing: OplogTime(t: 2000, i: 1)) != nil)
        #expect(after.window(containing: OplogTime(t: 2150, i: 1)) == nil)  // no point in time promised there
        #expect(after.window(containing: OplogTime(t: 4500, i: 1)) != nil)
    }

    @Test func pitrWindowAcrossAGapKeepsAnAnchorPerChain() {
        let before = Self.chain(from: 0, to: 990)
        let after = Self.chain(from: 2000, to: 3000)  // a new chain: the oplog rolled over in between
        let view = Self.view([500, 2100, 2900], segments: before + after)
        let plan = RetentionPolicy(withinPITR: .seconds(2500)).plan(view, now: Date(timeIntervalSince1970: 3009))
        #expect(Self.kept(plan) == ["s500", "s2100"])
        Self.expectWindowRestorable(plan, view, from: 509, to: 999)
        Self.expectWindowRestorable(plan, view, from: 2100, to: 3009)
    }
}

extension TimelineView {
    /// The same view with snapshot `id` renamed so a keep-last rule keeps it too (tests).
    fileprivate func keeping(_ id: String) -> TimelineView {
        let files = [("f", TimelineFile(source: "rs0", segments: segments.map(\.segment)))]
        var snapshots = self.snapshots
        if let n = snapshots.firstIndex(where: { $0.id == id }) {
            snapshots[n].record.source = "other"
        }
        return TimelineView(files: files, snapshots: snapshots)
    }
}
