import BSON
import Foundation
import Logging
import MongoDump
import Repository

/// What an import stored.
public struct ImportResult: Sendable {
    public var snapshotID: String
    public var record: SnapshotRecord
    public var seconds: Double
}

/// Imports a mongodump output (directory or archive) into a repository as a snapshot.
///
/// Each collection is read twice: once to note every document's `_id` and location,
/// then, after sorting those, in `_id` order by random access. Memory stays bounded
/// by the keys (about 60 bytes a document), not the data.
public struct DumpImporter {
    let repository: Repository
    let logger: Logger

    public init(repository: Repository, logger: Logger) {
        self.repository = repository
        self.logger = logger
    }

    /// Imports every namespace of `source`, and its oplog when it has one.
    ///
    /// - Parameter label: how the snapshot records its source (a path).
    /// - Throws: `DumpError` for malformed input, `CaptureError` for documents without
    ///   `_id` or with duplicates, repository errors; nothing is recorded as a snapshot
    ///   unless everything was stored.
    public func importDump(_ source: any DumpSource, label: String, tags: [String] = []) throws -> ImportResult {
        let clock = ContinuousClock()
        let started = clock.now
        let catalog = SnapshotCatalog(repository: repository)
        let previous = try catalog.latest(source: label).map { try catalog.manifest(of: $0.record) }
        let writer = SnapshotWriter(repository: repository, previous: previous, logger: logger)

        for info in try source.namespaces() {
            let ns = info.namespace
            let metadata = info.metadata?.document ?? Document()
            let type = info.kind.rawValue
            if info.kind == .view {
                try writer.writeCollection(
                    database: ns.database, collection: ns.collection, type: type, metadata: metadata,
                    averageDocumentBytes: 1024) { _ in }
                continue
            }
            var keys: [(key: BSONKey, location: DocumentLocation)] = []
            var total = 0
            try source.forEachDocument(in: ns) { document, location in
                guard let key = document.idKey else {
                    let file = (source as? DumpDirectory)?.dataPath(of: ns) ?? (source as? ArchiveReader)?.path
                    throw CaptureError(.missingID, "\(file.map { "\($0): " } ?? "")a document of \(ns) at byte \(location.offset) has no _id")
                }
                keys.append((key, location))
                total += Int(location.length)
            }
            keys.sort { compareKeys($0.key, $1.key) < 0 }
            try writer.writeCollection(
                database: ns.database, collection: ns.collection, type: type, metadata: metadata,
                averageDocumentBytes: keys.isEmpty ? 1024 : total / keys.count
            ) { emit in
                for (key, location) in keys {
                    let document = try source.readValidatedDocument(at: location)
                    try document.bytes.withUnsafeBytes { try emit(key, $0) }
                }
            }
        }
        if source.hasOplog {
            try writer.writeOplog { emit in
                try source.forEachOplogEntry { entry, _ in try emit(entry) }
            }
        }
        let (id, record) = try writer.finish(source: label, kind: "import", start: nil, end: nil, tags: tags)
        let seconds = Double((clock.now - started).components.attoseconds) / 1e18 + Double((clock.now - started).components.seconds)
        return ImportResult(snapshotID: id, record: record, seconds: seconds)
    }
}
