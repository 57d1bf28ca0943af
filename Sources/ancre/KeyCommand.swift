import ArgumentParser
import Foundation
import Repository

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage the passphrases (key slots) that open the repository.",
        discussion: AncreExit.help,
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a passphrase.",
            discussion: "The new passphrase comes from --new-password-file or ANCRE_NEW_PASSWORD, or is asked twice.\n\n\(AncreExit.help)")

        @OptionGroup var repository: RepositoryArguments
        @Option(help: ArgumentHelp("Read the new passphrase from this file.", valueName: "file"))
        var newPasswordFile: String?
        @Option(help: "A label for the slot.")
        var label: String = ""

        func run() throws {
            try reportingErrors {
                let repo = try repository.open()
                let passphrase = try Passphrase.new(file: newPasswordFile, allowCurrentEnvironment: false)
                let slot = try repo.addKeySlot(passphrase: passphrase, kdf: InitCommand.kdf, label: label)
                print("added key \(slot.id)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List key slots.", discussion: AncreExit.help)
        @OptionGroup var repository: RepositoryArguments

        func run() throws {
            try reportingErrors {
                let repo = try repository.open()
                let formatter = ISO8601DateFormatter()
                print(Table.render(
                    header: ["", "id", "created", "host", "label"],
                    rows: try repo.listKeySlots().map {
                        [$0.id == repo.keySlotID ? "*" : "", $0.id, formatter.string(from: $0.created), $0.hostname, $0.label]
                    }))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a key slot (never the last one).", discussion: AncreExit.help)
        @OptionGroup var repository: RepositoryArguments
        @Argument(help: "The slot id, as `ancre key list` shows it.")
        var id: String

        func run() throws {
            try reportingErrors {
                let repo = try repository.open()
                try repo.removeKeySlot(id: id)
                print("removed key \(id)")
            }
        }
    }
}
