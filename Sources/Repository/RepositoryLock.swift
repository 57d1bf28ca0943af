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
    /// An append lock (oplog tailing): absent in locks written before append locks existed.
    public var append: Bool?

    public init(hostname: String, pid: Int32, time: Date, exclusive: Bool, append: Bool? = nil) {
        self.hostname = hostname
        self.pid = pid
        self.time = time
        self.exclusive = exclusive
        self.append = append
    }

    public var kind: LockKind { exclusive ? .exclusive : append == true ? .append : .shared }

    /// Whether the holder is presumed gone: not refreshed within `staleAfter`, or a
    /// process on this host that no longer exists.
    public func isStale(now: Date = Date(), staleAfter: Duration) -> Bool {
        let age = now.timeIntervalSince(time)
        if age > Double(staleAfter.components.seconds) + Double(staleAfter.components.attoseconds) / 1e18 { return true }
        if hostname == ProcessInfo.processInfo.hostName, kill(pid, 0) != 0, errno == ESRCH { return true }
        return false
    }

    public var holderDescription: String {
        "\(kind) lock of pid \(pid) on \(hostname) since \(time.formatted(.iso8601))"
    }
}

/// What a lock holder may do to the repository, and so which other holders it tolerates.
///
/// | held \\ wanted | shared | append | exclusive |
/// | --- | --- | --- | --- |
/// | shared | yes | yes | no |
/// | append | yes | yes | yes |
/// | exclusive | no | yes | no |
///
/// Append holders (the oplog tailer) only add new packs, index files and timeline files,
/// never deduplicate a segment against a blob another process could delete, and refresh
/// their lock only when every blob they flushed is named by a timeline file; that is
/// what lets prune run beside them (FORMAT.md "Locks").
public enum LockKind: String, Sendable, Codable, CustomStringConvertible {
    /// Readers and deduplicating writers: backup, import, restore, check, compaction.
    case shared
    /// Writers of new oplog segments only: `ancre tail`.
    case append
    /// Removers: forget, prune; tolerates only append holders.
    case exclusive

    public var description: String { rawValue }

    func conflicts(with other: LockKind) -> Bool {
        switch (self, other) {
        case (.append, _), (_, .append): false
        case (.shared, .shared): false
        default: true
        }
    }
}

/// A lock this process holds on a repository; release it when done.
///
/// Shared locks (backup, restore) coexist; an exclusive lock (forget, prune) excludes
/// them but tolerates append locks (oplog tailing). Refresh it at least every few minutes
/// so others do not consider it stale.
public final class RepositoryLock: Sendable {
    public let id: String
    public let kind: LockKind
    private let repository: Repository

    public var exclusive: Bool { kind == .exclusive }

    fileprivate init(id: String, kind: LockKind, repository: Repository) {
        self.id = id
        self.kind = kind
        self.repository = repository
    }

    /// Rewrites the lock with the current time.
    ///
    /// An append holder must call it only when every blob it flushed is named by a
    /// timeline file: prune waits for that refresh before reading the timeline.
    /// - Throws: `RepositoryError` from storage.
    public func refresh() throws {
        try repository.writeLock(id: id, kind: kind)
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
    /// - Throws: `RepositoryError` `.locked` naming the holder of a conflicting lock.
    public func lock(exclusive: Bool, staleAfter: Duration = .seconds(30 * 60)) throws -> RepositoryLock {
        try lock(kind: exclusive ? .exclusive : .shared, staleAfter: staleAfter)
    }

    /// Takes a lock of `kind` (see `LockKind` for which kinds coexist).
    ///
    /// Writes the lock, then checks again for conflicting locks written meanwhile, so two
    /// processes racing for exclusive locks both fail rather than both succeed.
    /// - Parameter staleAfter: locks not refreshed for this long are ignored.
    /// - Throws: `RepositoryError` `.locked` naming the holder of a conflicting lock.
    public func lock(kind: LockKind, staleAfter: Duration = .seconds(30 * 60)) throws -> RepositoryLock {
        try checkConflicts(kind: kind, ignoring: nil, staleAfter: staleAfter)
        let id = encodeHex(Crypto.randomBytes(16))
        try writeLock(id: id, kind: kind)
        do {
            try checkConflicts(kind: kind, ignoring: id, staleAfter: staleAfter)
        } catch {
            try? storage.delete("locks/\(id)")
            throw error
        }
        return RepositoryLock(id: id, kind: kind, repository: self)
    }

    func writeLock(id: String, kind: LockKind) throws {
        try writeLock(id: id, info: LockInfo(hostname: ProcessInfo.processInfo.hostName, pid: getpid(), time: Date(),
                                             exclusive: kind == .exclusive, append: kind == .append ? true : nil))
    }

    func writeLock(id: String, info: LockInfo) throws {
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

    /// Removes the lock `id` whoever holds it (`ancre unlock --remove-all`): for a holder
    /// known to be gone before its lock turns stale.
    /// - Throws: `RepositoryError` from storage.
    public func removeLock(_ id: String) throws {
        try storage.delete("locks/\(id)")
    }

    private func checkConflicts(kind: LockKind, ignoring own: String?, staleAfter: Duration) throws {
        let now = Date()
        for (id, info) in try listLocks() where id != own && !info.isStale(now: now, staleAfter: staleAfter) {
            if kind.conflicts(with: info.kind) {
                throw RepositoryError(
                    .locked,
                    "repository is locked by another \(info.holderDescription) (lock \(id)); wait for it to finish, or if that process is gone, remove the lock with `ancre unlock`")
            }
        }
    }
}

extension Repository {
    /// Waits until every live append lock (other than `own`) has been refreshed since this
    /// call began, or released, or gone stale.
    ///
    /// An append holder refreshes only when every blob it flushed is named by a timeline
    /// file (`RepositoryLock.refresh`), so after this returns, every pack an appender
    /// uploaded before the call is listed by an index file and a timeline file that a
    /// fresh listing sees. Prune calls it between listing packs and reading the timeline.
    /// - Parameters:
    ///   - timeout: how long to wait; appenders refresh every 15 s by default.
    ///   - poll: the pause between listings.
    /// - Throws: `RepositoryError` `.locked` naming an appender that did not refresh in time.
    public func awaitAppendersSettled(ignoring own: String?, timeout: Duration = .seconds(120),
                                      poll: Duration = .milliseconds(250), staleAfter: Duration = .seconds(30 * 60)) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var waiting: [String: LockInfo] = [:]
        for (id, info) in try listLocks() where id != own && info.kind == .append && !info.isStale(staleAfter: staleAfter) {
            waiting[id] = info
        }
        while !waiting.isEmpty {
            let current = Dictionary(try listLocks().map { ($0.id, $0.info) }, uniquingKeysWith: { a, _ in a })
            waiting = waiting.filter { id, seen in
                guard let now = current[id], !now.isStale(staleAfter: staleAfter) else { return false }
                return now.time == seen.time
            }
            guard let (id, info) = waiting.first else { break }
            if clock.now >= deadline {
                throw RepositoryError(
                    .locked,
                    "the oplog tailer holding the \(info.holderDescription) (lock \(id)) did not refresh it within \(timeout); it may be stuck writing a segment. Retry later, or stop it")
            }
            Thread.sleep(forTimeInterval: Double(poll.components.seconds) + Double(poll.components.attoseconds) / 1e18)
        }
    }
}

extension Repository {
    /// Takes a lock of `kind`, retrying once a second for up to `retryFor` while another
    /// holder conflicts (for example a compaction run, which holds a shared lock for seconds).
    /// - Throws: `RepositoryError` `.locked` when the lock is still taken after `retryFor`.
    public func lock(kind: LockKind, retryFor: Duration, staleAfter: Duration = .seconds(30 * 60)) throws -> RepositoryLock {
        let deadline = ContinuousClock.now + retryFor
        while true {
            do {
                return try lock(kind: kind, staleAfter: staleAfter)
            } catch let error as RepositoryError where error.code == .locked && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 1)
            }
        }
    }
}
