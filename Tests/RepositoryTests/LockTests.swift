import Foundation
import Testing
import TestSupport
@testable import Repository

@Suite struct LockTests {
    @Test func sharedLocksCoexist() throws {
        let storage = InMemoryBackend()
        let backup = try TestRepository.make(storage: storage)
        let tail = try TestRepository.open(storage: storage)
        let a = try backup.lock(exclusive: false)
        let b = try tail.lock(exclusive: false)
        #expect(try backup.listLocks().count == 2)
        try a.refresh()
        try a.release()
        try b.release()
        #expect(try backup.listLocks().isEmpty)
    }

    @Test func exclusiveLockExcludesAll() throws {
        let storage = InMemoryBackend()
        let backup = try TestRepository.make(storage: storage)
        let prune = try TestRepository.open(storage: storage)
        let shared = try backup.lock(exclusive: false)
        do {
            _ = try prune.lock(exclusive: true)
            Issue.record("exclusive lock taken over a shared one")
        } catch let error as RepositoryError {
            #expect(error.code == .locked)
            #expect(error.message.contains("pid \(getpid())"))
            #expect(error.message.contains(ProcessInfo.processInfo.hostName))
        }
        try shared.release()
        #expect(try prune.listLocks().isEmpty)  // the failed attempt left nothing behind

        let exclusive = try prune.lock(exclusive: true)
        #expect { try backup.lock(exclusive: false) } throws: { ($0 as? RepositoryError)?.code == .locked }
        #expect { try backup.lock(exclusive: true) } throws: { ($0 as? RepositoryError)?.code == .locked }
        try exclusive.release()
        try backup.lock(exclusive: true).release()
    }

    @Test func staleLocksExpire() throws {
        let repository = try TestRepository.make()
        _ = try repository.lock(exclusive: true)  // never refreshed or released
        #expect { try repository.lock(exclusive: false) } throws: { ($0 as? RepositoryError)?.code == .locked }
        Thread.sleep(forTimeInterval: 0.05)
        let lock = try repository.lock(exclusive: false, staleAfter: .milliseconds(10))
        #expect(try repository.removeStaleLocks(staleAfter: .milliseconds(10)) == 1)
        try lock.release()
    }

    @Test func locksOfDeadProcessesOnThisHostExpire() throws {
        let repository = try TestRepository.make()
        let dead = LockInfo(hostname: ProcessInfo.processInfo.hostName, pid: Int32.max - 1, time: Date(), exclusive: true)
        #expect(dead.isStale(staleAfter: .seconds(3600)))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        try repository.storage.put("locks/dead", SealedFile.seal(Array(try encoder.encode(dead)), kind: "locks", key: repository.master))
        try repository.lock(exclusive: true).release()

        let elsewhere = LockInfo(hostname: "other-host", pid: Int32.max - 1, time: Date(), exclusive: true)
        #expect(!elsewhere.isStale(staleAfter: .seconds(3600)))
    }
}
