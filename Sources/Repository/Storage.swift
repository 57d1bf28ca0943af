/// One object in a listing: its key and size in bytes.
public struct StorageEntry: Hashable, Sendable {
    public var key: String
    public var size: Int
    public init(key: String, size: Int) {
        self.key = key
        self.size = size
    }
}

/// The one narrow seam between the repository and where its objects live.
///
/// Keys are `/`-separated relative paths such as `config`, `keys/<id>` or
/// `data/ab/<hex>`. Implementations are thread-safe. Retries, rate limits and
/// logging belong in wrappers around a backend, not in the repository.
public protocol Storage: Sendable {
    /// Stores `bytes` under `key`, replacing any existing object; readers see either
    /// the old object or the whole new one, never a partial write.
    /// - Throws: `RepositoryError` `.storageFull` or `.ioFailure`.
    func put(_ key: String, _ bytes: [UInt8]) throws

    /// Stores `bytes` under `key` only if no object exists there, atomically.
    /// - Returns: `false` when an object already existed (nothing was written).
    /// - Throws: `RepositoryError` `.storageFull` or `.ioFailure`.
    func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool

    /// Reads the object, or the part of it in `range`; a range reaching past the end
    /// returns the bytes that exist (callers detect truncation by the length).
    /// - Throws: `RepositoryError` `.objectNotFound` or `.ioFailure`.
    func get(_ key: String, range: Range<Int>?) throws -> [UInt8]

    /// Lists objects whose key starts with `prefix` (for example `data/`), in no particular order.
    /// - Throws: `RepositoryError` `.ioFailure`.
    func list(prefix: String) throws -> [StorageEntry]

    /// Removes the object; removing a missing object is not an error.
    /// - Throws: `RepositoryError` `.ioFailure`.
    func delete(_ key: String) throws

    /// The object's size, or `nil` when it does not exist.
    /// - Throws: `RepositoryError` `.ioFailure`.
    func stat(_ key: String) throws -> Int?

    /// Stores `bytes` as `put` does, and tells whether the storage confirmed that it stored
    /// exactly these bytes (see the default implementation, which cannot tell).
    /// - Throws: as `put`.
    func putConfirming(_ key: String, _ bytes: [UInt8]) throws -> Bool

    /// `putConfirming` for a caller that already hashed `bytes` (a copy checks every object
    /// against its name), so a backend that sends digests with the bytes (S3) need not
    /// hash them again. `digests` must be those of `bytes`.
    /// - Throws: as `put`.
    func putConfirming(_ key: String, _ bytes: [UInt8], digests: ObjectDigests) throws -> Bool
}

extension Storage {
    /// Reads the whole object.
    public func get(_ key: String) throws -> [UInt8] { try get(key, range: nil) }

    /// Stores `bytes`; false: without reading the object back, this storage cannot tell
    /// whether it holds exactly them (S3 can: the ETag it answers for what it received).
    public func putConfirming(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        try put(key, bytes)
        return false
    }

    /// Stores `bytes` with `putConfirming`; this storage has no use for the digests.
    public func putConfirming(_ key: String, _ bytes: [UInt8], digests: ObjectDigests) throws -> Bool {
        try putConfirming(key, bytes)
    }
}

/// Checks that a key is a plain relative path, so a backend cannot be steered outside its root.
func validateStorageKey(_ key: String) throws {
    let parts = key.split(separator: "/", omittingEmptySubsequences: false)
    guard !key.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." || $0.hasPrefix(".") }) else {
        throw RepositoryError(.invalidArgument, "invalid storage key '\(key)'")
    }
}
