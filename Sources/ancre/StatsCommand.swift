import ArgumentParser
import Foundation
import Repository

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show what the repository stores: blobs, packs, bytes raw and stored, dedup ratio.",
        discussion: AncreExit.help)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            let stats = try RepositoryUsage.gather(repo)
            if json {
                try printJSON(stats)
                return
            }
            print("""
                snapshots:        \(stats.snapshots)
                blobs:            \(stats.blobs) (\(stats.deltaBlobs) stored as deltas)
                packs:            \(stats.packs)
                logical size:     \(Table.bytes(stats.logicalBytes)) (sum of every snapshot's documents)
                raw blob bytes:   \(Table.bytes(stats.rawBytes))
                stored bytes:     \(Table.bytes(stats.storedBytes))
                dedup ratio:      \(String(format: "%.2f", stats.dedupRatio))x (logical / stored)
                index memory:     \(Table.bytes(stats.indexMemoryBytes)) (\(String(format: "%.1f", stats.indexBytesPerBlob)) bytes per blob)
                """)
            for t in stats.byType {
                print("  \(t.type.padding(toLength: 9, withPad: " ", startingAt: 0)) \(t.blobs) blobs, \(Table.bytes(t.rawBytes)) raw, \(Table.bytes(t.storedBytes)) stored")
            }
        }
    }
}
