import ArgumentParser
import Foundation
import Repository

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an encrypted repository.",
        discussion: """
            The passphrase comes from --new-password-file, ANCRE_NEW_PASSWORD or \
            ANCRE_PASSWORD, or is asked twice on the terminal. Keep it safe: without it \
            (or another key slot's passphrase) the repository cannot be read.

            \(AncreExit.help)
            """)

    @OptionGroup var repository: RepositoryArguments

    @Option(help: ArgumentHelp("Read the new passphrase from this file.", valueName: "file"))
    var newPasswordFile: String?

    @Option(help: "A label for the first key slot (for example who holds the passphrase).")
    var label: String = ""

    /// scrypt cost: calibrated to about 0.5 s here, unless ANCRE_SCRYPT_N sets N (for
    /// tests and slow machines; lower means faster passphrase guessing).
    static var kdf: KDFParameters {
        if let text = ProcessInfo.processInfo.environment["ANCRE_SCRYPT_N"], let n = UInt64(text), n > 1, n & (n - 1) == 0 {
            return KDFParameters(n: n)
        }
        return .calibrated
    }

    func run() throws {
        try reportingErrors {
            let passphrase = try Passphrase.new(file: newPasswordFile ?? repository.passwordFile, allowCurrentEnvironment: true)
            let repo = try Repository.create(
                storage: try repository.storage(), passphrase: passphrase, kdf: InitCommand.kdf, label: label,
                options: RepositoryArguments.options)
            print("created repository \(repo.config.id) at \(repository.path)")
        }
    }
}
