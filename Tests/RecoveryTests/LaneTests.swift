import BSON
import Foundation
import Testing
@testable import Recovery

/// The appliers' queues without a server: batches stop at barriers, a lane does not
/// linger while the target would idle, a barrier's command runs once, after every lane.
@Suite struct LaneTests {
    static func insert(_ n: Int) throws -> ReplayOperation {
        let ns = Namespace("db.c")!
        let raw = Document(["op": .string("i"), "ns": .string("db.c"), "o": .document(Document(["_id": .int32(Int32(n))]))])
        return try ReplayOperation(raw, kind: "i", source: ns, target: ns, ts: Timestamp(seconds: 1, increment: UInt32(n)),
                                   record: n, mapping: .identity, mode: .applyOps)
    }

    static func ids(_ work: LaneWork?) -> [Int]? {
        guard case .batch(let batch) = work else { return nil }
        return batch.map { Int($0.id.int64Value ?? -1) }
    }

    @Test func batchesStopAtBarriersWithoutLingering() throws {
        let flight = LaneFlight()
        let lane = Lane(capacity: 64, batchEntries: 1000, batchBytes: 1 << 20, linger: .seconds(30), flight: flight)
        flight.change(by: 1)  // another applier in flight: without a barrier, this lane would linger
        let barrier = ReplayBarrier(parties: 1) {}
        for n in 1...3 { lane.push(try Self.insert(n)) }
        lane.push(barrier)
        for n in 4...5 { lane.push(try Self.insert(n)) }
        let started = ContinuousClock.now
        #expect(Self.ids(lane.take()) == [1, 2, 3])
        lane.done()
        guard case .barrier(let taken) = lane.take() else { Issue.record("expected the barrier"); return }
        #expect(taken === barrier)
        lane.done()
        // The other applier goes idle: the target would wait, so the rest goes at once.
        flight.change(by: -1)
        #expect(Self.ids(lane.take()) == [4, 5])
        lane.done()
        #expect(ContinuousClock.now - started < .seconds(5))
        lane.close()
        #expect(lane.take() == nil)
    }

    @Test func lingersWhileAnotherApplierIsBusy() throws {
        let flight = LaneFlight()
        let lane = Lane(capacity: 64, batchEntries: 1000, batchBytes: 1 << 20, linger: .milliseconds(300), flight: flight)
        flight.change(by: 1)
        lane.push(try Self.insert(1))
        let started = ContinuousClock.now
        lane.push(try Self.insert(2))
        #expect(Self.ids(lane.take()) == [1, 2])
        #expect(ContinuousClock.now - started >= .milliseconds(250))
        lane.done()
        flight.change(by: -1)
        lane.close()
    }

    @Test func barrierRunsOnceAfterEveryParty() {
        let arrived = NSLock()
        nonisolated(unsafe) var count = 0
        nonisolated(unsafe) var seenByAction = -1
        nonisolated(unsafe) var runs = 0
        let barrier = ReplayBarrier(parties: 3) {
            arrived.withLock { seenByAction = count; runs += 1 }
        }
        let group = DispatchGroup()
        for _ in 0..<3 {
            group.enter()
            Thread {
                arrived.withLock { count += 1 }
                barrier.arrive()
                // Every party returns only after the action ran.
                arrived.withLock { #expect(runs == 1) }
                group.leave()
            }.start()
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(seenByAction == 3)
        #expect(runs == 1)
    }
}
