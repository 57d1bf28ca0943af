import BSON

/// What a server says about itself and its replica set (`hello`, `buildInfo`, and
/// whether `local.oplog.rs` exists).
public struct ServerInfo: Sendable {
    /// The replica set name; nil for a standalone server.
    public var setName: String?
    /// The primary's `host:port`, as the server sees it.
    public var primary: String?
    /// The members the server lists (`hosts`).
    public var hosts: [String]
    /// The `host:port` that answered (`me`), when reported.
    public var me: String?
    public var isWritablePrimary: Bool
    public var isSecondary: Bool
    public var maxWireVersion: Int
    /// The server's version (`buildInfo.version`), e.g. `7.0.14`; "unknown" if not reported.
    public var version: String
    /// True when `local.oplog.rs` exists.
    public var hasOplog: Bool
    /// The primary's election id (replica sets only).
    public var electionID: ObjectID?
    /// The term of the last write (`lastWrite.opTime.t`), when reported.
    public var term: Int64?
    /// The last write's optime (`lastWrite.opTime.ts`), when reported.
    public var lastWrite: Timestamp?
    /// The raw `hello` reply, for anything not above.
    public var hello: Document

    public var isReplicaSet: Bool { setName != nil }

    /// Throws `noOplog` unless the server keeps an oplog to capture from.
    /// - Throws: `MongoError` `.noOplog`, saying why and what to do.
    public func requireOplog(hosts: String) throws(MongoError) {
        guard !hasOplog else { return }
        if setName == nil {
            throw MongoError(.noOplog, "the server at \(hosts) is not a replica set member, so it keeps no oplog (local.oplog.rs) and point-in-time capture is impossible. Run mongod with --replSet and initiate the set (a one-node replica set is enough).")
        }
        throw MongoError(.noOplog, "the replica set member at \(hosts) has no local.oplog.rs (not initiated yet, or an arbiter); point-in-time capture needs a data-bearing member with an oplog.")
    }

    /// Throws `notReplicaSet` for a standalone server.
    /// - Throws: `MongoError` `.notReplicaSet`.
    public func requireReplicaSet(hosts: String) throws(MongoError) {
        guard setName == nil else { return }
        throw MongoError(.notReplicaSet, "the server at \(hosts) is a standalone server, not a replica set member. Run mongod with --replSet and initiate the set.")
    }
}

/// One entry of `listDatabases`.
public struct DatabaseInfo: Sendable, Hashable {
    public var name: String
    public var sizeOnDisk: Int64
    public var empty: Bool
}

/// One entry of `listCollections`, with everything needed to recreate the collection.
public struct CollectionInfo: Sendable {
    public enum Kind: String, Sendable {
        case collection, view, timeseries
    }

    public var name: String
    /// `collection`, `view` or `timeseries`; other types are kept as `.collection` with `rawType` set.
    public var kind: Kind
    /// The type string as the server sent it.
    public var rawType: String
    /// Creation options (capped, size, validator, collation, viewOn, pipeline, ...).
    public var options: Document
    /// `info.uuid` (binary subtype 4 on MongoDB; other servers may use another type).
    public var uuid: BSONValue?
    public var readOnly: Bool
    /// The `_id` index spec, when the server reports it.
    public var idIndex: Document?
    /// The whole listCollections document.
    public var raw: Document

    init(_ d: Document) throws(MongoError) {
        guard let name = d["name"]?.stringValue else {
            throw MongoError(.malformedReply, "a listCollections entry has no name: \(d)")
        }
        self.name = name
        rawType = d["type"]?.stringValue ?? "collection"
        kind = Kind(rawValue: rawType) ?? .collection
        options = d["options"]?.documentValue ?? Document()
        let info = d["info"]?.documentValue
        uuid = info?["uuid"]
        readOnly = info?["readOnly"]?.boolValue ?? false
        idIndex = d["idIndex"]?.documentValue
        raw = d
    }
}
