import BSON
import Foundation

/// Documents read from one `_id` range, in order, with their keys.
struct DocumentBatch: Sendable {
    var documents: [(key: BSONKey, document: Document)] = []
    var bytes = 0
}

/// How reading a range ended.
enum RangeEnd: Sendable {
    /// Every document of the range was read.
    case complete
    /// The collection was dropped (or dropped and recreated, or renamed) mid-read:
    /// the documents before that point were delivered; the oplog brings the rest.
    case dropped
    /// The consumer no longer wants the range.
    case cancelled
}

/// A bounded hand-off of batches from a range reader to the collection's tree writer.
///
/// Thread-safe: one producer, one consumer. `put` blocks while `capacityBytes` are
/// buffered, which bounds memory; `cancel` releases a blocked producer.
final class RangeBuffer: @unchecked Sendable {
    // @unchecked: every field is guarded by `condition`.
    private let condition = NSCondition()
    private var batches: [DocumentBatch] = []
    private var buffered = 0
    private var end: Result<RangeEnd, any Error>?
    private var cancelled = false
    private let capacityBytes: Int

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    /// Queues a batch; false when the consumer cancelled (stop reading).
    func put(_ batch: DocumentBatch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while buffered >= capacityBytes && !cancelled { condition.wait() }
        if cancelled { return false }
        batches.append(batch)
        buffered += batch.bytes
        condition.broadcast()
        return true
    }

    /// Records how the range ended; the consumer sees it after the last batch.
    func finish(_ result: Result<RangeEnd, any Error>) {
        condition.lock()
        end = result
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch, or nil at the end with how it ended.
    /// - Throws: the reader's error, once the batches before it were taken.
    func take() throws -> DocumentBatch? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && end == nil { condition.wait() }
        if !batches.isEmpty {
            let batch = batches.removeFirst()
            buffered -= batch.bytes
            condition.broadcast()
            return batch
        }
        _ = try end!.get()
        return nil
    }

    /// How the range ended, valid once `take()` returned nil.
    var ending: RangeEnd {
        condition.lock()
        defer { condition.unlock() }
        return (try? end?.get()) ?? .cancelled
    }

    func cancel() {
        condition.lock()
        cancelled = true
        batches = []
        buffered = 0
        condition.broadcast()
        condition.unlock()
    }
}

/// A fixed set of threads running jobs in the order they were submitted.
///
/// libmongoc calls block, so range reads run on threads of their own, bounded in
/// number, never on Swift's cooperative pool. FIFO order matters: a collection's
/// ranges are submitted in order when its writer starts, so the oldest unfinished
/// job always runs and its consumer can drain it (no deadlock on full buffers).
final class ReaderPool: @unchecked Sendable {
    // @unchecked: `jobs` and `closed` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var closed = false
    private let group = DispatchGroup()

    init(threads: Int, name: String) {
        for i in 0..<max(1, threads) {
            group.enter()
            let thread = Thread { [self] in
                self.work()
                self.group.leave()
            }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads finish the queued jobs and end; waits for them.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        group.wait()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty && !closed { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
