import ArgumentParser
import Capture
import Foundation
import MongoDump
import Repository

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a mongodump directory or archive as a snapshot.",
        discussion: """
            Reads what `mongodump --out DIR` or `mongodump --archive=FILE` wrote (with \
            oplog.bson or the archive's oplog when present), sorts each collection by _id \
            and stores it deduplicated: documents an earlier snapshot already holds cost \
            nothing, changed ones only their leaf's delta.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Argument(help: ArgumentHelp("A dump directory or an archive file.", valueName: "path"))
    var path: String?

    @Option(help: ArgumentHelp("An archive file (mongodump --archive), same as giving it as the path.", valueName: "file"))
    var archive: String?

    @Option(help: "A tag to record with the snapshot (repeatable).")
    var tag: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if (path == nil) == (archive == nil) {
            throw ValidationError("Give one dump: a directory or archive path, or --archive FILE.")
        }
    }

    func run() throws {
        try reportingErrors {
            let input = archive ?? path!
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw CLIError(AncreExit.badInput, "\(input) does not exist.")
            }
            let source: any DumpSource = isDirectory.boolValue && archive == nil
                ? try DumpDirectory(path: input) : try ArchiveReader(path: input)
            let started = ContinuousClock.now
            // Unlocking the repository (scrypt, about 0.5 s of work) needs no dump and the
            // dump scan needs no key: the scan starts on the cores scrypt leaves.
            let arguments = repository
            let opening = BackgroundResult { try arguments.open() }
            defer { opening.waitUntilDone() }
            let spareCores = max(0, ProcessInfo.processInfo.activeProcessorCount - Repository.unlockThreads)
            let scan = try DumpScan(source, eagerThreads: min(2, spareCores))
            let repo = try opening.value()
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let label = URL(fileURLWithPath: input).standardizedFileURL.path
            var result = try DumpImporter(repository: repo, logger: CLILogging.logger).importDump(scan, label: label, tags: tag)
            let elapsed = (ContinuousClock.now - started).components
            result.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            let r = result.record
            if json {
                try printJSON(ImportSummary(snapshot: result.snapshotID, collections: r.collections, documents: r.documents,
                                            bytes: r.bytes, addedBytes: r.addedBytes, seconds: result.seconds))
            } else {
                let rate = Double(r.bytes) / max(result.seconds, 0.001) / 1_048_576
                print("snapshot \(result.snapshotID.prefix(8)) saved: \(r.collections) collections, \(r.documents) documents, "
                    + "\(Table.bytes(r.bytes)) read, \(Table.bytes(r.addedBytes)) added, "
                    + String(format: "%.1f s (%.0f MiB/s)", result.seconds, rate))
            }
        }
    }

    struct ImportSummary: Encodable {
        var snapshot: String
        var collections: Int
        var documents: UInt64
        var bytes: UInt64
        var addedBytes: UInt64
        var seconds: Double
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
