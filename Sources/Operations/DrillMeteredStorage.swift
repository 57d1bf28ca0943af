import Foundation
import Repository

/// A storage wrapper that counts the bytes read through it, so a drill reports what
/// its restore and verification actually fetched from the repository (the "bytes
/// read" of the drill), not an estimate. Open the repository on it; thread-safe.
public final class DrillMeteredStorage: Storage, @unchecked Sendable {
    let inner: any Storage
    private let lock = NSLock()
    private var read: UInt64 = 0

    public init(_ inner: any Storage) {
        self.inner = inner
    }

    /// Bytes returned by `get` so far.
    public var bytesRead: UInt64 { lock.withLock { read } }

    public func get(_ key: String, range: Range<Int>?) throws -> [UInt8] {
        let bytes = try inner.get(key, range: range)
        lock.withLock { read += UInt64(bytes.count) }
        return bytes
    }

    public func put(_ key: String, _ bytes: [UInt8]) throws { try inner.put(key, bytes) }
    public func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool { try inner.putIfAbsent(key, bytes) }
    public func list(prefix: String) throws -> [StorageEntry] { try inner.list(prefix: prefix) }
    public func delete(_ key: String) throws { try inner.delete(key) }
    public func stat(_ key: String) throws -> Int? { try inner.stat(key) }
}
