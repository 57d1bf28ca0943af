import Foundation
import Synchronization

/// A bounded queue of blob-storing work run by a fixed set of worker threads.
///
/// Compression and encryption are CPU-bound and block, so they run on threads of
/// their own (one per core by default), never on Swift's cooperative pool. `submit`
/// blocks while `capacity` items wait, which bounds memory. The first error stops
/// the queue: later `submit` and `wait` calls throw it.
final class StoreQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [() throws -> Void] = []
    private var running = 0
    private var failure: (any Error)?
    private var closed = false
    private let capacity: Int
    private var threads: [Thread] = []

    init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, capacity: Int? = nil) {
        self.capacity = capacity ?? max(2, workers * 2)
        for i in 0..<max(1, workers) {
            // Strong: a thread that starts after the last other reference is gone must still find its queue;
            // the workers end (and release it) when `close()` is called, as `SnapshotWriter.deinit` does.
            let thread = Thread { [self] in self.work() }
            thread.name = "ancre-store-\(i)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
    }

    deinit {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Queues `job`, waiting while the queue is full.
    /// - Throws: the first error a job threw.
    func submit(_ job: @escaping () throws -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && failure == nil { condition.wait() }
        if let failure { throw failure }
        items.append(job)
        condition.broadcast()
    }

    /// Waits until every queued job has run.
    /// - Throws: the first error a job threw.
    func wait() throws {
        condition.lock()
        defer { condition.unlock() }
        while (!items.isEmpty || running > 0) && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    /// Stops the workers once the queue drains.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Drops the jobs not yet started, stops the workers and waits for the running jobs
    /// to end: after a failure, so that nothing is still writing when the process exits
    /// (an exit mid-write leaves a temporary file, and OpenSSL's exit handlers free state
    /// a running job uses).
    func abandon() {
        condition.lock()
        items.removeAll()
        closed = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while items.isEmpty && !closed { condition.wait() }
            if items.isEmpty && closed {
                condition.unlock()
                return
            }
            let job = items.removeFirst()
            running += 1
            condition.unlock()
            var thrown: (any Error)?
            do { try job() } catch { thrown = error }
            condition.lock()
            running -= 1
            if let thrown, failure == nil { failure = thrown }
            condition.broadcast()
            condition.unlock()
        }
    }
}
