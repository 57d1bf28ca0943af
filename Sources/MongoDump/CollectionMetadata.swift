import BSON

/// A collection's metadata as mongodump writes it to `<coll>.metadata.json` and to an
/// archive's prelude: options, index specifications, UUID, name and type.
///
/// Fields this type does not model are kept in `additionalFields`, so reading and
/// writing metadata loses nothing.
public struct CollectionMetadata: Sendable, Equatable {
    /// `createCollection` options (capped, validator, collation, viewOn/pipeline, ...).
    public var options: Document
    /// Index specifications (`{v, key, name, ...}`), as `listIndexes` returns them.
    public var indexes: [Document]
    /// The collection UUID as 32 hex digits, when the dump recorded it.
    public var uuid: String?
    /// The collection name, recorded by newer mongodump (file names may be escaped or truncated).
    public var collectionName: String?
    /// `"collection"`, `"view"` or `"timeseries"`; absent in dumps from older tools.
    public var type: String?
    /// Top-level fields other than the ones above, in their original order.
    public var additionalFields: Document

    public init(
        options: Document = Document(), indexes: [Document] = [], uuid: String? = nil,
        collectionName: String? = nil, type: String? = nil, additionalFields: Document = Document()
    ) {
        self.options = options
        self.indexes = indexes
        self.uuid = uuid
        self.collectionName = collectionName
        self.type = type
        self.additionalFields = additionalFields
    }

    /// Parses the Extended JSON of a metadata file or prelude entry.
    /// - Throws: `DumpError` with code `.badMetadata` when the text is not Extended JSON
    ///   or a field has the wrong type.
    public init(json: String) throws {
        let document: Document
        do {
            document = try ExtendedJSON.decode(json)
        } catch {
            throw DumpError(.badMetadata, "metadata is not valid Extended JSON: \(error.message)", underlying: error)
        }
        try self.init(document: document)
    }

    /// Reads metadata from its BSON form.
    /// - Throws: `DumpError` with code `.badMetadata` when a known field has the wrong type.
    public init(document: Document) throws {
        self.init()
        var extra = DocumentBuilder()
        var hasExtra = false
        for (key, value) in document.elements {
            switch key {
            case "options":
                guard let d = value.documentValue else { throw Self.wrongType(key, "a document", value) }
                options = d
            case "indexes":
                guard let array = value.arrayValue else { throw Self.wrongType(key, "an array", value) }
                indexes = try array.map { element in
                    guard let d = element.documentValue else { throw Self.wrongType("indexes[]", "a document", element) }
                    return d
                }
            case "uuid":
                guard let s = value.stringValue else { throw Self.wrongType(key, "a string", value) }
                uuid = s
            case "collectionName":
                guard let s = value.stringValue else { throw Self.wrongType(key, "a string", value) }
                collectionName = s
            case "type":
                guard let s = value.stringValue else { throw Self.wrongType(key, "a string", value) }
                type = s
            default:
                extra.append(key, value)
                hasExtra = true
            }
        }
        if hasExtra { additionalFields = extra.build() }
    }

    private static func wrongType(_ key: String, _ expected: String, _ value: BSONValue) -> DumpError {
        DumpError(.badMetadata, "metadata field \"\(key)\" should be \(expected), not BSON type \(value.type)")
    }

    /// The metadata as a document, fields in mongodump's order: options, indexes, uuid,
    /// collectionName, type, then any others.
    public var document: Document {
        var b = DocumentBuilder()
        b.append("options", options)
        b.append("indexes", .array(indexes.map { .document($0) }))
        if let uuid { b.append("uuid", .string(uuid)) }
        if let collectionName { b.append("collectionName", .string(collectionName)) }
        if let type { b.append("type", .string(type)) }
        additionalFields.forEachElement { b.append(element: $0) }
        return b.build()
    }

    /// Canonical Extended JSON, which keeps every number's BSON type (mongorestore reads it).
    /// - Throws: `DumpError` with code `.badMetadata` if libbson cannot render a value.
    public func json() throws -> String {
        do {
            return try ExtendedJSON.encode(document, canonical: true)
        } catch {
            throw DumpError(.badMetadata, "cannot render metadata as Extended JSON", underlying: error)
        }
    }

    /// What the namespace holds: `type` when present, else a view if its options name `viewOn`.
    public var kind: DumpNamespace.Kind {
        switch type {
        case "view": return .view
        case "timeseries": return .timeseries
        case "collection": return .collection
        default: return options["viewOn"] != nil ? .view : .collection
        }
    }
}
