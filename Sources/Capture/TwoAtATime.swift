import Foundation
import Synchronization

/// Runs `body` on each of `items`, in the list's order, at most two at a time (on the
/// calling thread and one of Dispatch's): an import's per-collection passes, which block
/// on reads and on the store queue, so they stay off Swift's cooperative pool.
///
/// After an error no new item starts; the first error is rethrown once the running ones end.
func twoAtATime<T>(_ items: [T], _ body: (T) throws -> Void) throws {
    guard !items.isEmpty else { return }
    let next = Mutex(0)
    let failure = Mutex<(any Error)?>(nil)
    withoutActuallyEscaping(body) { body in
        // concurrentPerform's closure is @Sendable; `body` is called from both threads, as documented.
        nonisolated(unsafe) let body = body
        nonisolated(unsafe) let items = items
        DispatchQueue.concurrentPerform(iterations: min(2, items.count)) { _ in
            while failure.withLock({ $0 == nil }) {
                let i: Int? = next.withLock { n in
                    defer { n += 1 }
                    return n < items.count ? n : nil
                }
                guard let i else { return }
                do { try body(items[i]) } catch { failure.withLock { if $0 == nil { $0 = error } } }
            }
        }
    }
    if let error = failure.withLock({ $0 }) { throw error }
}
