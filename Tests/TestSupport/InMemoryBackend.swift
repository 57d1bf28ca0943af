import Repository
import Synchronization

/// A `Storage` in a dictionary, for tests; thread-safe.
///
/// Tests can reach in to damage objects (`corrupt`, `truncate`) or make writes fail.
public final class InMemoryBackend: Storage {
    private let objects = Mutex<[String: [UInt8]]>([:])
    /// When set, every `put` throws this error and stores nothing (simulates a full disk).
    private let failure = Mutex<RepositoryError?>(nil)

    public init() {}

    public func put(_ key: String, _ bytes: [UInt8]) throws {
        if let error = failure.withLock({ $0 }) { throw error }
        objects.withLock { $0[key] = bytes }
    }

    public func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        if let error = failure.withLock({ $0 }) { throw error }
        return objects.withLock { objects in
            guard objects[key] == nil else { return false }
            objects[key] = bytes
            return true
        }
    }

    public func get(_ key: String, range: Range<Int>?) throws -> [UInt8] {
        guard let bytes = objects.withLock({ $0[key] }) else {
            throw RepositoryError(.objectNotFound, "object '\(key)' does not exist")
        }
        guard let range else { return bytes }
        let lower = min(range.lowerBound, bytes.count), upper = min(range.upperBound, bytes.count)
        return Array(bytes[lower..<upper])
    }

    public func list(prefix: String) throws -> [StorageEntry] {
        objects.withLock { objects in
            objects.filter { $0.key.hasPrefix(prefix) }.map { StorageEntry(key: $0.key, size: $0.value.count) }
        }
    }

    public func delete(_ key: String) throws {
        _ = objects.withLock { $0.removeValue(forKey: key) }
    }

    public func stat(_ key: String) throws -> Int? {
        objects.withLock { $0[key]?.count }
    }

    // MARK: - Test hooks

    /// Makes every later write fail with `error` (`nil` restores normal writes).
    public func failWrites(with error: RepositoryError?) {
        failure.withLock { $0 = error }
    }

    /// All keys, sorted.
    public var keys: [String] { objects.withLock { $0.keys.sorted() } }

    /// Replaces an object's bytes directly (bypassing failures).
    public func replace(_ key: String, with bytes: [UInt8]) {
        objects.withLock { $0[key] = bytes }
    }

    /// Flips the bits of one byte of an object.
    public func flipByte(_ key: String, at offset: Int) {
        objects.withLock { $0[key]![offset] ^= 0xFF }
    }

    /// Cuts an object down to `length` bytes.
    public func truncate(_ key: String, to length: Int) {
        objects.withLock { $0[key]!.removeSubrange(length...) }
    }
}
