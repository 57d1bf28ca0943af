import ArgumentParser
import Foundation
import Repository

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Show what can be restored: restorable windows, snapshots, oplog segments and gaps.",
        discussion: AncreExit.help)

    @OptionGroup var repository: RepositoryArguments

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let repo = try repository.open()
            let view = try TimelineView.load(repo)
            let summary = Summary(view)
            if json {
                try printJSON(summary)
                return
            }
            print("Restorable windows:")
            if summary.windows.isEmpty { print("  none yet (a snapshot is needed; oplog segments alone cannot be restored)") }
            for w in summary.windows {
                print("  \(w.fromTime) (ts:\(w.from)) .. \(w.toTime) (ts:\(w.to)), from \(w.snapshots.count) snapshot(s)")
            }
            print("Snapshots:")
            if summary.snapshots.isEmpty { print("  none") }
            for s in summary.snapshots {
                print("  \(s.id.prefix(8))  \(s.kind)  start \(s.start.map { "ts:\($0)" } ?? "-")  consistent at \(s.end.map { "ts:\($0)" } ?? "-")")
            }
            let seg = summary.segments
            print("Oplog segments: \(seg.count) (\(seg.compacted) compacted), \(seg.entries) entries, \(Table.bytes(seg.bytes)), in \(summary.chains.count) contiguous run(s)")
            for c in summary.chains {
                print("  \(c.fromTime) (ts:\(c.first)) .. \(c.toTime) (ts:\(c.last)): \(c.segments) segment(s), \(c.entries) entries")
            }
            print("Gaps: \(summary.gaps.count)")
            for g in summary.gaps {
                print("  after ts:\(g.after.map(\.description) ?? "-") before ts:\(g.before.map(\.description) ?? "-") (\(g.reason), detected \(g.detected.formatted(.iso8601))): \(g.message)")
            }
        }
    }

    struct Summary: Encodable {
        struct Window: Encodable {
            var from: String, to: String, fromTime: String, toTime: String, snapshots: [String]
        }
        struct Snapshot: Encodable {
            var id: String
            var kind: String
            var time: Date
            var start: String?
            var end: String?
        }
        struct Segments: Encodable {
            var count = 0, compacted = 0, entries = 0, bytes = 0
        }
        struct Chain: Encodable {
            var first: String, last: String, fromTime: String, toTime: String, segments: Int, entries: Int
        }
        struct Gap: Encodable {
            var after: String?
            var before: String?
            var detected: Date
            var reason: String
            var message: String
        }
        var windows: [Window]
        var snapshots: [Snapshot]
        var segments: Segments
        var chains: [Chain]
        var gaps: [Gap]

        init(_ view: TimelineView) {
            func time(_ t: OplogTime) -> String { t.date.formatted(.iso8601) }
            windows = view.windows.map { Window(from: "\($0.from)", to: "\($0.to)", fromTime: time($0.from), toTime: time($0.to), snapshots: $0.snapshots) }
            snapshots = view.snapshots.map { Snapshot(id: $0.id, kind: $0.record.kind, time: $0.record.time, start: $0.record.start?.description, end: $0.record.end?.description) }
            var s = Segments()
            for item in view.segments {
                s.count += 1
                if item.segment.compacted { s.compacted += 1 }
                s.entries += item.segment.count
                s.bytes += item.segment.bytes
            }
            segments = s
            chains = view.chains.map { c in
                let items = view.segments[c.segments]
                return Chain(first: "\(c.first)", last: "\(c.last)", fromTime: time(c.first), toTime: time(c.last),
                             segments: items.count, entries: items.reduce(0) { $0 + $1.segment.count })
            }
            gaps = view.gaps.map { Gap(after: $0.after?.description, before: $0.before?.description, detected: $0.detected, reason: $0.reason.rawValue, message: $0.message) }
        }
    }
}
