import ArgumentParser
import Foundation
import Operations
import Repository

/// Where the repository is and how to get its passphrase; shared by every command.
///
/// The passphrase never comes from argv: it is read from `--password-file`, from
/// `ANCRE_PASSWORD`, or from a prompt on the terminal, in that order.
struct RepositoryArguments: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Repository directory, or s3:https://host[:port]/bucket/prefix (or set ANCRE_REPOSITORY).", valueName: "path"))
    var repo: String?

    @Option(name: .long, help: ArgumentHelp("Read the passphrase from this file (first line).", valueName: "file"))
    var passwordFile: String?

    func validate() throws {
        if repo == nil && ProcessInfo.processInfo.environment["ANCRE_REPOSITORY"] == nil {
            throw ValidationError("Missing --repo (or ANCRE_REPOSITORY): where the repository is.")
        }
    }

    var path: String { repo ?? ProcessInfo.processInfo.environment["ANCRE_REPOSITORY"]! }

    func storage() throws -> any Storage { try makeStorage(location: path) }

    /// The passphrase of an existing repository.
    func passphrase() throws -> String {
        if let passwordFile { return try Passphrase.read(file: passwordFile) }
        if let env = ProcessInfo.processInfo.environment["ANCRE_PASSWORD"] { return env }
        if let typed = Passphrase.prompt("Passphrase for \(path): ") { return typed }
        throw CLIError(AncreExit.wrongPassphrase,
                       "No passphrase: use --password-file, set ANCRE_PASSWORD, or run on a terminal to be asked.")
    }

    /// Opens the repository, with errors mapped to exit codes by the caller.
    func open() throws -> Repository {
        try Repository.open(storage: try storage(), passphrase: try passphrase(), options: Self.options)
    }

    static var options: RepositoryOptions { RepositoryOptions(logger: CLILogging.logger) }
}

/// The storage at a repository location: `s3:…` (see `S3Location.parse`; credentials from
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or `~/.aws/credentials`), else a local directory.
/// `objectLock`: retention put on every object written to an `s3:` location (a bucket
/// with Object Lock enabled); refused for a directory, which has no such thing.
func makeStorage(location: String, objectLock: ObjectLockRetention? = nil) throws -> any Storage {
    if location.hasPrefix("s3:") {
        return try S3Backend(location: try S3Location.parse(location), options: S3Options(objectLock: objectLock))
    }
    if objectLock != nil {
        throw CLIError(AncreExit.usage, "--object-lock needs an s3: destination (Object Lock is an S3 bucket feature): \(location)")
    }
    return try LocalBackend(path: location)
}

/// A period written as a count and a unit: 90s, 30m, 36h, 7d, 2w (as in the daemon's config).
func parsePeriod(_ text: String) -> Duration? { DaemonConfig.duration(text) }

/// Reading passphrases from files and the terminal.
enum Passphrase {
    static func read(file: String) throws -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw CLIError(AncreExit.usage, "Cannot read the passphrase file \(file).")
        }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !line.isEmpty else { throw CLIError(AncreExit.usage, "The passphrase file \(file) is empty.") }
        return line
    }

    /// Asks on the terminal without echo; nil when there is no terminal.
    static func prompt(_ message: String) -> String? {
        guard isatty(STDIN_FILENO) != 0, let p = getpass(message) else { return nil }
        return String(cString: p)
    }

    /// A new passphrase: from the file, `ANCRE_NEW_PASSWORD` (or `ANCRE_PASSWORD` for
    /// `init`), or typed twice.
    static func new(file: String?, allowCurrentEnvironment: Bool) throws -> String {
        if let file { return try read(file: file) }
        let env = ProcessInfo.processInfo.environment
        if let value = env["ANCRE_NEW_PASSWORD"] { return value }
        if allowCurrentEnvironment, let value = env["ANCRE_PASSWORD"] { return value }
        guard let first = prompt("New passphrase: ") else {
            throw CLIError(AncreExit.usage, "No new passphrase: use --new-password-file, set ANCRE_NEW_PASSWORD, or run on a terminal.")
        }
        guard prompt("Repeat it: ") == first else { throw CLIError(AncreExit.usage, "The passphrases differ.") }
        guard !first.isEmpty else { throw CLIError(AncreExit.usage, "An empty passphrase is not allowed.") }
        return first
    }
}
