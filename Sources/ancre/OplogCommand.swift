import ArgumentParser
import Foundation
import Recovery
import Repository

struct OplogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oplog",
        abstract: "Look into the oplog kept in the repository.",
        subcommands: [Search.self])

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find oplog entries (for example the dropDatabase to undo with `restore --before`).",
            discussion: """
                Example: ancre oplog search --repo R --ns clinic --command dropDatabase
                then: ancre restore --repo R --uri ... --before ts:S:I

                \(AncreExit.help)
                """)

        @OptionGroup var repository: RepositoryArguments

        @Option(help: ArgumentHelp("A database or db.collection.", valueName: "namespace"))
        var ns: String?

        @Option(help: ArgumentHelp("Operation types: i, u, d, c, n (repeatable).", valueName: "op"))
        var op: [String] = []

        @Option(help: ArgumentHelp("A command name: drop, dropDatabase, renameCollection, createIndexes...", valueName: "name"))
        var command: String?

        @Option(help: ArgumentHelp("From this time (RFC 3339 or ts:S:I).", valueName: "time"))
        var since: String?

        @Option(help: ArgumentHelp("Up to this time (RFC 3339 or ts:S:I).", valueName: "time"))
        var until: String?

        @Option(help: "At most this many entries.")
        var limit = 100

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if let bad = op.first(where: { !["i", "u", "d", "c", "n"].contains($0) }) {
                throw ValidationError("--op \(bad): expected i, u, d, c or n.")
            }
        }

        func run() throws {
            try reportingErrors {
                let repo = try repository.open()
                let query = OplogQuery(
                    namespace: ns, ops: Set(op), command: command, from: try since.map { try Self.time($0, end: false) },
                    to: try until.map { try Self.time($0, end: true) }, limit: limit)
                let matches = try OplogSearch(repository: repo).search(query, view: try TimelineView.load(repo))
                if json {
                    try printJSON(matches)
                    return
                }
                print(Table.render(
                    header: ["ts", "time", "op", "namespace", "what"],
                    rows: matches.map { [$0.ts, $0.time.formatted(.iso8601), $0.op, $0.ns, String($0.summary.prefix(100))] }))
                print("\(matches.count) entries" + (matches.count == limit ? " (the limit; narrow the search or raise --limit)" : ""))
                for m in matches {
                    if let undo = m.undoBefore {
                        print("to undo the dropDatabase at \(m.ts) (MongoDB first logs a drop per collection): "
                            + "ancre restore --before \(undo)")
                    }
                }
            }
        }

        /// `ts:S:I` or an RFC 3339 time (the whole second for an upper bound).
        static func time(_ text: String, end: Bool) throws -> OplogTime {
            switch try RestoreTarget(parsing: text) {
            case .timestamp(let t): return t
            case .time(let d): return OplogTime(t: UInt32(d.timeIntervalSince1970.rounded(.down)), i: end ? .max : 0)
            default: throw CLIError(AncreExit.usage, "\(text): give ts:S:I or an RFC 3339 time")
            }
        }
    }
}
