import Foundation

/// One collection (or view) in a snapshot manifest.
public struct ManifestCollection: Codable, Sendable, Equatable {
    public var database: String
    public var collection: String
    /// "collection", "view" or "timeseries", as listCollections says.
    public var type: String
    /// A metadata blob: the collection's options, UUID, indexes, validator (BSON, opaque here).
    public var metadata: BlobID
    /// The tree's root node; nil for an empty collection or a view.
    public var root: BlobID?
    public var documents: UInt64
    public var bytes: UInt64
    /// The content checksum recorded at capture time (`DocumentChecksum`:
    /// "xxh64sum:" and hex). Manifests written before 2026-11 hold the MD5 of the
    /// documents in `_id` order (what `dbHash` reports) instead; drills check either.
    public var checksum: String
    public var shape: TreeShape

    public init(database: String, collection: String, type: String, metadata: BlobID, root: BlobID?,
                documents: UInt64, bytes: UInt64, checksum: String, shape: TreeShape) {
        self.database = database
        self.collection = collection
        self.type = type
        self.metadata = metadata
        self.root = root
        self.documents = documents
        self.bytes = bytes
        self.checksum = checksum
        self.shape = shape
    }

    public var namespace: String { "\(database).\(collection)" }
}

/// The content of a snapshot: every collection's tree and metadata, and the oplog
/// needed to make it consistent. Stored as a `manifest` blob (JSON).
public struct SnapshotManifest: Codable, Sendable, Equatable {
    public var version: Int = 1
    public var collections: [ManifestCollection]
    /// Oplog blobs captured with the snapshot (mongodump --oplog), in order.
    public var oplog: [OplogChunk]

    public init(collections: [ManifestCollection], oplog: [OplogChunk] = []) {
        self.collections = collections
        self.oplog = oplog
    }

    public func collection(_ namespace: String) -> ManifestCollection? {
        collections.first { $0.namespace == namespace }
    }
}

/// A run of oplog entries stored as one blob (concatenated BSON), with its bounds.
public struct OplogChunk: Codable, Sendable, Equatable {
    public var blob: BlobID
    public var first: OplogTime
    public var last: OplogTime
    public var count: Int

    public init(blob: BlobID, first: OplogTime, last: OplogTime, count: Int) {
        self.blob = blob
        self.first = first
        self.last = last
        self.count = count
    }
}

/// An oplog position (a BSON timestamp: seconds and increment); the Repository layer
/// only orders them.
public struct OplogTime: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var t: UInt32
    public var i: UInt32

    public init(t: UInt32, i: UInt32) {
        self.t = t
        self.i = i
    }

    public static func < (a: OplogTime, b: OplogTime) -> Bool { (a.t, a.i) < (b.t, b.i) }
    public var description: String { "\(t):\(i)" }
}

/// The small, sealed file at `snapshots/<id>` that names a manifest and says when and
/// from where the snapshot was taken.
public struct SnapshotRecord: Codable, Sendable, Equatable {
    public var version: Int = 1
    public var time: Date
    public var hostname: String
    /// What was captured: a server (redacted URI) or an imported dump path.
    public var source: String
    /// "backup" or "import".
    public var kind: String
    public var manifest: BlobID
    /// Oplog time when capture started, and when it ended (the consistency point).
    public var start: OplogTime?
    public var end: OplogTime?
    public var collections: Int
    public var documents: UInt64
    public var bytes: UInt64
    /// Bytes this snapshot added to the repository (after dedup, delta and compression).
    public var addedBytes: UInt64
    public var tags: [String]

    public init(time: Date, hostname: String, source: String, kind: String, manifest: BlobID,
                start: OplogTime?, end: OplogTime?, collections: Int, documents: UInt64, bytes: UInt64,
                addedBytes: UInt64, tags: [String] = []) {
        self.time = time
        self.hostname = hostname
        self.source = source
        self.kind = kind
        self.manifest = manifest
        self.start = start
        self.end = end
        self.collections = collections
        self.documents = documents
        self.bytes = bytes
        self.addedBytes = addedBytes
        self.tags = tags
    }
}

extension BlobID: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = BlobID(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a blob id: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
