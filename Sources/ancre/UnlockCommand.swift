import ArgumentParser
import Foundation
import Repository

struct UnlockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "List the repository's locks and remove those whose holder is gone.",
        discussion: """
            A lock is stale when its holder has not refreshed it for 30 minutes, or when it \
            names this host and a process that no longer exists; `unlock` removes those. \
            --remove-all also removes live ones: only when you know every holder is gone \
            (a crashed host), since a backup, tail or prune that still runs would then \
            share the repository with a prune.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Only list the locks.")
    var list = false

    @Flag(help: "Remove every lock, live or stale.")
    var removeAll = false

    func validate() throws {
        if list && removeAll { throw ValidationError("Give --list or --remove-all, not both.") }
    }

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            let locks = try repo.listLocks()
            let now = Date()
            let staleAfter = Duration.seconds(30 * 60)
            if locks.isEmpty {
                print("no locks")
                return
            }
            print(Table.render(header: ["lock", "holder", "state"], rows: locks.map { lock in
                [String(lock.id.prefix(12)), lock.info.holderDescription, lock.info.isStale(now: now, staleAfter: staleAfter) ? "stale" : "live"]
            }))
            guard !list else { return }
            var removed = 0
            for lock in locks where removeAll || lock.info.isStale(now: now, staleAfter: staleAfter) {
                try repo.removeLock(lock.id)
                removed += 1
            }
            print("removed \(removed) lock(s), \(locks.count - removed) live lock(s) left")
        }
    }
}
