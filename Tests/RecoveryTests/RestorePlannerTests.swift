import Foundation
import Repository
import Testing
@testable import Recovery

/// Target resolution and snapshot choice, on timelines built in memory.
struct RestorePlannerTests {
    static func t(_ s: UInt32, _ i: UInt32 = 0) -> OplogTime { OplogTime(t: s, i: i) }
    static let blob = BlobID(bytes: [UInt8](repeating: 1, count: 32))

    static func snapshot(_ id: String, start: OplogTime, end: OplogTime) -> (id: String, record: SnapshotRecord) {
        (id, SnapshotRecord(time: end.date, hostname: "h", source: "s", kind: "backup", manifest: blob, start: start, end: end,
                            collections: 1, documents: 10, bytes: 3000, addedBytes: 100))
    }

    /// Segments of ten seconds each, chained from `from` to `to`.
    static func chain(_ from: UInt32, _ to: UInt32) -> [TimelineSegment] {
        stride(from: from, to: to, by: 10).map { s in
            TimelineSegment(blob: blob, first: t(s), last: t(s + 9, 5), count: 100, bytes: 10_000,
                            previous: s == from ? nil : t(s - 1, 5))
        }
    }

    /// Two runs of oplog, 100..200 and 300..400, with a gap between; snapshots at 105,
    /// 150 (with an entry sharing its second) and 310.
    static let view: TimelineView = {
        let file = TimelineFile(
            source: "rs0", segments: chain(100, 200) + chain(300, 400),
            gaps: [TimelineGap(after: t(199, 5), before: t(300), detected: Date(), reason: .rolledOver, message: "oplog rolled over")])
        return TimelineView(
            files: [("f1", file)],
            snapshots: [snapshot("s1", start: t(100), end: t(105)), snapshot("s2", start: t(140), end: t(150, 2)),
                        snapshot("s3", start: t(300), end: t(310))])
    }()

    @Test func choosesTheNewestSnapshotAtOrBeforeTheTarget() throws {
        let planner = RestorePlanner(view: Self.view)
        #expect(try planner.plan(.timestamp(Self.t(150, 2))).snapshotID == "s2")
        #expect(try planner.plan(.timestamp(Self.t(150, 1))).snapshotID == "s1")
        #expect(try planner.plan(.timestamp(Self.t(105))).snapshotID == "s1")
        #expect(try planner.plan(.timestamp(Self.t(399, 5))).snapshotID == "s3")
    }

    /// A time target includes every entry of its second (the PBM bug skipped them).
    @Test func aTimeIncludesItsWholeSecond() throws {
        let plan = try RestorePlanner(view: Self.view).plan(.time(Date(timeIntervalSince1970: 150.4)))
        #expect(plan.snapshotID == "s2", "the snapshot consistent at 150:2 is inside second 150")
        #expect(plan.limit == ReplayLimit(time: Self.t(150, .max), inclusive: true))
        #expect(plan.limit!.admits(Self.t(150, 7)))
        #expect(!plan.limit!.admits(Self.t(151, 0)))
    }

    /// `--before` excludes the entry itself, so a snapshot consistent at it cannot serve.
    @Test func beforeExcludesTheEntry() throws {
        let plan = try RestorePlanner(view: Self.view).plan(.before(Self.t(150, 2)))
        #expect(plan.snapshotID == "s1")
        #expect(plan.limit!.admits(Self.t(150, 1)) && !plan.limit!.admits(Self.t(150, 2)))
        #expect(plan.segments.first!.first <= Self.t(100) && plan.segments.last!.first <= Self.t(150, 1))
    }

    @Test func segmentsCoverFromTheSnapshotStartToTheTarget() throws {
        let plan = try RestorePlanner(view: Self.view).plan(.timestamp(Self.t(175)))
        #expect(plan.snapshotID == "s2")
        #expect(plan.segments.map(\.first) == [Self.t(140), Self.t(150), Self.t(160), Self.t(170)])
        #expect(plan.entriesToReplay == 400)
    }

    @Test func aTargetInAGapNamesTheNearestRestorableTimes() {
        #expect {
            try RestorePlanner(view: Self.view).plan(.timestamp(Self.t(250)))
        } throws: { error in
            let e = error as! RestoreError
            return e.code == .notRestorable && e.message.contains("gap") && e.message.contains("ts:199:5")
                && e.message.contains("ts:310:0")
        }
    }

    @Test func outsideTheWindow() {
        #expect(throws: RestoreError.self) { try RestorePlanner(view: Self.view).plan(.timestamp(Self.t(50))) }
        #expect {
            try RestorePlanner(view: Self.view).plan(.timestamp(Self.t(500)))
        } throws: { ($0 as! RestoreError).message.contains("after the newest restorable moment") }
    }

    @Test func latestIsTheEndOfTheNewestWindow() throws {
        let plan = try RestorePlanner(view: Self.view).plan(.latest)
        #expect(plan.snapshotID == "s3" && plan.limit?.time == Self.t(399, 5))
    }

    @Test(arguments: ["latest", "ts:12:3", "2026-11-22T09:30:00Z", "2026-11-22T09:30:00.250+01:00"])
    func targetsParse(text: String) throws {
        _ = try RestoreTarget(parsing: text)
    }

    @Test func badTargetsAreRefused() {
        #expect(throws: RestoreError.self) { try RestoreTarget(parsing: "yesterday") }
        #expect(throws: RestoreError.self) { try RestoreTarget(before: "2026-11-22T09:30:00Z") }
    }
}
