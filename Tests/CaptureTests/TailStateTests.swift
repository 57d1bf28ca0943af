import Foundation
import Testing
import TestSupport
@testable import Capture
@testable import Repository

/// The tailer's continuity and retry rules, without a server.
@Suite("TailState")
struct TailStateTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    func t(_ s: UInt32, _ i: UInt32 = 1) -> OplogTime { OplogTime(t: s, i: i) }

    @Test("no history: open at the newest entry (or --from) and start a new chain")
    func freshStart() {
        var state = TailState()
        #expect(state.handle(.start(anchor: nil, from: nil)) == [.open(from: nil)])
        #expect(state.handle(.firstEntry(ts: t(10), bytes: [1], oldest: t(1), now: now)) == [.acceptEntry(newChain: true)])
        var withFrom = TailState()
        #expect(withFrom.handle(.start(anchor: nil, from: t(5))) == [.open(from: t(5))])
    }

    @Test("resume: the first entry equal to the anchor is skipped; the chain continues")
    func provenResume() {
        var state = TailState()
        let anchor = TailState.Anchor(ts: t(10), bytes: [1, 2, 3])
        #expect(state.handle(.start(anchor: anchor, from: t(1))) == [.open(from: t(10))], "the anchor wins over --from")
        #expect(state.handle(.firstEntry(ts: t(10), bytes: [1, 2, 3], oldest: t(1), now: now)) == [.skipEntry])
    }

    @Test("the anchor's ts with other bytes is a rollback gap")
    func sameTsOtherBytes() throws {
        var state = TailState()
        _ = state.handle(.start(anchor: .init(ts: t(10), bytes: [1]), from: nil))
        let actions = state.handle(.firstEntry(ts: t(10), bytes: [2], oldest: t(1), now: now))
        guard case .recordGap(let gap) = try #require(actions.first) else { Issue.record("\(actions)"); return }
        #expect(gap.reason == .rollback && gap.after == t(10))
        #expect(actions.last == .acceptEntry(newChain: true))
        #expect(state.anchor == nil)
    }

    @Test("a later first entry: rolled over when the oplog starts after the anchor, rollback when it does not")
    func laterFirstEntry() throws {
        var rolled = TailState()
        _ = rolled.handle(.start(anchor: .init(ts: t(10), bytes: [1]), from: nil))
        let a = rolled.handle(.firstEntry(ts: t(20), bytes: [9], oldest: t(20), now: now))
        guard case .recordGap(let gap) = try #require(a.first) else { Issue.record("\(a)"); return }
        #expect(gap == TimelineGap(after: t(10), before: t(20), detected: now, reason: .rolledOver, message: gap.message))
        #expect(gap.message.contains("new snapshot"))

        var rolledBack = TailState()
        _ = rolledBack.handle(.start(anchor: .init(ts: t(10), bytes: [1]), from: nil))
        let b = rolledBack.handle(.firstEntry(ts: t(20), bytes: [9], oldest: t(2), now: now))
        guard case .recordGap(let gap2) = try #require(b.first) else { Issue.record("\(b)"); return }
        #expect(gap2.reason == .rollback)
    }

    @Test("position lost before any entry: gap, then open at the oldest entry")
    func positionLost() throws {
        var state = TailState()
        _ = state.handle(.start(anchor: .init(ts: t(10), bytes: [1]), from: nil))
        let actions = state.handle(.positionLost(oldest: t(30), now: now))
        #expect(actions.count == 2)
        #expect(actions.last == .open(from: t(30)))
        #expect(state.handle(.firstEntry(ts: t(30), bytes: [5], oldest: t(30), now: now)) == [.acceptEntry(newChain: true)])
    }

    @Test("transient failures reconnect from the anchor with exponential backoff, reset by progress; fatal ones stop")
    func retries() {
        var state = TailState(minimumDelay: .milliseconds(100), maximumDelay: .milliseconds(500))
        _ = state.handle(.start(anchor: nil, from: nil))
        state.setAnchor(.init(ts: t(7), bytes: [7]))
        let delays: [[TailState.Action]] = (0..<5).map { _ in state.handle(.failed(.transient("dropped"))) }
        #expect(delays == [100, 200, 400, 500, 500].map { [.reconnect(after: .milliseconds($0), from: t(7))] })
        _ = state.handle(.progressed)
        #expect(state.handle(.failed(.transient("x"))) == [.reconnect(after: .milliseconds(100), from: t(7))])
        #expect(state.handle(.failed(.fatal("bad password"))) == [.fail("bad password")])
    }
}

/// Timeline files merged into restorable windows, and compaction plans.
@Suite("Timeline")
struct TimelineTests {
    func t(_ s: UInt32, _ i: UInt32 = 0) -> OplogTime { OplogTime(t: s, i: i) }
    func blob(_ n: Int) -> BlobID { BlobID(UInt64(n), 0, 0, 0) }
    func segment(_ n: Int, _ first: UInt32, _ last: UInt32, previous: UInt32?, compacted: Bool = false) -> TimelineSegment {
        TimelineSegment(blob: blob(n), first: t(first), last: t(last), count: Int(last - first + 1), bytes: 100,
                        previous: previous.map { t($0) }, compacted: compacted)
    }
    func snapshot(_ id: String, start: UInt32, end: UInt32) -> (id: String, record: SnapshotRecord) {
        (id, SnapshotRecord(time: Date(timeIntervalSince1970: TimeInterval(end)), hostname: "h", source: "s", kind: "backup",
                            manifest: blob(0), start: t(start), end: t(end), collections: 0, documents: 0, bytes: 0, addedBytes: 0))
    }

    @Test("windows run from a snapshot's end to the end of the chain holding its start; gaps break chains")
    func windows() {
        let files: [(id: String, file: TimelineFile)] = [
            ("a", TimelineFile(source: "rs0", segments: [segment(1, 100, 109, previous: nil), segment(2, 110, 119, previous: 109)])),
            ("b", TimelineFile(source: "rs0", segments: [segment(3, 120, 129, previous: 119)])),
            ("c", TimelineFile(source: "rs0", segments: [], gaps: [TimelineGap(after: t(129), before: t(200), detected: Date(), reason: .rolledOver, message: "m")])),
            ("d", TimelineFile(source: "rs0", segments: [segment(4, 200, 209, previous: nil), segment(5, 210, 219, previous: 209)])),
        ]
        let view = TimelineView(files: files, snapshots: [
            snapshot("s1", start: 105, end: 107), snapshot("s2", start: 112, end: 115),
            snapshot("s3", start: 150, end: 160),  // in the gap: only its own point
            snapshot("s4", start: 205, end: 206),
        ])
        #expect(view.chains.map { [$0.first, $0.last] } == [[t(100), t(129)], [t(200), t(219)]])
        #expect(view.windows == [
            RestorableWindow(from: t(107), to: t(129), snapshots: ["s1", "s2"]),
            RestorableWindow(from: t(160), to: t(160), snapshots: ["s3"]),
            RestorableWindow(from: t(206), to: t(219), snapshots: ["s4"]),
        ])
        #expect(view.window(containing: t(129)) != nil)
        #expect(view.window(containing: t(130)) == nil, "a target in the gap is not restorable")
        #expect(view.window(containing: t(106)) == nil, "before the first consistency point")
    }

    @Test("superseded files are ignored; a compacted segment hides the small ones it merged")
    func superseding() {
        let small: [(id: String, file: TimelineFile)] = [
            ("a", TimelineFile(source: "s", segments: [segment(1, 100, 109, previous: nil)])),
            ("b", TimelineFile(source: "s", segments: [segment(2, 110, 119, previous: 109)])),
        ]
        let rollup = ("c", TimelineFile(source: "s", segments: [segment(9, 100, 119, previous: nil, compacted: true)], supersedes: ["a", "b"]))
        let view = TimelineView(files: small + [rollup], snapshots: [])
        #expect(view.liveFiles == ["c"] && view.supersededFiles == ["a", "b"])
        #expect(view.segments.map(\.segment.blob) == [blob(9)])
        // Both kept by an interrupted compaction that wrote neither supersedes list: the compacted one wins.
        let both = TimelineView(files: small + [("c", TimelineFile(source: "s", segments: [segment(9, 100, 119, previous: nil, compacted: true)]))], snapshots: [])
        #expect(both.segments.map(\.segment.blob) == [blob(9)])
    }

    @Test("compaction plans one group per closed window, within the size limit, not the current window")
    func plan() {
        var segments: [TimelineSegment] = []
        var previous: UInt32?
        for s in UInt32(0)..<35 {  // one segment per second, windows of 10 s
            segments.append(segment(Int(s) + 1, 1000 + s, 1000 + s, previous: previous))
            previous = 1000 + s
        }
        let view = TimelineView(files: [("a", TimelineFile(source: "s", segments: segments))], snapshots: [])
        let groups = SegmentCompactor.plan(view, windowSeconds: 10, blobLimit: 1 << 20)
        #expect(groups.map(\.count) == [10, 10, 10], "1030...1034 is the current window")
        let limited = SegmentCompactor.plan(view, windowSeconds: 10, blobLimit: 450)
        #expect(limited.map(\.count) == [4, 4, 2, 4, 4, 2, 4, 4, 2])
    }

    /// The merge itself; its speed is measured by Benchmarks/plan.sh, not here.
    @Test("30 days of compacted history with two-hourly snapshots form one window")
    func thirtyDays() {
        var segments: [TimelineSegment] = []
        var previous: UInt32?
        let start: UInt32 = 1_700_000_000
        for w in UInt32(0)..<(30 * 24 * 6) {
            let first = start + w * 600
            segments.append(segment(Int(w) + 1, first, first + 599, previous: previous, compacted: true))
            previous = first + 599
        }
        let snapshots = (UInt32(0)..<(30 * 12)).map { snapshot("s\($0)", start: start + $0 * 7200 + 10, end: start + $0 * 7200 + 60) }
        let file = TimelineFile(source: "s", segments: segments)
        let view = TimelineView(files: [("a", file)], snapshots: snapshots)
        #expect(view.windows.count == 1)
        #expect(view.windows.first?.snapshots.count == 360)
    }
}
