import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who holds a lock, as stored (sealed) in `locks/<id>`.
public struct LockInfo: Sendable, Equatable, Codable {
    public var hostname: String
    public var pid: Int32
    /// Last time the holder created or refreshed the lock.
    public var time: Date
    public var exclusive: Bool

    /// Whether the holder is presumed gone: not refreshed within `staleAfter`, or a
    /// process on this host that no longer exists.
    public func isStale(now: Date = Date(), staleAfter: Duration) -> Bool {
        let age = now.timeIntervalSince(time)
        if age > Double(staleAfter.components.seconds) + Double(staleAfter.components.attoseconds) / 1e18 { return true }
        if hostname == ProcessInfo.processInfo.hostName, kill(pid, 0) != 0, errno == ESRCH { return true }
        return false
    }

    public var holderDescription: String {
        "\(exclusive ? "exclusive" : "shared") lock of pid \(pid) on \(hostname) since \(time.formatted(.iso8601))"
    }
}

/// A lock this process holds on a repository; release it when done.
///
/// Shared locks (backup, oplog tailing) coexist; an exclusive lock (prune) excludes all
/// others. Refresh it at least every few minutes so others do not consider it stale.
public final class RepositoryLock: Sendable {
    public let id: String
    public let exclusive: Bool
    private let repository: Repository

    fileprivate init(id: String, exclusive: Bool, repository: Repository) {
        self.id = id
        self.exclusive = exclusive
        self.repository = repository
    }

    /// Rewrites the lock with the current time.
    /// - Throws: `RepositoryError` from storage.
    public func refresh() throws {
        try repository.writeLock(id: id, exclusive: exclusive)
    }

    /// Removes the lock.
    /// - Throws: `RepositoryError` from storage.
    public func release() throws {
        try repository.storage.delete("locks/\(id)")
    }
}

extension Repository {
    static let lockKind = "locks"

    /// Takes a shared or exclusive lock.
    ///
    /// Writes the lock, then checks again for conflicting locks written meanwhile, so two
    /// processes racing for exclusive locks both fail rather than both succeed.
    /// - Parameter staleAfter: locks not refreshed for this long are ignored.
    /// - Throws: `RepositoryError` `.locked` naming the holder of a conflicting lock.
    public func lock(exclusive: Bool, staleAfter: Duration = .seconds(30 * 60)) throws -> RepositoryLock {
        try checkConflicts(exclusive: exclusive, ignoring: nil, staleAfter: staleAfter)
        let id = encodeHex(Crypto.randomBytes(16))
        try writeLock(id: id, exclusive: exclusive)
        do {
            try checkConflicts(exclusive: exclusive, ignoring: id, staleAfter: staleAfter)
        } catch {
            try? storage.delete("locks/\(id)")
            throw error
        }
        return RepositoryLock(id: id, exclusive: exclusive, repository: self)
    }

    func writeLock(id: String, exclusive: Bool) throws {
        let info = LockInfo(hostname: ProcessInfo.processInfo.hostName, pid: getpid(), time: Date(), exclusive: exclusive)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970  // ISO 8601 would drop sub-second precision
        try storage.put("locks/\(id)", SealedFile.seal(Array(try encoder.encode(info)), kind: Self.lockKind, key: master))
    }

    /// Every lock in the repository, including stale ones; unreadable locks are skipped.
    /// - Throws: `RepositoryError` from storage.
    public func listLocks() throws -> [(id: String, info: LockInfo)] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try storage.list(prefix: "locks/").compactMap { entry in
            let id = String(entry.key.dropFirst("locks/".count))
            // A lock removed between list and get was released: skip it.
            guard let sealed = try? storage.get(entry.key),
                let plain = try? SealedFile.open(sealed, kind: Self.lockKind, key: master),
                let info = try? decoder.decode(LockInfo.self, from: Data(plain))
            else { return nil }
            return (id, info)
        }
    }

    /// Removes stale locks (see `LockInfo.isStale`); returns how many.
    /// - Throws: `RepositoryError` from storage.
    @discardableResult
    public func removeStaleLocks(staleAfter: Duration = .seconds(30 * 60)) throws -> Int {
        var removed = 0
        for (id, info) in try listLocks() where info.isStale(staleAfter: staleAfter) {
            try storage.delete("locks/\(id)")
            removed += 1
        }
        return removed
    }

    private func checkConflicts(exclusive: Bool, ignoring own: String?, staleAfter: Duration) throws {
        let now = Date()
        for (id, info) in try listLocks() where id != own && !info.isStale(now: now, staleAfter: staleAfter) {
            if exclusive || info.exclusive {
                throw RepositoryError(
                    .locked,
                    "repository is locked by another \(info.holderDescription) (lock \(id)); wait for it to finish, or if that process is gone, remove the lock with `ancre unlock`")
            }
        }
    }
}
