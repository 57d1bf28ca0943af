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

            --read-data-subset N% reads a rotating slice instead: packs fall into \
            ceil(100/N) buckets by their name (a SHA-256, so buckets are even), and the \
            bucket read is today's day number (UTC, since 1970) modulo that count, so a \
            daily check re-reads every pack within ceil(100/N) days. --read-data-subset K/T \
            reads bucket K (0-based) of T explicitly.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Read, decrypt and re-hash every blob.")
    var readData = false

    @Option(help: ArgumentHelp("Read a rotating N% of the packs (or bucket K/T).", valueName: "N%|K/T"))
    var readDataSubset: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if readData && readDataSubset != nil { throw ValidationError("Give --read-data or --read-data-subset, not both.") }
        if readDataSubset != nil { _ = try subset() }
    }

    /// `N%` (rotating by day) or `K/T`.
    func subset() throws -> PackSubset? {
        guard let text = readDataSubset else { return nil }
        if text.hasSuffix("%"), let percent = Double(text.dropLast()), percent > 0, percent <= 100 {
            return try PackSubset(percent: percent, date: Date())
        }
        let parts = text.split(separator: "/")
        if parts.count == 2, let k = Int(parts[0]), let t = Int(parts[1]), t >= 1, (0..<t).contains(k) {
            return try PackSubset(bucket: k, of: t)
        }
        throw ValidationError("--read-data-subset takes a percentage above 0 and at most 100 (e.g. 10%) or a bucket K/T with 0 <= K < T (e.g. 3/10).")
    }

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            // Shared: prune (exclusive) must not remove packs while they are read.
            let lock = try repo.lock(exclusive: false)
            defer { try? lock.release() }
            let subset = try subset()
            let report = try IntegrityCheck(repository: repo).run(readData: readData, subset: subset)
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
                    + (readData ? ", \(report.blobsRead) blobs read" : "")
                    + (subset.map { ", subset \($0): \(report.packsRead) packs and \(report.blobsRead) blobs read (" + (readDataSubset?.hasSuffix("%") == true ? "run daily, every pack is read within \($0.count) days" : "buckets 0 to \($0.count - 1) together read every pack") + ")" } ?? "") + ": "
                    + (report.problems.isEmpty ? "no errors" : "\(report.problems.count) errors"))
            }
            if !report.problems.isEmpty { throw ExitCode(AncreExit.dataDamaged) }
        }
    }
}
