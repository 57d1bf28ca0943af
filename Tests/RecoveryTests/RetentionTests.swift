import Foundation
import Repository
import Testing
import TestSupport
@testable import Recovery

/// forget + prune, then the restore planner: every restore point the policy promised still
/// gets a plan whose blobs all read back.
@Suite struct RetentionTests {
    @Test func everyPromisedRestorePointStillPlans() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage, packTargetSize: 16 << 10)
        var history = SyntheticHistory(repository: repository)
        let o = history.origin
        try history.appendSegments(until: o + 300, seconds: 30)
        for k in 0..<8 {
            try history.snapshot(at: o + 300 + UInt32(k) * 900)
            try history.appendSegments(until: o + 300 + UInt32(k + 1) * 900, seconds: 30)
        }
        let now = history.segments.last!.last.date
        let policy = RetentionPolicy(last: 1, hourly: 2, withinPITR: .seconds(2000))

        let lock = try repository.lock(kind: .exclusive)
        let plan = policy.plan(try TimelineView.load(repository), now: now)
        try repository.forget(plan)
        let pruner = Pruner(repository: repository)
        let result = try pruner.execute(try pruner.plan(lock: lock))
        try lock.release()
        #expect(plan.removedSnapshots.count >= 3 && plan.segmentsRemoved > 0 && result.packsDeleted > 0)

        let reopened = try TestRepository.open(storage: storage)
        let view = try TimelineView.load(reopened)
        let planner = RestorePlanner(view: view)
        var targets: [RestoreTarget] = [.latest]
        targets += plan.keptSnapshots.map { .timestamp($0.end!) }
        let window = try #require(plan.pitrWindow)
        targets += stride(from: window.from.t, through: window.to.t, by: 13).map { .time(Date(timeIntervalSince1970: TimeInterval($0))) }
        targets.append(.timestamp(window.to))
        let catalog = SnapshotCatalog(repository: reopened)
        var read = Set<BlobID>()
        for target in targets {
            let restore = try planner.plan(target)
            #expect(plan.keptSnapshots.contains { $0.id == restore.snapshotID })
            var blobs = try catalog.blobs(of: restore.snapshot)
            blobs.formUnion(restore.segments.map(\.blob))
            for blob in blobs.subtracting(read) { _ = try reopened.loadBlob(blob) }
            read.formUnion(blobs)
        }
        // What forget dropped is no longer restorable: a point before the window that no kept
        // snapshot's consistency point covers.
        let dropped = try #require(plan.removedSnapshots.first)
        #expect(throws: RestoreError.self) { try planner.plan(.timestamp(OplogTime(t: dropped.end!.t + 60, i: 1))) }

        let report = try IntegrityCheck(repository: reopened).run(readData: true)
        #expect(report.problems.isEmpty && report.unreferencedPacks.isEmpty, "\(report.problems.map(\.message))")
    }
}
