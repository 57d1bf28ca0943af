import BSON

extension Namespace {
    /// The replica set oplog, `local.oplog.rs`.
    public static let oplog = Namespace(database: "local", collection: "oplog.rs")
}

/// A read concern level (`local`, `majority`, ...).
public struct ReadConcern: Sendable, Hashable {
    public var level: String
    public init(level: String) { self.level = level }

    public static let local = ReadConcern(level: "local")
    public static let available = ReadConcern(level: "available")
    /// Only majority-committed data: what the oplog tailer reads, so rolled-back
    /// writes are never archived.
    public static let majority = ReadConcern(level: "majority")
    public static let linearizable = ReadConcern(level: "linearizable")
    public static let snapshot = ReadConcern(level: "snapshot")
}

/// Options of a `find`, as the server's find command takes them.
public struct FindOptions: Sendable {
    public var filter: Document
    public var sort: Document?
    public var projection: Document?
    /// Documents per batch (the server's default when nil: 101 first, then up to 16 MiB).
    public var batchSize: Int?
    /// At most this many documents in all (nil: no limit).
    public var limit: Int?
    public var skip: Int?
    public var readConcern: ReadConcern?
    /// An index name or key pattern.
    public var hint: BSONValue?
    /// Keep the cursor open at the end of a capped collection.
    public var tailable: Bool
    /// With `tailable`: let getMore wait up to `maxAwaitTime` for new documents.
    public var awaitData: Bool
    public var maxAwaitTimeMS: Int?
    /// Keep an idle cursor alive past the server's 10-minute timeout.
    public var noCursorTimeout: Bool
    /// Index bounds (`min` inclusive, `max` exclusive) on the hinted index, e.g.
    /// `{_id: v}`: unlike `$gte`/`$lt` they compare across BSON types in canonical order.
    public var min: Document?
    public var max: Document?

    public init(filter: Document = Document(), sort: Document? = nil, projection: Document? = nil,
                batchSize: Int? = nil, limit: Int? = nil, skip: Int? = nil, readConcern: ReadConcern? = nil,
                hint: BSONValue? = nil, tailable: Bool = false, awaitData: Bool = false,
                maxAwaitTimeMS: Int? = nil, noCursorTimeout: Bool = false) {
        self.filter = filter
        self.sort = sort
        self.projection = projection
        self.batchSize = batchSize
        self.limit = limit
        self.skip = skip
        self.readConcern = readConcern
        self.hint = hint
        self.tailable = tailable
        self.awaitData = awaitData
        self.maxAwaitTimeMS = maxAwaitTimeMS
        self.noCursorTimeout = noCursorTimeout
    }

    /// A range scan in `_id` order: `{_id: {$gte: lower, $lt: upper}}` sorted by `_id`,
    /// the shape the snapshot dumper reads collections in. Nil bounds are open.
    public static func idRange(from lower: BSONValue? = nil, to upper: BSONValue? = nil,
                               batchSize: Int? = nil, readConcern: ReadConcern? = nil) -> FindOptions {
        var range: [(String, BSONValue)] = []
        if let lower { range.append(("$gte", lower)) }
        if let upper { range.append(("$lt", upper)) }
        let filter = range.isEmpty ? Document() : Document(["_id": .document(Document(pairs: range))])
        return FindOptions(filter: filter, sort: Document(["_id": .int32(1)]), batchSize: batchSize,
                           readConcern: readConcern)
    }

    /// An `_id` index scan in canonical order from `lower` (inclusive) to `upper`
    /// (exclusive) using `min`/`max` with `hint: {_id: 1}`: a range of every BSON type
    /// between the bounds, which `$gte`/`$lt` (type-bracketed) would not give. Nil
    /// bounds are open.
    public static func idIndexRange(from lower: BSONValue? = nil, to upper: BSONValue? = nil,
                                    batchSize: Int? = nil, readConcern: ReadConcern? = nil) -> FindOptions {
        var options = FindOptions(sort: Document(["_id": .int32(1)]), batchSize: batchSize, readConcern: readConcern)
        if lower != nil || upper != nil { options.hint = .document(Document(["_id": .int32(1)])) }
        options.min = lower.map { Document(["_id": $0]) }
        options.max = upper.map { Document(["_id": $0]) }
        return options
    }

    /// The options libmongoc's find_with_opts takes.
    var document: Document {
        var b = DocumentBuilder()
        if let sort { b.append("sort", .document(sort)) }
        if let projection { b.append("projection", .document(projection)) }
        if let batchSize { b.append("batchSize", .int64(Int64(batchSize))) }
        if let limit { b.append("limit", .int64(Int64(limit))) }
        if let skip { b.append("skip", .int64(Int64(skip))) }
        if let hint { b.append("hint", hint) }
        if let readConcern { b.append("readConcern", .document(Document(["level": .string(readConcern.level)]))) }
        if tailable { b.append("tailable", .bool(true)) }
        if awaitData { b.append("awaitData", .bool(true)) }
        if let maxAwaitTimeMS { b.append("maxAwaitTimeMS", .int64(Int64(maxAwaitTimeMS))) }
        if noCursorTimeout { b.append("noCursorTimeout", .bool(true)) }
        if let min { b.append("min", .document(min)) }
        if let max { b.append("max", .document(max)) }
        return b.build()
    }
}

/// The outcome of `insertMany`: how many documents went in and which did not.
public struct InsertResult: Sendable {
    /// One document the server refused (e.g. a duplicate `_id`), by its index in the input.
    public struct WriteError: Sendable, CustomStringConvertible {
        public var index: Int
        public var serverCode: Int
        public var message: String
        public var description: String { "document \(index): \(message) (server error \(serverCode))" }
    }

    public var insertedCount: Int
    public var writeErrors: [WriteError]
}
