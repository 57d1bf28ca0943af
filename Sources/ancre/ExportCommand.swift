import ArgumentParser
import Foundation
import Recovery
import Repository

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a snapshot as a mongodump archive (for mongorestore --archive).",
        discussion: """
            `--archive -` writes to standard output, e.g. \
            `ancre export --archive - | mongorestore --archive --oplogReplay`.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Argument(help: "The snapshot: an id, a unique prefix of one, or `latest`.")
    var snapshot: String = "latest"

    @Option(help: ArgumentHelp("The archive file to write, or - for standard output.", valueName: "file"))
    var archive: String

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            // Shared: prune (exclusive) must not remove packs while they are read.
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let (id, record) = try SnapshotCatalog(repository: repo).find(snapshot)
            // A file is written beside its destination and renamed when complete, so a failed
            // export never leaves a partial archive (nor clobbers an existing one) at `archive`.
            let partial = archive + ".partial"
            let output: ArchiveOutput = archive == "-" ? .fileDescriptor(STDOUT_FILENO) : .path(partial)
            let result: ExportResult
            do {
                result = try ArchiveExporter(repository: repo, logger: CLILogging.logger).export(record, to: output)
                if archive != "-", rename(partial, archive) != 0 {
                    throw CLIError(AncreExit.failure, "cannot rename \(partial) to \(archive): \(String(cString: strerror(errno)))")
                }
            } catch {
                let note = archive == "-" ? "the archive written to standard output is incomplete: do not restore it"
                    : "no archive was written to \(archive)"
                if archive != "-" { unlink(partial) }
                FileHandle.standardError.write(Data("ancre: export of snapshot \(id.prefix(8)) failed; \(note)\n".utf8))
                throw error
            }
            let summary = "exported snapshot \(id.prefix(8)): \(result.namespaces) namespaces, \(result.documents) documents, "
                + "\(result.oplogEntries) oplog entries, \(Table.bytes(result.bytesWritten))\n"
            FileHandle.standardError.write(Data(summary.utf8))
        }
    }
}
