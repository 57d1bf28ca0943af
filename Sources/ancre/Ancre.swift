import ArgumentParser
import Foundation

@main
struct Ancre: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ancre",
        abstract: "Encrypted, deduplicated backups and point-in-time recovery for MongoDB.",
        discussion: AncreExit.help,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, KeyCommand.self, ImportCommand.self, BackupCommand.self, ExportCommand.self,
            SnapshotsCommand.self, CheckCommand.self, StatsCommand.self, TailCommand.self, TimelineCommand.self,
            RestoreCommand.self, OplogCommand.self, CopyCommand.self, ForgetCommand.self, PruneCommand.self, UnlockCommand.self,
            DrillCommand.self, DaemonCommand.self, StatusCommand.self,
        ])
}
