import BSON
import Foundation
import Logging
import MongoDump
import Repository

/// What an export wrote.
public struct ExportResult: Sendable {
    public var namespaces: Int
    public var documents: UInt64
    public var oplogEntries: Int
    public var bytesWritten: Int64
}

/// Writes a snapshot as a mongodump archive that `mongorestore --archive` reads:
/// every collection and view with its metadata and indexes, documents in `_id`
/// order, and the snapshot's oplog (for `--oplogReplay`) when it has one.
public struct ArchiveExporter {
    let repository: Repository
    let logger: Logger

    public init(repository: Repository, logger: Logger) {
        self.repository = repository
        self.logger = logger
    }

    /// Exports `record` to `path` (created or truncated), or to a file descriptor.
    /// - Throws: repository errors for missing or damaged blobs (the archive is then
    ///   incomplete and the error says so), `DumpError` for write failures.
    public func export(_ record: SnapshotRecord, to output: ArchiveOutput) throws -> ExportResult {
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: record)
        var prelude: [ArchivePreludeEntry] = []
        for c in manifest.collections {
            let metadata = try CollectionMetadata(document: Document(trustedBytes: try repository.loadBlob(c.metadata)))
            prelude.append(try ArchivePreludeEntry(
                namespace: Namespace(database: c.database, collection: c.collection), metadata: metadata))
        }
        if !manifest.oplog.isEmpty { prelude.append(.oplog) }
        let header = ArchiveHeader(serverVersion: "unknown", toolVersion: "ancre 0.1.0")
        let writer: ArchiveWriter
        switch output {
        case .path(let path): writer = try ArchiveWriter(path: path, header: header, prelude: prelude)
        case .fileDescriptor(let fd): writer = try ArchiveWriter(fileDescriptor: fd, header: header, prelude: prelude)
        }
        var result = ExportResult(namespaces: manifest.collections.count, documents: 0, oplogEntries: 0, bytesWritten: 0)
        let reader = TreeReader(load: repository.loadBlob)
        for c in manifest.collections {
            let namespace = Namespace(database: c.database, collection: c.collection)
            if let root = c.root {
                for leaf in try reader.leaves(root: root) {
                    let bytes = try repository.loadBlob(leaf.child)
                    try TreeReader.forEachRecord(in: bytes, id: leaf.child) { document in
                        try writer.append(documentBytes: document, to: namespace)
                        result.documents += 1
                    }
                }
            }
            try writer.end(namespace)
        }
        for chunk in manifest.oplog {
            let bytes = try repository.loadBlob(chunk.blob)
            try TreeReader.forEachRecord(in: bytes, id: chunk.blob) { entry in
                try writer.append(documentBytes: entry, to: .archiveOplog)
                result.oplogEntries += 1
            }
        }
        if !manifest.oplog.isEmpty { try writer.end(.archiveOplog) }
        try writer.finish()
        result.bytesWritten = writer.bytesWritten
        return result
    }
}

/// Where an archive goes.
public enum ArchiveOutput: Sendable {
    case path(String)
    case fileDescriptor(Int32)
}
