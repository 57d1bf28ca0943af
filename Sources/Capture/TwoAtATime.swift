import Foundation
import Synchronization

/// Runs `body` on each item `next` hands out until it returns nil, at most two at a time
/// (on the calling thread and one of Dispatch's): an import's per-collection passes, which
/// block on reads and on the store queue, so they stay off Swift's cooperative pool.
/// `next` may block until an item is ready; its error counts as `body`'s.
///
/// After an error no new item starts; the first error is rethrown once the running ones end.
func twoAtATime<T>(next: () throws -> T?, _ body: (T) throws -> Void) throws {
    let failure = Mutex<(any Error)?>(nil)
    withoutActuallyEscaping(next) { next in
        withoutActuallyEscaping(body) { body in
            // concurrentPerform's closure is @Sendable; `next` and `body` are called from both threads, as documented.
            nonisolated(unsafe) let next = next
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                while failure.withLock({ $0 == nil }) {
                    do {
                        guard let item = try next() else { return }
                        try body(item)
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                }
            }
        }
    }
    if let error = failure.withLock({ $0 }) { throw error }
}
