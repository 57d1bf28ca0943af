import ArgumentParser
import Foundation
import Repository

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the repository's structure, and with --read-data every blob.",
        discussion: """
            Without --read-data: index files decrypt, every pack they name exists and its \
            header agrees with them, and every snapshot's tree can be walked. With \
            --read-data: every pack is re-hashed against its name and every blob \
            decrypted and re-hashed against its id. Damage names the pack, the blob and \
            the snapshots that use it; exit code 14.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Read, decrypt and re-hash every blob.")
    var readData = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            // Shared: prune (exclusive) must not remove packs while they are read.
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let report = try IntegrityCheck(repository: repo).run(readData: readData)
            if json {
                try printJSON(report)
            } else {
                for problem in report.problems {
                    var line = "error: \(problem.message)"
                    if !problem.snapshots.isEmpty { line += "\n  used by snapshots: \(problem.snapshots.map { String($0.prefix(8)) }.joined(separator: ", "))" }
                    print(line)
                }
                for pack in report.unreferencedPacks {
                    print("note: pack \(pack) is not in any index (left by an interrupted write; `ancre prune` removes it)")
                }
                print("checked \(report.indexFiles) index files, \(report.packs) packs, \(report.snapshots) snapshots"
                    + (readData ? ", \(report.blobsRead) blobs read" : "") + ": "
                    + (report.problems.isEmpty ? "no errors" : "\(report.problems.count) errors"))
            }
            if !report.problems.isEmpty { throw ExitCode(AncreExit.dataDamaged) }
        }
    }
}
