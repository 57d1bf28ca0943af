import BSON

extension Namespace {
    /// Where mongodump's archive puts the oplog captured with `--oplog`: database `""`,
    /// collection `oplog` (not `local.oplog.rs`, which a dump of `local` would hold).
    public static let archiveOplog = Namespace(database: "", collection: "oplog")

    public var isArchiveOplog: Bool { self == .archiveOplog }
}

/// Where one document lies in a dump, for reading it again by random access.
///
/// 16 bytes, so an importer can keep one per document alongside its `_id` key.
public struct DocumentLocation: Hashable, Sendable {
    /// Which file of the source (always 0 for an archive).
    public let file: Int32
    /// The document's length in bytes.
    public let length: Int32
    /// Byte offset of the document in that file.
    public let offset: Int64

    public init(file: Int32, offset: Int64, length: Int32) {
        self.file = file
        self.offset = offset
        self.length = length
    }
}

/// One namespace of a dump: its name, metadata and what is known of its size.
public struct DumpNamespace: Sendable, Equatable {
    /// What the namespace holds; views and time-series collections carry no documents of their own.
    public enum Kind: String, Sendable {
        case collection, view, timeseries
    }

    public let namespace: Namespace
    /// Options, indexes and UUID; nil when the dump has documents but no metadata file.
    public let metadata: CollectionMetadata?
    public let kind: Kind
    /// Number of documents, when known without reading them (after an archive's scan).
    public let documentCount: Int?
    /// Bytes of BSON documents, when known (file size in a directory, scan result in an archive).
    public let byteCount: Int64?

    public init(namespace: Namespace, metadata: CollectionMetadata?, documentCount: Int? = nil, byteCount: Int64? = nil) {
        self.namespace = namespace
        self.metadata = metadata
        self.kind = metadata?.kind ?? .collection
        self.documentCount = documentCount
        self.byteCount = byteCount
    }
}
