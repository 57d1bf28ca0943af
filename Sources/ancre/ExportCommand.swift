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
            let (id, record) = try SnapshotCatalog(repository: repo).find(snapshot)
            let output: ArchiveOutput = archive == "-" ? .fileDescriptor(STDOUT_FILENO) : .path(archive)
            let result = try ArchiveExporter(repository: repo, logger: CLILogging.logger).export(record, to: output)
            let summary = "exported snapshot \(id.prefix(8)): \(result.namespaces) namespaces, \(result.documents) documents, "
                + "\(result.oplogEntries) oplog entries, \(Table.bytes(result.bytesWritten))\n"
            FileHandle.standardError.write(Data(summary.utf8))
        }
    }
}
