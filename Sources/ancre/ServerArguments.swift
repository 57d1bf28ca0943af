import ArgumentParser
import Foundation

/// The MongoDB server a command talks to, shared by backup, tail and restore.
///
/// A URI with a password is better kept out of argv (other users see it in `ps`):
/// `--uri-file` or `ANCRE_MONGODB_URI` keep it private. It is only ever shown redacted.
struct ServerArguments: ParsableArguments {
    @Option(help: ArgumentHelp("MongoDB connection string (or --uri-file, or ANCRE_MONGODB_URI).", valueName: "uri"))
    var uri: String?

    @Option(help: ArgumentHelp("Read the connection string from this file (first line).", valueName: "file"))
    var uriFile: String?

    func validate() throws {
        if uri != nil && uriFile != nil { throw ValidationError("Give --uri or --uri-file, not both.") }
    }

    /// The connection string: --uri, --uri-file, then ANCRE_MONGODB_URI.
    func connectionString() throws -> String {
        if let uri { return uri }
        if let uriFile {
            guard let text = try? String(contentsOfFile: uriFile, encoding: .utf8) else {
                throw CLIError(AncreExit.usage, "Cannot read the URI file \(uriFile).")
            }
            let line = text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !line.isEmpty else { throw CLIError(AncreExit.usage, "The URI file \(uriFile) is empty.") }
            return line
        }
        if let env = ProcessInfo.processInfo.environment["ANCRE_MONGODB_URI"], !env.isEmpty { return env }
        throw CLIError(AncreExit.usage, "No MongoDB URI: use --uri, --uri-file or ANCRE_MONGODB_URI.")
    }
}
