import Foundation
import Repository
import Testing
import TestSupport
@testable import Recovery

/// Restore planning over 30 days of history: 360 two-hourly snapshots and a compacted
/// oplog (one segment per ten minutes), in a real repository on disk. A benchmark, run
/// by Benchmarks/plan.sh with ANCRE_BENCH=1 in a release build; skipped otherwise.
@Suite("planning benchmark", .enabled(if: ProcessInfo.processInfo.environment["ANCRE_BENCH"] == "1"))
struct PlanningBenchmarkTests {
    @Test func thirtyDays() throws {
        let directory = Fixtures.temporaryDirectory("ancre-plan")
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try LocalBackend(path: directory.path)
        let repository = try Repository.create(storage: storage, passphrase: "bench", kdf: .weakForTesting)
        let start: UInt32 = 1_790_000_000
        let blob = repository.blobID(for: [1, 2, 3])
        var segments: [TimelineSegment] = []
        for w in UInt32(0)..<(30 * 24 * 6) {
            let first = start + w * 600
            segments.append(TimelineSegment(blob: blob, first: OplogTime(t: first, i: 1), last: OplogTime(t: first + 599, i: 9),
                                            count: 30_000, bytes: 9 << 20, previous: w == 0 ? nil : OplogTime(t: first - 1, i: 9),
                                            compacted: true))
        }
        try TimelineFile(source: "rs0", segments: segments).save(to: repository)
        let catalog = SnapshotCatalog(repository: repository)
        for s in UInt32(0)..<360 {
            let at = start + s * 7200 + 30
            _ = try catalog.save(SnapshotRecord(
                time: OplogTime(t: at + 40, i: 0).date, hostname: "h", source: "rs0", kind: "backup", manifest: blob,
                start: OplogTime(t: at, i: 1), end: OplogTime(t: at + 40, i: 1), collections: 40, documents: 2_000_000,
                bytes: 3 << 30, addedBytes: 40 << 20))
        }

        var samples: [Duration] = []
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let target = OplogTime(t: start + UInt32.random(in: 100..<(30 * 86_400 - 100), using: &generator), i: 5)
            let clock = ContinuousClock()
            let elapsed = try clock.measure {
                // What `ancre restore --dry-run` does after unlocking: read the timeline and
                // every snapshot record, then plan.
                let view = try TimelineView.load(repository)
                let plan = try RestorePlanner(view: view).plan(.timestamp(target))
                #expect(plan.segments.count >= 1)
            }
            samples.append(elapsed)
        }
        samples.sort()
        let median = samples[samples.count / 2], worst = samples.last!
        print("BENCH plan 30 days (360 snapshots, \(segments.count) segments): median \(median), max \(worst)")
    }
}
