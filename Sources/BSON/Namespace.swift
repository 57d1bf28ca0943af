/// A database and collection, as in `db.collection`.
///
/// Shared by the layers that name collections (the Mongo client, the dump formats,
/// capture and recovery), so one value travels from a listing to a dump to a restore.
public struct Namespace: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var database: String
    public var collection: String

    public init(database: String, collection: String) {
        self.database = database
        self.collection = collection
    }

    /// Parses `db.coll`; the collection part may contain dots, as in `local.oplog.rs`.
    public init?(_ text: String) {
        guard let dot = text.firstIndex(of: "."), dot != text.startIndex else { return nil }
        let collection = text[text.index(after: dot)...]
        guard !collection.isEmpty else { return nil }
        self.init(database: String(text[..<dot]), collection: String(collection))
    }

    public static func < (a: Namespace, b: Namespace) -> Bool {
        (a.database, a.collection) < (b.database, b.collection)
    }

    public var description: String { database.isEmpty ? collection : "\(database).\(collection)" }
}
