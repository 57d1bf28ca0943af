import ArgumentParser
import Foundation
import Repository

struct SnapshotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots", abstract: "List snapshots.", discussion: AncreExit.help)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            let snapshots = try SnapshotCatalog(repository: repo).list()
            if json {
                try printJSON(snapshots.map { Listed(id: $0.id, snapshot: $0.record) })
                return
            }
            let formatter = ISO8601DateFormatter()
            print(Table.render(
                header: ["id", "time", "kind", "collections", "documents", "size", "added", "consistent at", "source"],
                rows: snapshots.map { id, r in
                    [String(id.prefix(8)), formatter.string(from: r.time), r.kind, "\(r.collections)", "\(r.documents)",
                     Table.bytes(r.bytes), Table.bytes(r.addedBytes), r.end.map { "ts:\($0)" } ?? "-", r.source]
                }))
            print("\(snapshots.count) snapshots")
        }
    }

    struct Listed: Encodable {
        var id: String
        var snapshot: SnapshotRecord
    }
}
