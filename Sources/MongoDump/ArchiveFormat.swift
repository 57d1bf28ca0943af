import BSON

// The mongodump archive (`mongodump --archive`), as mongo-tools' common/archive/spec.md
// describes it and its fixtures show:
//
//   magic 0x8199e26d (int32 LE) | header doc | prelude doc* | 0xFFFFFFFF |
//   ( namespace header {db, collection, EOF: false, CRC: 0} | doc* | 0xFFFFFFFF
//   | EOF header {db, collection, EOF: true, CRC: crc64} | 0xFFFFFFFF )*
//
// A namespace's documents may be split over several segments interleaved with other
// namespaces'; its EOF header carries the CRC-64/XZ of all its documents' bytes.
// mongodump writes a segment for every namespace, even an empty one (header and
// terminator at once): mongorestore creates views and empty collections on seeing it.

/// The archive's magic number, little-endian at offset 0.
let archiveMagic: UInt32 = 0x8199_E26D

/// Ends the prelude and every segment.
let archiveTerminator: Int32 = -1

/// The document after the magic number: versions and parallelism of the dump.
public struct ArchiveHeader: Sendable, Equatable {
    /// Collections dumped in parallel (mongorestore uses it as a minimum for its own).
    public var concurrentCollections: Int32
    /// Archive format version; `"0.1"` is the only one.
    public var formatVersion: String
    /// Version of the server the dump was taken from, e.g. `"7.0.5"`.
    public var serverVersion: String
    /// Version of the tool that wrote the archive.
    public var toolVersion: String

    public init(concurrentCollections: Int32 = 4, formatVersion: String = "0.1", serverVersion: String, toolVersion: String) {
        self.concurrentCollections = concurrentCollections
        self.formatVersion = formatVersion
        self.serverVersion = serverVersion
        self.toolVersion = toolVersion
    }

    /// Fields in mongodump's order and types.
    var document: Document {
        Document([
            "concurrent_collections": .int32(concurrentCollections),
            "version": .string(formatVersion),
            "server_version": .string(serverVersion),
            "tool_version": .string(toolVersion),
        ])
    }

    init(document: Document) throws {
        guard let concurrent = document["concurrent_collections"]?.int64Value,
            let version = document["version"]?.stringValue
        else {
            throw DumpError(.badHeader, "archive header lacks concurrent_collections (int) or version (string): \(document)")
        }
        self.init(concurrentCollections: Int32(clamping: concurrent), formatVersion: version,
                  serverVersion: document["server_version"]?.stringValue ?? "",
                  toolVersion: document["tool_version"]?.stringValue ?? "")
    }
}

/// What an archive's prelude says about one namespace, kept verbatim so an archive
/// can be rewritten byte for byte.
public struct ArchivePreludeEntry: Sendable, Equatable {
    public var namespace: Namespace
    /// The metadata's Extended JSON text; empty for the oplog.
    public var metadataJSON: String
    /// Uncompressed size of the collection in bytes (mongodump writes 0).
    public var size: Int64
    /// `"collection"`, `"view"`, `"timeseries"` in newer archives; nil writes no `type` field, as older tools did.
    public var type: String?

    public init(namespace: Namespace, metadataJSON: String, size: Int64 = 0, type: String? = nil) {
        self.namespace = namespace
        self.metadataJSON = metadataJSON
        self.size = size
        self.type = type
    }

    /// An entry for `namespace` with `metadata` rendered as canonical Extended JSON and
    /// `type` taken from it.
    /// - Throws: `DumpError` `.badMetadata` if the metadata cannot be rendered.
    public init(namespace: Namespace, metadata: CollectionMetadata?, size: Int64 = 0) throws {
        self.init(namespace: namespace, metadataJSON: try metadata?.json() ?? "", size: size,
                  type: metadata.map { $0.type ?? $0.kind.rawValue })
    }

    /// The entry mongodump writes for `--oplog`: db `""`, collection `oplog`, no metadata.
    public static let oplog = ArchivePreludeEntry(namespace: .archiveOplog, metadataJSON: "")

    /// Parsed metadata; nil when `metadataJSON` is empty.
    /// - Throws: `DumpError` `.badMetadata` when the JSON is invalid.
    public func metadata() throws -> CollectionMetadata? {
        metadataJSON.isEmpty ? nil : try CollectionMetadata(json: metadataJSON)
    }

    /// `{db, collection, metadata, size[, type]}`; size as int32 when it fits, as Go's driver encodes `int`.
    var document: Document {
        var b = DocumentBuilder()
        b.append("db", .string(namespace.database))
        b.append("collection", .string(namespace.collection))
        b.append("metadata", .string(metadataJSON))
        b.append("size", Int32(exactly: size).map { .int32($0) } ?? .int64(size))
        if let type { b.append("type", .string(type)) }
        return b.build()
    }

    init(document: Document) throws {
        guard let db = document["db"]?.stringValue, let collection = document["collection"]?.stringValue else {
            throw DumpError(.badPrelude, "prelude entry lacks db or collection (strings): \(document)")
        }
        let namespace = Namespace(database: db, collection: collection)
        var metadataJSON = ""
        if let m = document["metadata"] {
            guard let s = m.stringValue else {
                throw DumpError(.badPrelude, "prelude entry's metadata is BSON type \(m.type), not a string", namespace: namespace)
            }
            metadataJSON = s
        }
        let size = document["size"]?.int64Value ?? 0
        self.init(namespace: namespace, metadataJSON: metadataJSON, size: size, type: document["type"]?.stringValue)
    }
}

/// A namespace header or EOF header.
struct SegmentHeader {
    var namespace: Namespace
    var isEOF: Bool
    var crc: Int64

    var document: Document {
        Document([
            "db": .string(namespace.database),
            "collection": .string(namespace.collection),
            "EOF": .bool(isEOF),
            "CRC": .int64(crc),
        ])
    }

    init(namespace: Namespace, isEOF: Bool, crc: Int64) {
        self.namespace = namespace
        self.isEOF = isEOF
        self.crc = crc
    }

    init(document: Document) throws {
        guard let db = document["db"]?.stringValue, let collection = document["collection"]?.stringValue,
            !collection.isEmpty
        else {
            throw DumpError(.badHeader, "namespace header lacks db or collection: \(document)")
        }
        namespace = Namespace(database: db, collection: collection)
        isEOF = document["EOF"]?.boolValue ?? false
        crc = document["CRC"]?.int64Value ?? 0
    }
}

/// A run of one namespace's documents in an archive, or the namespace's EOF marker.
public struct ArchiveSegment: Sendable, Equatable {
    public let namespace: Namespace
    /// File offset of the first document (of the EOF header for an EOF marker).
    public let offset: Int64
    /// Bytes of documents in the segment (0 for an EOF marker).
    public let byteCount: Int64
    public let documentCount: Int
    /// True for the namespace's EOF header, which ends it.
    public let isEOF: Bool
}
