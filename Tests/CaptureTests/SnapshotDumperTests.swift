import BSON
import Foundation
import Logging
import Mongo
import MongoDump
import Repository
import Synchronization
import Testing
import TestSupport
@testable import Capture

/// `SnapshotDumper` against the replica-set simulator and nx-27017.
@Suite(.serialized)
struct SnapshotDumperTests {
    static let logger = Logger(label: "test")

    func server(_ kind: ServerKind = .simulator, standalone: Bool = false) throws -> ServerProcess {
        if let reason = ServerProcess.unavailableReason(kind) { try Test.cancel(Comment(rawValue: reason)) }
        return try ServerProcess(kind, standalone: standalone)
    }

    func client(_ server: ServerProcess) throws -> MongoClient {
        try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(2))
    }

    func backup(_ mongo: MongoClient, _ repository: Repository, snapshotOnly: Bool = false,
                filter: NamespaceFilter? = nil, split: Bool = false, batchSize: Int? = nil) throws -> BackupResult {
        let options = BackupOptions(filter: try filter ?? NamespaceFilter(), snapshotOnly: snapshotOnly, parallel: 3,
                                    splitThresholdBytes: split ? 0 : 64 << 20, rangeBytes: 4096, bufferBytes: 64 << 10,
                                    batchSize: batchSize)
        return try SnapshotDumper(client: mongo, repository: repository, logger: Self.logger).run(options)
    }

    /// Every collection's documents as stored, by namespace.
    func documents(_ repository: Repository, _ manifest: SnapshotManifest) throws -> [String: [Document]] {
        var out: [String: [Document]] = [:]
        let reader = TreeReader(load: repository.loadBlob)
        for c in manifest.collections {
            var docs: [Document] = []
            if let root = c.root {
                for leaf in try reader.leaves(root: root) {
                    try TreeReader.forEachRecord(in: try repository.loadBlob(leaf.child), id: leaf.child) {
                        docs.append(Document(trustedBytes: Array($0)))
                    }
                }
            }
            out[c.namespace] = docs
        }
        return out
    }

    func oplog(_ repository: Repository, _ manifest: SnapshotManifest) throws -> [Document] {
        var out: [Document] = []
        for chunk in manifest.oplog {
            try TreeReader.forEachRecord(in: try repository.loadBlob(chunk.blob), id: chunk.blob) {
                out.append(Document(trustedBytes: Array($0)))
            }
        }
        return out
    }

    func dbHash(_ mongo: MongoClient, _ database: String) throws -> [String: String] {
        let reply = try mongo.runCommand(Document(["dbHash": .int32(1)]), database: database)
        var out: [String: String] = [:]
        for (k, v) in reply["collections"]?.documentValue?.elements ?? [] { out[k] = v.stringValue }
        return out
    }

    /// Loads a snapshot into `target` (insertMany), then applies `entries` one by one
    /// with `applyOps`, `ui` stripped (the target's collections have other UUIDs).
    func restore(_ documents: [String: [Document]], entries: [Document], into target: MongoClient) throws {
        for (ns, docs) in documents where !docs.isEmpty {
            let result = try target.insertMany(docs, into: Namespace(ns)!)
            #expect(result.writeErrors.isEmpty)
        }
        try replay(entries, into: target)
    }

    func replay(_ entries: [Document], into target: MongoClient) throws {
        for entry in entries where entry["op"]?.stringValue != "n" {
            var b = DocumentBuilder()
            entry.forEachElement { if $0.key != "ui" { b.append(element: $0) } }
            _ = try target.runAdminCommand(Document(["applyOps": .array([.document(b.build())])]))
        }
    }

    // MARK: (a) content and metadata

    @Test("a backup holds every document in _id order, the metadata, and dbHash's checksums")
    func contentAndMetadata() throws {
        let source = try server()
        let mongo = try client(source)
        _ = try mongo.runCommand(Document([
            "create": .string("people"),
            "validator": .document(Document(["age": .document(Document(["$gte": .int32(0)]))])),
            "validationLevel": .string("moderate"), "validationAction": .string("warn"),
        ]), database: "clinic")
        var docs: [Document] = []
        for i in 0..<300 { docs.append(Document(["_id": .int32(Int32(i)), "age": .int32(Int32(i % 90)), "name": .string("p\(i)")])) }
        for i in 0..<200 { docs.append(Document(["_id": .string("s\(i)"), "age": .int32(7)])) }
        for i in 0..<200 {
            var bytes = [UInt8](repeating: 0, count: 12)
            bytes[8] = UInt8(i / 256); bytes[11] = UInt8(i % 256)
            docs.append(Document(["_id": .objectID(ObjectID(bytes: bytes)), "age": .int32(9)]))
        }
        docs.append(Document(["_id": .double(0.5), "age": .int32(1)]))
        docs.append(Document(["_id": .int64(1_000_000), "age": .int32(1)]))
        _ = try mongo.insertMany(docs.shuffled(), into: Namespace(database: "clinic", collection: "people"))
        _ = try mongo.runCommand(Document([
            "createIndexes": .string("people"),
            "indexes": .array([.document(Document(["key": .document(Document(["age": .int32(1)])), "name": .string("age_1")]))]),
        ]), database: "clinic")
        _ = try mongo.runCommand(Document([
            "create": .string("adults"), "viewOn": .string("people"),
            "pipeline": .array([.document(Document(["$match": .document(Document(["age": .document(Document(["$gte": .int32(18)]))]))]))]),
        ]), database: "clinic")
        _ = try mongo.insertMany((0..<50).map { Document(["_id": .int32(Int32($0)), "x": .string("y")]) },
                                 into: Namespace(database: "other", collection: "small"))
        _ = try mongo.insertMany([Document(["_id": .int32(1)])], into: Namespace(database: "skipped", collection: "c"))

        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        let clock = ContinuousClock()
        let began = clock.now
        let result = try backup(mongo, repository, filter: try NamespaceFilter(exclude: ["skipped"]), split: true)
        let took = clock.now - began
        #expect(result.pointInTime)
        #expect(result.record.start != nil && result.record.end != nil)
        #expect(result.splitCollections[Namespace(database: "clinic", collection: "people")] ?? 0 > 1)
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        #expect(manifest.collections.map(\.namespace) == ["clinic.adults", "clinic.people", "other.small"])

        let stored = try documents(repository, manifest)
        let expected = try mongo.find(Namespace(database: "clinic", collection: "people"), .idRange()).collect()
        #expect(stored["clinic.people"] == expected)
        #expect(stored["clinic.people"]?.count == docs.count)
        #expect(stored["other.small"]?.count == 50)
        // The capture-time checksum covers what the server held; the stored documents hash
        // as the server's dbHash does.
        #expect(manifest.collection("clinic.people")?.checksum == DocumentChecksum.of(expected.map(\.bytes)))
        #expect(manifest.collection("other.small")?.checksum == DocumentChecksum.of(stored["other.small"]!.map(\.bytes)))
        #expect(try repository.md5OfDocuments(manifest.collection("clinic.people")!) == (try dbHash(mongo, "clinic"))["people"])
        #expect(try repository.md5OfDocuments(manifest.collection("other.small")!) == (try dbHash(mongo, "other"))["small"])

        let people = try CollectionMetadata(document: Document(bytes: try repository.loadBlob(manifest.collection("clinic.people")!.metadata)))
        #expect(people.options["validationLevel"]?.stringValue == "moderate")
        #expect(people.options["validator"] != nil)
        #expect(people.indexes.compactMap { $0["name"]?.stringValue }.sorted() == ["_id_", "age_1"])
        #expect(people.uuid?.count == 32)
        #expect(people.type == "collection")
        let view = try CollectionMetadata(document: Document(bytes: try repository.loadBlob(manifest.collection("clinic.adults")!.metadata)))
        #expect(view.kind == .view)
        #expect(view.options["viewOn"]?.stringValue == "people")
        #expect(manifest.collection("clinic.adults")?.root == nil)
        let bytes = Double(result.record.bytes)
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        print("backup of \(result.record.documents) documents, \(Int(bytes)) bytes in \(seconds) s: "
              + "\(Int(Double(result.record.documents) / seconds)) docs/s, \(bytes / seconds / 1_048_576) MiB/s")
    }

    // MARK: (b) under writes

    @Test("a snapshot taken under writes plus its oplog reproduces the source")
    func consistentUnderWrites() throws {
        let source = try server()
        let mongo = try client(source)
        let ns = Namespace(database: "load", collection: "c")
        _ = try mongo.insertMany((0..<2000).map { Document(["_id": .int32(Int32($0)), "v": .int32(0), "pad": .string(String(repeating: "p", count: 200))]) }, into: ns)
        let load = LoadState()
        let writer = Thread {
            guard let w = try? MongoClient(uri: source.uri, serverSelectionTimeout: .seconds(2)) else { return }
            var i: Int32 = 0
            while !load.stop.load(ordering: .relaxed) {
                i += 1
                let id = Int32.random(in: 0..<2400)
                let update = Document([
                    "update": .string("c"),
                    "updates": .array([.document(Document([
                        "q": .document(Document(["_id": .int32(id)])),
                        "u": .document(Document(["$inc": .document(Document(["v": .int32(1)])), "$set": .document(Document(["w": .int32(i)]))])),
                        "upsert": .bool(true),
                    ]))]),
                ])
                _ = try? w.runCommand(update, database: "load")
                if i % 5 == 0 {
                    let delete = Document(["delete": .string("c"), "deletes": .array([.document(Document([
                        "q": .document(Document(["_id": .int32(Int32.random(in: 0..<2400))])), "limit": .int32(1)]))])])
                    _ = try? w.runCommand(delete, database: "load")
                }
                load.writes.add(1, ordering: .relaxed)
            }
        }
        writer.start()
        defer { load.stop.store(true, ordering: .relaxed) }
        while load.writes.load(ordering: .relaxed) < 50 { Thread.sleep(forTimeInterval: 0.01) }
        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        let result = try backup(mongo, repository, split: true, batchSize: 200)
        load.stop.store(true, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(load.writes.load(ordering: .relaxed) > 50)
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        let entries = try oplog(repository, manifest)
        #expect(result.oplogEntries == entries.count && entries.count > 1)
        #expect(entries.first?["ts"]?.timestampValue.map { OplogTime(t: $0.seconds, i: $0.increment) } == result.record.start)
        #expect(entries.last?["ts"]?.timestampValue.map { OplogTime(t: $0.seconds, i: $0.increment) } == result.record.end)

        // Load the snapshot, replay its oplog, then what the source logged after `end`.
        let target = try server()
        let targetClient = try client(target)
        try restore(try documents(repository, manifest), entries: entries, into: targetClient)
        let end = result.record.end!
        let later = try mongo.find(.oplog, FindOptions(filter: Document(["ts": .document(Document(["$gt": .timestamp(Timestamp(seconds: end.t, increment: end.i))]))]))).collect()
        try replay(later.filter { $0["ns"]?.stringValue == "load.c" }, into: targetClient)
        #expect(try dbHash(targetClient, "load")["c"] == dbHash(mongo, "load")["c"])
    }

    final class LoadState: Sendable {
        let stop = Atomic<Bool>(false)
        let writes = Atomic<Int>(0)
    }

    // MARK: (c) drop and recreate during the read

    @Test("a collection dropped and recreated while read is stored up to the drop; its oplog restores it")
    func droppedAndRecreated() throws {
        let source = try server()
        let mongo = try client(source)
        let ns = Namespace(database: "d", collection: "big")
        _ = try mongo.insertMany((0..<3000).map { Document(["_id": .int32(Int32($0)), "v": .string("old")]) }, into: ns)
        _ = try mongo.insertMany((0..<10).map { Document(["_id": .int32(Int32($0))]) }, into: Namespace(database: "d", collection: "small"))
        _ = try mongo.runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(20)]))
        let dropper = Thread {
            Thread.sleep(forTimeInterval: 0.6)
            guard let other = try? MongoClient(uri: source.uri, serverSelectionTimeout: .seconds(2)) else { return }
            _ = try? other.runCommand(Document(["drop": .string("big")]), database: "d")
            _ = try? other.insertMany((0..<20).map { Document(["_id": .int32(Int32($0 * 7)), "v": .string("new")]) }, into: ns)
        }
        dropper.start()
        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        let result = try backup(mongo, repository, batchSize: 100)
        _ = try mongo.runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(0)]))
        #expect(result.droppedDuringSnapshot == [ns])
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        let stored = try documents(repository, manifest)
        let count = stored["d.big"]?.count ?? 0
        #expect(count > 0 && count < 3000, "stored \(count)")
        #expect(stored["d.small"]?.count == 10)
        let target = try server()
        let targetClient = try client(target)
        try restore(stored, entries: try oplog(repository, manifest), into: targetClient)
        #expect(try dbHash(targetClient, "d") == dbHash(mongo, "d"))
    }

    @Test("the oplog rolled over during the snapshot is a clear error")
    func oplogRolledOver() throws {
        let source = try server()
        let mongo = try client(source)
        _ = try mongo.insertMany((0..<2000).map { Document(["_id": .int32(Int32($0))]) }, into: Namespace(database: "r", collection: "c"))
        _ = try mongo.runAdminCommand(Document(["simDelay": .int32(1), "ms": .int32(20)]))
        let truncator = Thread {
            Thread.sleep(forTimeInterval: 0.4)
            guard let other = try? MongoClient(uri: source.uri, serverSelectionTimeout: .seconds(2)) else { return }
            _ = try? other.insertMany([Document(["_id": .int32(1)])], into: Namespace(database: "r", collection: "other"))
            _ = try? other.runAdminCommand(Document(["simTruncateOplog": .int32(1), "keep": .int32(1)]))
        }
        truncator.start()
        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        #expect {
            try backup(mongo, repository, batchSize: 100)
        } throws: { ($0 as? CaptureError)?.code == .oplogRolledOver && "\($0)".contains("Enlarge the oplog") }
        #expect(try SnapshotCatalog(repository: repository).list().isEmpty)
    }

    // MARK: (d) servers without an oplog

    @Test("nx-27017: refused without --snapshot-only, taken with it", .enabled(if: ServerProcess.isAvailable(.nx27017)))
    func withoutOplog() throws {
        let source = try server(.nx27017)
        let mongo = try client(source)
        let docs = (0..<100).map { Document(["_id": .int32(Int32($0)), "name": .string("n\($0)")]) }
        _ = try mongo.insertMany(docs, into: Namespace(database: "nx", collection: "c"))
        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        #expect { try backup(mongo, repository) } throws: { ($0 as? MongoError)?.code == .noOplog }
        let result = try backup(mongo, repository, snapshotOnly: true)
        #expect(!result.pointInTime && result.record.start == nil && result.record.end == nil)
        let manifest = try SnapshotCatalog(repository: repository).manifest(of: result.record)
        // nx-27017 sorts these _ids as 0, 1, 10, 11...: the dumper sorts them canonically itself.
        #expect(try documents(repository, manifest)["nx.c"] == docs)
        #expect(manifest.oplog.isEmpty)
    }

    // MARK: Units

    @Test func filter() throws {
        let f = try NamespaceFilter(include: ["clinic", "*.users"], exclude: ["clinic.tmp*"])
        #expect(f.includes(Namespace("clinic.patients")!))
        #expect(f.includes(Namespace("shop.users")!))
        #expect(!f.includes(Namespace("shop.orders")!))
        #expect(!f.includes(Namespace("clinic.tmp1")!))
        let all = try NamespaceFilter()
        #expect(!all.includes(Namespace("local.oplog.rs")!))
        #expect(!all.includes(Namespace("config.system.sessions")!))
        #expect(!all.includes(Namespace("admin.system.users")!))
        #expect(!all.includes(Namespace("a.system.views")!))
        #expect(all.includes(Namespace("admin.data")!))
        let system = try NamespaceFilter(includeSystem: true)
        #expect(system.includes(Namespace("admin.system.users")!))
        #expect(!system.includes(Namespace("local.oplog.rs")!))
    }

    @Test func splitter() {
        let keys = (0..<100).map { BSONKey(.int32(Int32($0))) } + (0..<50).map { BSONKey(.string("k\($0)")) }
        let ranges = RangeSplitter.ranges(sample: keys.shuffled(), count: 4)
        #expect(ranges.count == 4)
        #expect(ranges.first?.lower == nil && ranges.last?.upper == nil)
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upper! == b.lower!) }
        #expect(RangeSplitter.ranges(sample: Array(repeating: BSONKey(.int32(1)), count: 10), count: 4).count <= 2)
        #expect(RangeSplitter.ranges(sample: [], count: 4).count == 1)
    }
}
