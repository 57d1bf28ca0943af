import Foundation
@testable import Repository
import Testing
import TestSupport

/// `ancre unlock`: stale locks go, live ones stay unless --remove-all.
@Suite(.needsBinary)
struct UnlockCommandTests {
    @Test func removesStaleLocksAndKeepsLiveOnes() throws {
        let box = Sandbox()
        try box.initialize()
        let repository = try box.openRepository()
        #expect(try box.ok("unlock").stdout.contains("no locks"))
        let live = try repository.lock(kind: .shared)
        // A crashed holder on this host (no such pid) and one elsewhere that stopped refreshing an hour ago.
        try repository.writeLock(id: "crashed", info: LockInfo(hostname: ProcessInfo.processInfo.hostName, pid: Int32.max - 1,
                                                               time: Date(), exclusive: true))
        try repository.writeLock(id: "silent", info: LockInfo(hostname: "elsewhere", pid: 42, time: Date(timeIntervalSinceNow: -3600),
                                                              exclusive: false, append: true))
        let listed = try box.ok("unlock", "--list")
        #expect(listed.stdout.contains("stale") && listed.stdout.contains("live") && listed.stdout.contains("elsewhere"), "\(listed)")
        #expect(try repository.listLocks().count == 3)

        let unlocked = try box.ok("unlock")
        #expect(unlocked.stdout.contains("removed 2 lock(s), 1 live lock(s) left"), "\(unlocked)")
        #expect(try repository.listLocks().map(\.id) == [live.id])
        // The message a locked command prints names the command that helps.
        let refused = try box.cli.run(["prune"])
        #expect(refused.status == 13 && refused.stderr.contains("ancre unlock"), "\(refused)")

        #expect(try box.ok("unlock", "--remove-all").stdout.contains("removed 1 lock(s), 0 live lock(s) left"))
        #expect(try repository.listLocks().isEmpty)
    }
}
