import BSON
import Foundation
import Recovery
import Repository

/// What every collection should hold at a drilled point, computed from the repository
/// alone, independently of the restore path: the snapshot's leaves streamed in `_id`
/// order, merged with the net effect of the oplog from the snapshot's start to the
/// point on the `_id`s it touched.
///
/// Memory: the touched documents' final versions (and their index definitions), never a
/// whole collection. Not thread-safe; build and read it from one thread.
public final class DrillExpectation {
    /// A touched document's final state.
    enum Change {
        case document(Document)
        case deleted
    }

    /// One collection's expected state (a view has no documents, only a definition).
    final class Collection {
        /// The snapshot tree its documents start from (nil: created after the snapshot).
        var base: ManifestCollection?
        /// Final states of the `_id`s the oplog touched, keyed by `_id` (type byte + value).
        var changes: [[UInt8]: Change] = [:]
        /// Index definitions by name.
        var indexes: [String: Document] = [:]
        var isView = false
        /// A capped collection's limits: past them the server evicts the oldest documents.
        var capped: (size: Int64, max: Int64?)?
        /// Entries that touched it, for the report.
        var entries = 0
        init() {}
    }

    let repository: Repository
    /// Live collections by source namespace, after the whole oplog range.
    var collections: [String: Collection] = [:]
    /// Entries read from the oplog range.
    public private(set) var entriesRead = 0
    /// The newest entry read: the point the restore must reach.
    public private(set) var lastEntry: OplogTime?
    /// Bytes of blobs read (leaves looked up during replay, oplog blobs), decrypted.
    public private(set) var bytesRead: UInt64 = 0
    /// Things the model does not follow (e.g. `collMod`), named so the report can say so.
    public private(set) var unmodelled: [String] = []

    private var pendingTransactions: [[UInt8]: [Document]] = [:]
    private var leafCache: [BlobID: [UInt8]] = [:]
    private var directories: [BlobID: [TreeEntry]] = [:]

    init(repository: Repository) {
        self.repository = repository
    }

    /// Builds the expectation for `manifest` plus the oplog of `plan`.
    /// - Throws: `DrillProblem` naming the blob and what it held (a collection's
    ///   metadata, a leaf, a segment) when the repository cannot deliver it, or an oplog
    ///   entry the model cannot read.
    static func build(repository: Repository, manifest: SnapshotManifest, plan: RestorePlan) throws -> DrillExpectation {
        let expectation = DrillExpectation(repository: repository)
        for entry in manifest.collections where DrillExpectation.isRestored(entry.database, entry.collection) {
            let c = Collection()
            c.base = entry.root == nil ? nil : entry
            c.isView = entry.type == "view"
            let metadata: Document
            do {
                metadata = try Document(bytes: try repository.loadBlob(entry.metadata))
            } catch {
                throw DrillProblem(collection: entry.namespace, blob: entry.metadata.hex,
                                   message: "cannot read the metadata of \(entry.namespace) (blob \(entry.metadata.hex)): \(error)")
            }
            for case .document(let spec) in metadata["indexes"]?.arrayValue ?? [] {
                if let name = spec["name"]?.stringValue { c.indexes[name] = spec }
            }
            if c.isView { c.indexes = [:] }
            if let options = metadata["options"]?.documentValue { c.capped = DrillExpectation.cappedLimits(options) }
            expectation.collections[entry.namespace] = c
        }
        try expectation.replay(manifest: manifest, plan: plan)
        // Every collection's stream now, before the restore: this reads every leaf, so
        // damage is named with its collection even when the restore fails on it.
        for ns in expectation.namespaces where !expectation.isView(ns) {
            do {
                expectation.digests[ns] = try expectation.digest(ns)
            } catch let problem as DrillProblem {
                expectation.problems[ns] = problem
            }
        }
        return expectation
    }

    /// Per collection: expected count and MD5, and the checksum of its snapshot base.
    private(set) var digests: [String: Digest] = [:]
    /// Collections whose stream could not be read (a damaged leaf), with the damage.
    private(set) var problems: [String: DrillProblem] = [:]

    /// Collections a restore writes: what `DataLoader` and replay skip is skipped here too
    /// (`system.*`, the `local` and `config` databases).
    static func isRestored(_ database: String, _ collection: String) -> Bool {
        !(collection.hasPrefix("system.") || database == "local" || database == "config")
    }

    // MARK: The oplog's net effect

    private func replay(manifest: SnapshotManifest, plan: RestorePlan) throws {
        var last: OplogTime?
        var done = false
        func read(_ blob: BlobID, what: String) throws {
            let bytes: [UInt8]
            do {
                bytes = try repository.loadBlob(blob)
            } catch {
                throw DrillProblem(collection: nil, blob: blob.hex, message: "cannot read \(what) (blob \(blob.hex)): \(error)")
            }
            bytesRead += UInt64(bytes.count)
            try TreeReader.forEachRecord(in: bytes, id: blob) { raw in
                guard !done else { return }
                let entry = Document(trustedBytes: Array(raw))
                guard let ts = entry["ts"]?.timestampValue else {
                    throw DrillProblem(collection: nil, blob: blob.hex, message: "an oplog entry in \(what) (blob \(blob.hex)) has no ts")
                }
                let time = OplogTime(t: ts.seconds, i: ts.increment)
                if let from = plan.from, time < from { return }
                if let last, time <= last { return }
                if let limit = plan.limit, !limit.admits(time) {
                    done = true
                    return
                }
                last = time
                entriesRead += 1
                try apply(entry, at: time)
            }
        }
        for chunk in manifest.oplog where !done {
            if let limit = plan.limit, !limit.admits(chunk.first) { break }
            try read(chunk.blob, what: "the snapshot's oplog \(chunk.first)...\(chunk.last)")
        }
        for segment in plan.segments where !done {
            if let last, segment.last <= last { continue }
            if let limit = plan.limit, !limit.admits(segment.first) { break }
            try read(segment.blob, what: "oplog segment \(segment.first)...\(segment.last)")
        }
        lastEntry = last
    }

    private func apply(_ entry: Document, at time: OplogTime) throws {
        guard let op = entry["op"]?.stringValue, let ns = entry["ns"]?.stringValue else { return }
        let dot = ns.firstIndex(of: ".") ?? ns.endIndex
        let database = String(ns[..<dot])
        let collection = dot < ns.endIndex ? String(ns[ns.index(after: dot)...]) : ""
        switch op {
        case "i", "u", "d":
            guard DrillExpectation.isRestored(database, collection) else { return }
            try applyCRUD(op, entry, ns: ns, at: time)
        case "c":
            guard let o = entry["o"]?.documentValue, let command = o.keys.first else { return }
            try applyCommand(command, o, entry: entry, database: database, at: time)
        default:
            return  // "n": no-ops
        }
    }

    private func collection(_ ns: String) -> Collection {
        if let c = collections[ns] { return c }
        // An insert creates its collection implicitly.
        let c = Collection()
        c.indexes = ["_id_": Document(pairs: [("v", .int32(2)), ("key", .document(Document(pairs: [("_id", .int32(1))]))), ("name", .string("_id_"))])]
        collections[ns] = c
        return c
    }

    private func applyCRUD(_ op: String, _ entry: Document, ns: String, at time: OplogTime) throws {
        guard let o = entry["o"]?.documentValue else {
            throw DrillProblem(collection: ns, blob: nil, message: "oplog entry ts:\(time) on \(ns) has no `o`")
        }
        let c = collection(ns)
        c.entries += 1
        switch op {
        case "i":
            guard let id = o.idKey else {
                throw DrillProblem(collection: ns, blob: nil, message: "insert ts:\(time) on \(ns) has no _id")
            }
            c.changes[id.bytes] = .document(o)
        case "d":
            guard let id = o["_id"] else {
                throw DrillProblem(collection: ns, blob: nil, message: "delete ts:\(time) on \(ns) has no _id")
            }
            c.changes[BSONKey(id).bytes] = .deleted
        default:
            guard let id = entry["o2"]?.documentValue?["_id"] else {
                throw DrillProblem(collection: ns, blob: nil, message: "update ts:\(time) on \(ns) has no o2._id")
            }
            let key = BSONKey(id).bytes
            let current: Document?
            switch c.changes[key] {
            case .document(let d): current = d
            case .deleted: current = nil
            case nil: current = try baseDocument(c, key: key, ns: ns)
            }
            // An update of a document that is gone is skipped, as oplog application
            // does: the snapshot was fuzzy and a later delete follows.
            guard let current else { return }
            if case .document(let diff)? = o["diff"], o["$v"]?.int64Value == 2 {
                do {
                    c.changes[key] = .document(try DocumentDiff.apply(diff, to: current))
                } catch {
                    throw DrillProblem(collection: ns, blob: nil, message: "update ts:\(time) on \(ns): \(error)")
                }
            } else if o.keys.contains(where: { $0.hasPrefix("$") }) {
                throw DrillProblem(collection: ns, blob: nil, message: "update ts:\(time) on \(ns) uses operators (\(o.keys.joined(separator: ", "))) the drill cannot model; only $v:2 diffs and replacements are verified")
            } else {
                // A replacement keeps the `_id`, first, as the server stores it.
                var pairs: [(String, BSONValue)] = [("_id", id)]
                pairs += o.elements.filter { $0.key != "_id" }.map { ($0.key, $0.value) }
                c.changes[key] = .document(Document(pairs: pairs))
            }
        }
    }

    private func applyCommand(_ command: String, _ o: Document, entry: Document, database: String, at time: OplogTime) throws {
        let name = o[command]?.stringValue
        let ns = name.map { "\(database).\($0)" }
        switch command {
        case "create":
            guard let ns, DrillExpectation.isRestored(database, name!), collections[ns] == nil else { return }
            let c = collection(ns)
            if o["viewOn"] != nil {
                c.isView = true
                c.indexes = [:]
            }
            c.capped = DrillExpectation.cappedLimits(o)
        case "convertToCapped":
            guard let ns, let c = collections[ns], let size = o["size"]?.int64Value else { return }
            c.capped = (size, nil)
        case "drop":
            if let ns { collections[ns] = nil }
        case "dropDatabase":
            for key in collections.keys where key.hasPrefix(database + ".") { collections[key] = nil }
        case "renameCollection":
            guard let from = name, let to = o["to"]?.stringValue else { return }
            let moved = collections.removeValue(forKey: from)
            collections[to] = nil
            let parts = to.split(separator: ".", maxSplits: 1)
            if let moved, parts.count == 2, DrillExpectation.isRestored(String(parts[0]), String(parts[1])) {
                collections[to] = moved
            }
        case "createIndexes":
            guard let ns, let c = collections[ns] else { return }
            let spec = Document(pairs: o.elements.filter { $0.key != "createIndexes" }.map { ($0.key, $0.value) })
            if let index = spec["name"]?.stringValue { c.indexes[index] = spec }
        case "commitIndexBuild":
            guard let ns, let c = collections[ns] else { return }
            for case .document(let spec) in o["indexes"]?.arrayValue ?? [] {
                if let index = spec["name"]?.stringValue { c.indexes[index] = spec }
            }
        case "dropIndexes", "deleteIndexes":
            guard let ns, let c = collections[ns] else { return }
            switch o["index"] {
            case .string(let index)? where index == "*": c.indexes = c.indexes.filter { $0.key == "_id_" }
            case .string(let index)?: c.indexes[index] = nil
            case .document(let key)?: c.indexes = c.indexes.filter { $0.value["key"]?.documentValue != key }
            default: break
            }
        case "applyOps":
            guard let inner = o["applyOps"]?.arrayValue else { return }
            let operations = inner.compactMap(\.documentValue)
            if let key = transactionKey(entry), o["partialTxn"] == .bool(true) || o["prepare"] == .bool(true) {
                pendingTransactions[key, default: []].append(contentsOf: operations)
                return
            }
            let held = transactionKey(entry).flatMap { pendingTransactions.removeValue(forKey: $0) } ?? []
            for operation in held + operations { try apply(operation, at: time) }
        case "commitTransaction":
            guard let key = transactionKey(entry), let held = pendingTransactions.removeValue(forKey: key) else { return }
            for operation in held { try apply(operation, at: time) }
        case "abortTransaction":
            if let key = transactionKey(entry) { pendingTransactions[key] = nil }
        case "startIndexBuild", "abortIndexBuild":
            return
        case "collMod" where o["index"] == nil:
            return  // validators and options: not compared, so nothing to model
        default:
            if !unmodelled.contains(command) { unmodelled.append(command) }
        }
    }

    /// `capped`, `size` and `max` of collection options or a `create` command.
    static func cappedLimits(_ options: Document) -> (size: Int64, max: Int64?)? {
        guard options["capped"] == .bool(true), let size = options["size"]?.int64Value else { return nil }
        return (size, options["max"]?.int64Value)
    }

    /// The session and transaction number of a transaction's entry.
    private func transactionKey(_ entry: Document) -> [UInt8]? {
        guard case .document(let lsid)? = entry["lsid"], let txn = entry["txnNumber"]?.int64Value else { return nil }
        let id = lsid["id"].map { Document(pairs: [("id", $0)]) } ?? lsid
        return id.bytes + withUnsafeBytes(of: txn.littleEndian, Array.init)
    }

    /// The leaves of the tree at `root`, read once per drill.
    private func treeLeaves(root: BlobID, namespace: String) throws -> [TreeEntry] {
        if let known = directories[root] { return known }
        do {
            let leaves = try TreeReader(load: repository.loadBlob).leaves(root: root)
            directories[root] = leaves
            return leaves
        } catch {
            throw DrillProblem(collection: namespace, blob: root.hex, message: "cannot read the tree of \(namespace) (root \(root.hex)): \(error)")
        }
    }

    /// The snapshot's version of a document, looked up through the tree by `_id`.
    private func baseDocument(_ c: Collection, key: [UInt8], ns: String) throws -> Document? {
        guard let base = c.base, let root = base.root else { return nil }
        let leaves = try treeLeaves(root: root, namespace: base.namespace)
        let directory = LeafDirectory(entries: leaves) { a, b in compareKeys(BSONKey(trustedBytes: a), BSONKey(trustedBytes: b)) }
        guard let leaf = directory.leaf(covering: key) else { return nil }
        let bytes = try loadLeaf(leaf, collection: base.namespace)
        let wanted = BSONKey(trustedBytes: key)
        var found: Document?
        try TreeReader.forEachRecord(in: bytes, id: leaf) { raw in
            guard found == nil else { return }
            let d = Document(trustedBytes: Array(raw))
            if let id = d.idKey, id == wanted { found = d }
        }
        return found
    }

    /// A leaf's bytes, through a small cache (updates cluster in hot leaves).
    private func loadLeaf(_ leaf: BlobID, collection: String) throws -> [UInt8] {
        if let cached = leafCache[leaf] { return cached }
        let bytes: [UInt8]
        do {
            bytes = try repository.loadBlob(leaf)
        } catch {
            throw DrillProblem(collection: collection, blob: leaf.hex, message: "cannot read a leaf of \(collection) (blob \(leaf.hex)): \(error)")
        }
        bytesRead += UInt64(bytes.count)
        if leafCache.count >= 64 { leafCache.removeAll(keepingCapacity: true) }
        leafCache[leaf] = bytes
        return bytes
    }

    // MARK: The expected stream

    /// The namespaces (source names) that exist at the point, sorted.
    public var namespaces: [String] { collections.keys.sorted() }

    /// Streams the expected documents of `ns` in `_id` order: the snapshot's leaves
    /// merged with the oplog's final versions of the touched `_id`s.
    ///
    /// - Parameter body: called with each document; return false to stop.
    /// - Returns: the checksum of the snapshot's own documents, computed in the form the
    ///   manifest recorded (for the self-test against it), or nil when there is no base or
    ///   the stream stopped early.
    /// - Throws: `DrillProblem` for a leaf the repository cannot deliver.
    @discardableResult
    func stream(_ ns: String, _ body: (Document) throws -> Bool) throws -> String? {
        guard let c = collections[ns], !c.isView else { return nil }
        let pending = c.changes.keys.map { BSONKey(trustedBytes: $0) }.sorted()
        var next = 0
        var stopped = false
        // Emits touched `_id`s ordered before `key` (all of them when nil).
        func emitChanges(before key: BSONKey?) throws {
            while !stopped, next < pending.count, key.map({ pending[next] < $0 }) ?? true {
                if case .document(let d)? = c.changes[pending[next].bytes] { stopped = try !body(d) }
                next += 1
            }
        }
        var baseHash: RecordedChecksum?
        if let base = c.base, let root = base.root {
            baseHash = RecordedChecksum(like: base.checksum)
            let leaves = try treeLeaves(root: root, namespace: base.namespace)
            for leaf in leaves where !stopped {
                let bytes = try loadLeaf(leaf.child, collection: base.namespace)
                try TreeReader.forEachRecord(in: bytes, id: leaf.child) { raw in
                    baseHash?.add(raw)
                    guard !stopped else { return }
                    let d = Document(trustedBytes: Array(raw))
                    guard let key = d.idKey else { return }
                    try emitChanges(before: key)
                    guard !stopped else { return }
                    if next < pending.count, pending[next] == key {
                        if case .document(let changed)? = c.changes[pending[next].bytes] { stopped = try !body(changed) }
                        next += 1
                    } else {
                        stopped = try !body(d)
                    }
                }
            }
        }
        try emitChanges(before: nil)
        return stopped ? nil : baseHash?.finalize()
    }

    /// The expected count and MD5 (as `dbHash` computes it) of `ns`, and the self-test
    /// hash of its snapshot base.
    func digest(_ ns: String) throws -> Digest {
        let md5 = StreamingDigest(.md5)
        var count: UInt64 = 0
        var bytes: UInt64 = 0
        let base = try stream(ns) { d in
            md5.update(d.bytes)
            count += 1
            bytes += UInt64(d.byteCount)
            return true
        }
        return Digest(count: count, md5: md5.finalize(), bytes: bytes, baseChecksum: base)
    }

    /// A collection's expected content, summarized.
    struct Digest {
        var count: UInt64
        var md5: String
        var bytes: UInt64
        /// The checksum of the snapshot's own documents, for the self-test against the manifest.
        var baseChecksum: String?
    }

    /// Why a capped collection cannot be checked: it holds more than its limits, so the
    /// server evicted documents the model keeps. Nil when it can be.
    func cappedOverflow(_ ns: String, _ digest: Digest) -> String? {
        guard let limits = collections[ns]?.capped else { return nil }
        if digest.bytes > UInt64(max(0, limits.size)) || limits.max.map({ digest.count > UInt64(max(0, $0)) }) == true {
            return "\(ns) is capped (\(limits.size) bytes\(limits.max.map { ", \($0) documents" } ?? "")) and its expected \(digest.count) documents (\(digest.bytes) bytes) exceed that: the server evicts the oldest ones, which the drill does not model"
        }
        return nil
    }

    func indexes(_ ns: String) -> [String: Document] { collections[ns]?.indexes ?? [:] }
    func isView(_ ns: String) -> Bool { collections[ns]?.isView ?? false }
    func base(_ ns: String) -> ManifestCollection? { collections[ns]?.base }
    func touched(_ ns: String) -> (documents: Int, entries: Int) {
        (collections[ns]?.changes.count ?? 0, collections[ns]?.entries ?? 0)
    }
}

/// Damage or an unreadable entry met while computing the expected state, with the
/// collection and blob involved.
struct DrillProblem: Error, CustomStringConvertible {
    var collection: String?
    var blob: String?
    var message: String
    var description: String { message }
}

/// A manifest's capture-time checksum recomputed from the snapshot's documents, in the
/// form it was recorded: a `DocumentChecksum`, or, for manifests written before it, the
/// MD5 of the documents in `_id` order.
struct RecordedChecksum {
    private var sum = DocumentChecksum()
    private let md5: StreamingDigest?

    init(like recorded: String) { md5 = recorded.hasPrefix(DocumentChecksum.prefix) ? nil : StreamingDigest(.md5) }

    /// Adds the next document (in `_id` order, which the MD5 form needs).
    mutating func add(_ document: UnsafeRawBufferPointer) {
        if let md5 { md5.update(document) } else { sum.add(document) }
    }

    func finalize() -> String { md5?.finalize() ?? sum.description }
}
