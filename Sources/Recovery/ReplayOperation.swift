import BSON

/// One CRUD oplog operation prepared for the target: renamed, without `ui`, in the
/// form the replay mode sends (an `applyOps` entry, or a CRUD statement).
struct ReplayOperation: Sendable {
    enum Statement: Sendable {
        /// Upsert by `_id`: an insert (replacement) or an old-style update (operators or replacement).
        case upsert(q: Document, u: Document)
        case delete(q: Document)
        /// A `$v:2` diff of the document with this `_id`.
        case diff(id: BSONValue, diff: Document)
    }

    let kind: String
    let target: Namespace
    let ts: Timestamp
    let record: Int
    let sourceNamespace: String
    let id: BSONValue
    /// The applier this operation belongs to (hash of namespace and `_id`).
    let partition: UInt64
    /// The `applyOps` form: `{op, ns, o, o2}` (no `ui`: UUIDs differ on the target).
    let entry: Document
    let statement: Statement
    var bytes: Int { entry.byteCount }

    init(_ raw: Document, kind: String, source: Namespace, target: Namespace, ts: Timestamp, record: Int,
         mapping: NamespaceMapping, mode: OplogApplier.Mode) throws(RestoreError) {
        self.kind = kind
        self.target = target
        self.ts = ts
        self.record = record
        sourceNamespace = source.description
        guard var o = raw["o"]?.documentValue else {
            throw RestoreError(.invalidEntry, "the \(kind) entry at \(ts) on \(source) has no o field")
        }
        var o2 = raw["o2"]?.documentValue
        // View definitions are keyed by "db.view": follow a database rename.
        if target.collection == "system.views" && target.database != source.database {
            if kind == "u" { o2 = o2.map { Self.renamingViewID($0, mapping) } } else { o = Self.renamingViewID(o, mapping) }
        }
        let idValue = kind == "u" ? o2?["_id"] : o["_id"]
        guard let idValue else {
            throw RestoreError(.invalidEntry, "the \(kind) entry at \(ts) on \(source) names no _id (\(kind == "u" ? "o2._id" : "o._id"))")
        }
        id = idValue
        partition = Self.hash(namespace: target, id: idValue)
        var b = DocumentBuilder()
        b.append("op", .string(kind))
        b.append("ns", .string(target.description))
        b.append("o", .document(o))
        if let o2 { b.append("o2", .document(o2)) }
        entry = b.build()
        let q = Self.idFilter(idValue)
        switch kind {
        case "i":
            statement = .upsert(q: q, u: o)
        case "d":
            statement = .delete(q: q)
        default:
            if o["$v"]?.int64Value == 2, let diff = o["diff"]?.documentValue {
                statement = .diff(id: idValue, diff: diff)
            } else if o.keys.contains(where: { $0.hasPrefix("$") }) {
                // An old-style ($v:1) update: its operators as they are, without $v.
                statement = .upsert(q: q, u: Document(pairs: o.elements.filter { $0.key != "$v" }.map { ($0.key, $0.value) }))
            } else {
                statement = .upsert(q: q, u: o)
            }
        }
    }

    /// `{_id: value}`: an exact match, embedded-document `_id`s included.
    static func idFilter(_ id: BSONValue) -> Document {
        Document(pairs: [("_id", id)])
    }

    static func renamingViewID(_ d: Document, _ mapping: NamespaceMapping) -> Document {
        guard let name = d["_id"]?.stringValue, let ns = Namespace(name) else { return d }
        let mapped = mapping.rename(ns).description
        return Document(pairs: d.elements.map { $0.key == "_id" ? ("_id", .string(mapped)) : ($0.key, $0.value) })
    }

    /// FNV-1a of the namespace and the `_id`, numbers compared by value as MongoDB does
    /// (1, 1L and 1.0 are one `_id`), so every entry of a document reaches one applier.
    static func hash(namespace: Namespace, id: BSONValue?) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for b in bytes {
                h ^= UInt64(b)
                h &*= 0x100_0000_01b3
            }
        }
        mix(namespace.description.utf8)
        mix([0])
        guard let id else { return h }
        switch id {
        case .int32(let v): withUnsafeBytes(of: Double(v).bitPattern) { mix($0) }
        case .int64(let v): withUnsafeBytes(of: Double(v).bitPattern) { mix($0) }
        case .double(let v): withUnsafeBytes(of: (v == 0 ? 0 : v).bitPattern) { mix($0) }
        default: mix(BSONKey(id).bytes)
        }
        return h
    }
}

/// A DDL oplog entry prepared for the target: names mapped, in the form each mode sends.
struct DDLCommand: Sendable {
    /// The command name (`create`, `drop`, `renameCollection`, ...).
    private(set) var name: String
    /// The target database.
    let database: String
    /// The oplog command document with names mapped.
    let o: Document
    /// The collection the command is about (for `dropDatabase`: `db.$cmd`).
    let target: Namespace
    let renameTarget: Namespace?
    let ts: Timestamp

    /// Commands whose first field names a collection of the entry's database.
    static let collectionCommands: Set<String> = [
        "create", "drop", "collMod", "createIndexes", "commitIndexBuild", "dropIndexes", "deleteIndexes",
        "convertToCapped", "emptycapped",
    ]

    /// Nil when the command is about namespaces the restore does not write.
    /// - Throws: `RestoreError` `.unsupported` when filters or renames split what the
    ///   command touches (a rename into the restored set from outside it, a
    ///   `dropDatabase` of a partly restored database).
    init?(o: Document, database db: String, ts: Timestamp, mapping: NamespaceMapping, includeAdminSystem: Bool) throws(RestoreError) {
        guard let first = o.elements.first else { return nil }
        name = first.key
        self.ts = ts
        func replacingFirst(_ value: BSONValue) -> Document {
            Document(pairs: o.elements.enumerated().map { $0.offset == 0 ? ($0.element.key, value) : ($0.element.key, $0.element.value) })
        }
        if Self.collectionCommands.contains(name) {
            guard let collection = first.value.stringValue else {
                throw RestoreError(.invalidEntry, "the \(name) entry at \(ts) has no collection name")
            }
            let source = Namespace(database: db, collection: collection)
            guard !OplogApplier.isInternal(source, includeAdminSystem: includeAdminSystem),
                  let mapped = mapping.map(source) else { return nil }
            target = mapped
            database = mapped.database
            self.o = replacingFirst(.string(mapped.collection))
            renameTarget = nil
            return
        }
        switch name {
        case "renameCollection":
            guard let fromText = first.value.stringValue, let from = Namespace(fromText),
                  let toText = o["to"]?.stringValue, let to = Namespace(toText) else {
                throw RestoreError(.invalidEntry, "the renameCollection entry at \(ts) lacks its namespaces")
            }
            let fromInternal = OplogApplier.isInternal(from, includeAdminSystem: includeAdminSystem)
            let toInternal = OplogApplier.isInternal(to, includeAdminSystem: includeAdminSystem)
            let mappedFrom = fromInternal ? nil : mapping.map(from)
            let mappedTo = toInternal ? nil : mapping.map(to)
            switch (mappedFrom, mappedTo) {
            case (nil, nil):
                return nil
            case (let f?, let t?):
                target = f
                renameTarget = t
                database = f.database
                var b = DocumentBuilder()
                for (key, value) in o.elements {
                    switch key {
                    case "renameCollection": b.append(key, .string(f.description))
                    case "to": b.append(key, .string(t.description))
                    default: b.append(key, value)
                    }
                }
                self.o = b.build()
            case (let f?, nil):
                // Renamed out of the restored set: on the target it disappears.
                name = "drop"
                target = f
                renameTarget = nil
                database = f.database
                self.o = Document(["drop": .string(f.collection)])
            case (nil, _?):
                throw RestoreError(.unsupported, "the entry at \(ts) renames \(from), which this restore excludes, to \(to), which it restores: the data cannot be reproduced. Include \(from) too, or exclude \(to).")
            }
        case "dropDatabase":
            guard db != "local", db != "config" else { return nil }
            guard let mapped = mapping.mapDatabase(db) else {
                let probe = Namespace(database: db, collection: "\u{1}probe")
                if !mapping.includes(probe) { return nil }
                throw RestoreError(.unsupported, "the entry at \(ts) drops database \(db), which this restore only partly includes or splits across renames. Include or rename the whole database (\(db).*).")
            }
            database = mapped
            target = Namespace(database: mapped, collection: "$cmd")
            renameTarget = nil
            self.o = o
        default:
            guard db != "local", db != "config" else { return nil }
            guard let mapped = mapping.mapDatabase(db) else { return nil }
            database = mapped
            target = Namespace(database: mapped, collection: "$cmd")
            renameTarget = nil
            self.o = o
        }
    }

    /// `{op: "c", ns: "db.$cmd", o}` for `applyOps`.
    var applyOpsEntry: Document {
        Document(pairs: [("op", .string("c")), ("ns", .string("\(database).$cmd")), ("o", .document(o))])
    }

    /// The command to run in CRUD mode and its database, or nil for a command with
    /// nothing to do there.
    /// - Throws: `RestoreError` `.unsupported` for commands CRUD mode cannot translate.
    func crudCommand() throws(RestoreError) -> (database: String, command: Document)? {
        let rest = o.elements.dropFirst().filter { !["idIndex", "stayTemp"].contains($0.key) }.map { ($0.key, $0.value) }
        switch name {
        case "create", "collMod", "convertToCapped", "emptycapped":
            return (database, Document(pairs: [(name, .string(target.collection))] + rest))
        case "drop":
            return (database, Document(["drop": .string(target.collection)]))
        case "createIndexes":
            return (database, Document(["createIndexes": .string(target.collection), "indexes": .array([.document(Document(pairs: rest))])]))
        case "commitIndexBuild":
            return (database, Document(["createIndexes": .string(target.collection), "indexes": o["indexes"] ?? .array([])]))
        case "dropIndexes", "deleteIndexes":
            return (database, Document(["dropIndexes": .string(target.collection), "index": o["index"] ?? .string("*")]))
        case "renameCollection":
            var dropTarget = false
            if let value = o["dropTarget"] { dropTarget = value != .bool(false) }
            return ("admin", Document(["renameCollection": .string(target.description),
                                       "to": .string(renameTarget?.description ?? ""), "dropTarget": .bool(dropTarget)]))
        case "dropDatabase":
            return (database, Document(["dropDatabase": .int32(1)]))
        default:
            throw RestoreError(.unsupported, "the \(name) command at \(ts) cannot be replayed in CRUD mode; restore into a replica set that allows applyOps, or to a time before it")
        }
    }

    /// Server errors that mean "already done": replay may repeat DDL after a resume.
    func tolerates(_ serverCode: Int?) -> Bool {
        guard let code = serverCode else { return false }
        switch name {
        case "create": return code == 48  // NamespaceExists
        case "drop", "collMod", "renameCollection", "convertToCapped", "emptycapped": return code == 26
        case "dropIndexes", "deleteIndexes": return code == 26 || code == 27  // IndexNotFound
        case "createIndexes", "commitIndexBuild": return code == 68 || code == 85 || code == 86
        default: return false
        }
    }
}
