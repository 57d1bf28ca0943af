import ArgumentParser
import Foundation
import Repository

struct CopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy a repository to another location, writing only what the destination lacks.",
        discussion: """
            The destination becomes the same repository (same id, keys and passphrases) and \
            can be restored from on its own. Copies key slots and config on the first run, \
            then missing packs, index files, snapshots and timeline files, in that order, \
            checking every object against its name (SHA-256) before upload, and after it \
            by its S3 ETag (the MD5 of what was sent) or by reading it back. An \
            interrupted copy leaves the destination consistent; run it again to finish. \
            The copy decrypts no data, but needs a passphrase of the source for the \
            repositories' locks, which are sealed with its key: it holds a shared lock on \
            the source and an exclusive one on the destination, so that no prune on either \
            side removes packs under it. Locations are directories or s3:https://host[:port]/bucket/prefix (credentials \
            from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials).

            --object-lock makes an off-site copy ransomware-proof: every object written \
            is locked for the period given (the bucket needs Object Lock, hence versioning). \
            forget and prune still work on such a copy, since a delete only adds a delete \
            marker; the locked versions stay restorable (list them with the object \
            versions API) until their lock expires.

            \(AncreExit.help)
            """)

    @Option(help: ArgumentHelp("The repository to copy.", valueName: "repo"))
    var from: String

    @Option(help: ArgumentHelp("Where to copy it: empty, or an earlier copy of it.", valueName: "repo"))
    var to: String

    @Option(name: .long, help: ArgumentHelp("Read the source's passphrase from this file (first line).", valueName: "file"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("""
        Lock every object written to the s3: destination for this long (7d, 4w), so that \
        nobody can delete or overwrite the copy's data before then (the bucket needs \
        Object Lock enabled). Lock files are not locked.
        """, valueName: "period"))
    var objectLock: String?

    @Option(help: ArgumentHelp("GOVERNANCE (removable with s3:BypassGovernanceRetention) or COMPLIANCE (by nobody).", valueName: "mode"))
    var objectLockMode: String = "GOVERNANCE"

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if let objectLock, parsePeriod(objectLock) == nil {
            throw ValidationError("--object-lock: not a period like 7d or 4w: '\(objectLock)'")
        }
        if ObjectLockRetention.Mode(rawValue: objectLockMode.uppercased()) == nil {
            throw ValidationError("--object-lock-mode is GOVERNANCE or COMPLIANCE, not '\(objectLockMode)'")
        }
    }

    /// The retention to put on written objects, if asked.
    var retention: ObjectLockRetention? {
        guard let period = objectLock.flatMap(parsePeriod), let mode = ObjectLockRetention.Mode(rawValue: objectLockMode.uppercased()) else { return nil }
        return ObjectLockRetention(mode: mode, duration: period)
    }

    func run() throws {
        try reportingErrors {
            let source = try Repository.open(
                storage: try makeStorage(location: from), passphrase: try passphrase(), options: RepositoryArguments.options)
            let report = try RepositoryCopy(source: source, destination: try makeStorage(location: to, objectLock: retention)).run()
            if json {
                try printJSON(report)
            } else {
                let megabytes = Double(report.bytesCopied) / 1_000_000
                let rate = report.seconds > 0 ? String(format: " (%.1f MB/s)", megabytes / report.seconds) : ""
                print("copied \(report.objectsCopied) objects: \(report.packs) packs, \(report.indexFiles) index files, "
                    + "\(report.snapshots) snapshots, \(report.timelineFiles) timeline files, \(report.keys) key slots"
                    + (report.config > 0 ? ", config" : ""))
                print(String(format: "%.1f MB in %.2f s", megabytes, report.seconds) + rate + "; \(report.objectsSkipped) objects already there")
            }
        }
    }

    private func passphrase() throws -> String {
        if let passwordFile { return try Passphrase.read(file: passwordFile) }
        if let env = ProcessInfo.processInfo.environment["ANCRE_PASSWORD"] { return env }
        if let typed = Passphrase.prompt("Passphrase for \(from): ") { return typed }
        throw CLIError(AncreExit.wrongPassphrase, "No passphrase: use --password-file, set ANCRE_PASSWORD, or run on a terminal to be asked.")
    }
}
