import BSON
import Foundation
import Logging
import Mongo
import Recovery
import Repository
import Testing
import TestSupport
@testable import Operations

/// Drills against the simulator under a loadgen workload: they pass on good data and
/// fail, naming what is wrong, on a damaged leaf, a lost segment or an altered document.
@Suite("ancre drill", .serialized, .timeLimit(.minutes(3)))
struct DrillTests {
    static let silent = Logger(label: "drill-test") { _ in SwiftLogNoOpLogHandler() }

    func runner(_ s: DrillScenario, repository: Repository? = nil) throws -> DrillRunner {
        DrillRunner(repository: try repository ?? s.open(), location: s.repositoryPath, client: try s.client(), logger: Self.silent)
    }

    @Test func drillsPassAtTheLatestAndARandomPoint() throws {
        let s = try DrillScenario()
        let meter = DrillMeteredStorage(try LocalBackend(path: s.repositoryPath))
        let runner = DrillRunner(repository: try TestRepository.open(storage: meter), location: s.repositoryPath,
                                 client: try s.client(), logger: Self.silent, meter: meter)
        let latest = try runner.run(DrillOptions(point: .latest))
        #expect(latest.passed, "\(latest.failures) \(latest.unverified)")
        #expect(latest.collections.count >= 4)
        #expect(latest.collections.allSatisfy { $0.status == .passed && $0.method == "dbHash" && $0.indexesMatch == true })
        #expect(latest.collections.contains { $0.touchedDocuments > 0 }, "the oplog after the snapshot was modelled")
        #expect((latest.measurements.entriesReplayed ?? 0) > 100 && latest.measurements.restoreSeconds != nil)
        #expect((latest.measurements.rpoSeconds ?? -1) >= 0 && latest.measurements.verificationBytesRead > 0)
        #expect((latest.measurements.bytesRead ?? 0) > 0, "the metered storage counts what the drill read")
        try expectSnapshotAloneEqualsItsManifest(s)

        var readBack = DrillOptions(point: .latest)
        readBack.readBack = true
        let read = try runner.run(readBack)
        #expect(read.passed && read.collections.allSatisfy { $0.method == "read-back" }, "\(read.failures)")

        let random = try runner.run(DrillOptions(point: .random(seed: 11)))
        #expect(random.passed, "\(random.failures) \(random.unverified)")
        let point = try #require(random.point), newest = try #require(latest.point)
        #expect(point.time <= newest.time)
        #expect(try s.databases().allSatisfy { !$0.hasPrefix("ancre_drill_") }, "scratch databases are dropped")

        // A separate server, under the original names, kept; a second drill there is refused.
        let separate = try ServerProcess(.simulator)
        defer { separate.stop() }
        let separateRunner = DrillRunner(repository: try s.open(), location: s.repositoryPath,
                                         client: try MongoClient(uri: separate.uri, serverSelectionTimeout: .seconds(5)), logger: Self.silent)
        let kept = try separateRunner.run(DrillOptions(point: .latest, scratchPrefix: nil, keep: true))
        #expect(kept.passed && kept.collections.allSatisfy { $0.target == $0.namespace }, "\(kept.failures)")
        #expect(throws: DrillError.self) { try separateRunner.run(DrillOptions(point: .latest, scratchPrefix: nil)) }

        // The CLI: a drill, its files, the history.
        let reports = s.directory.appendingPathComponent("drills").path
        let cli = try s.cli.run(["drill", "--repo", s.repositoryPath, "--target-uri", s.server.uri, "--to", "random",
                                 "--seed", "5", "--report-dir", reports])
        #expect(cli.status == 0, "\(cli)")
        #expect(cli.stdout.contains("passed") && cli.stdout.contains("clinic0.patients"), "\(cli)")
        let history = try s.cli.run(["drill", "--history", "--json", "--report-dir", reports, "--repo", s.repositoryPath])
        let summaries = try JSONDecoder.iso.decode([DrillSummary].self, from: history.stdoutData)
        #expect(summaries.count == 1 && summaries[0].outcome == .passed, "\(history)")
        let page = try String(contentsOfFile: reports + "/\(summaries[0].id).html", encoding: .utf8)
        #expect(page.contains("<svg id=\"timeline\"") && !page.contains("<script"))

        // A named point outside the window is refused like a restore (exit 30), before any drill runs.
        let outside = try s.cli.run(["drill", "--repo", s.repositoryPath, "--target-uri", s.server.uri, "--to", "ts:1000:1",
                                     "--report-dir", reports])
        #expect(outside.status == 30 && outside.stderr.contains("restorable"), "\(outside)")
        #expect(try DrillHistory(directory: URL(fileURLWithPath: reports)).summaries().count == 1, "no report for a refused point")
    }

    /// The self-test of the verification: with an empty oplog, the merged stream of a
    /// snapshot hashes to the checksum its manifest recorded at capture time.
    func expectSnapshotAloneEqualsItsManifest(_ s: DrillScenario) throws {
        let repo = try s.open()
        let view = try TimelineView.load(repo)
        let plan = try RestorePlanner(view: view).plan(.latest)
        var manifest = try SnapshotCatalog(repository: repo).manifest(of: plan.snapshot)
        manifest.oplog = []
        var alone = plan
        alone.segments = []
        let expectation = try DrillExpectation.build(repository: repo, manifest: manifest, plan: alone)
        #expect(expectation.entriesRead == 0)
        let collections = manifest.collections.filter { $0.root != nil }
        #expect(!collections.isEmpty)
        for c in collections {
            let digest = try #require(expectation.digests[c.namespace])
            #expect(digest.baseChecksum == c.checksum && digest.count == c.documents, "\(c.namespace)")
            #expect(digest.md5 == (try repo.md5OfDocuments(c)), "\(c.namespace): the expected MD5 is the snapshot's")
        }
        // Manifests written before the XXH64 sum recorded the MD5 in _id order: checked in that form.
        var legacy = manifest
        for i in legacy.collections.indices where legacy.collections[i].root != nil {
            legacy.collections[i].checksum = try repo.md5OfDocuments(legacy.collections[i])
        }
        let old = try DrillExpectation.build(repository: repo, manifest: legacy, plan: alone)
        for c in legacy.collections where c.root != nil {
            #expect(old.digests[c.namespace]?.baseChecksum == c.checksum, "\(c.namespace), MD5 form")
        }
    }

    @Test func aCorruptedLeafFailsNamingItsCollectionAndBlob() throws {
        let s = try DrillScenario(loadSeconds: 1)
        let repo = try s.open()
        let record = try #require(try SnapshotCatalog(repository: repo).list().last).record
        let manifest = try SnapshotCatalog(repository: repo).manifest(of: record)
        var owner: [BlobID: String] = [:]
        for c in manifest.collections {
            guard let root = c.root else { continue }
            for leaf in try TreeReader(load: repo.loadBlob).leaves(root: root) { owner[leaf.child] = c.namespace }
        }
        // Flip one byte of a pack, keeping the first flip that damages exactly one blob, a leaf.
        var damaged: (blob: BlobID, namespace: String)?
        for (name, url) in try s.packFiles().sorted(by: { $0.key < $1.key }) where damaged == nil {
            let blobs = repo.blobs(inPack: name)
            guard blobs.contains(where: { owner[$0] != nil }) else { continue }
            let size = try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
            for offset in stride(from: 5, to: size, by: 997) where damaged == nil {
                try DrillScenario.flipByte(url, at: offset)
                let fresh = try s.open()
                let broken = blobs.filter { (try? fresh.loadBlob($0)) == nil }
                if broken.count == 1, let ns = owner[broken[0]] {
                    damaged = (broken[0], ns)
                } else {
                    try DrillScenario.flipByte(url, at: offset)
                }
            }
        }
        let (blob, namespace) = try #require(damaged, "a pack starting with a leaf")

        let reports = s.directory.appendingPathComponent("drills").path
        let r = try s.cli.run(["drill", "--repo", s.repositoryPath, "--target-uri", s.server.uri, "--report-dir", reports])
        #expect(r.status == 40, "\(r)")
        #expect(r.stdout.contains("FAILED") && r.stdout.contains(namespace) && r.stdout.contains(blob.hex), "\(r)")
        let summaries = try DrillHistory(directory: URL(fileURLWithPath: reports)).summaries()
        let report = try DrillHistory(directory: URL(fileURLWithPath: reports)).report(try #require(summaries.last).id)
        #expect(!report.passed)
        #expect(report.failures.contains { $0.contains(namespace) && $0.contains(blob.hex) }, "\(report.failures)")
        #expect(try s.databases().allSatisfy { !$0.hasPrefix("ancre_drill_") }, "a failed drill cleans up too")
    }

    @Test func aMissingSegmentFailsNamingIt() throws {
        let s = try DrillScenario(loadSeconds: 1)
        let repo = try s.open()
        let segment = try #require(try TimelineView.load(repo).segments.last?.segment)
        let packs = try s.packFiles()
        let pack = try #require(packs.first { repo.blobs(inPack: $0.key).contains(segment.blob) })
        try FileManager.default.removeItem(at: pack.value)

        let report = try runner(s, repository: try s.open()).run(DrillOptions(point: .latest))
        #expect(!report.passed)
        #expect(report.failures.contains { $0.contains("oplog segment \(segment.first)...\(segment.last)") && $0.contains(segment.blob.hex) },
                "\(report.failures)")
    }

    @Test func anAlteredDocumentFailsNamingTheCollectionAndTheFirstDifferingID() throws {
        let s = try DrillScenario(loadSeconds: 1)
        final class Altered: @unchecked Sendable {
            let lock = NSLock()
            var id: BSONValue?
        }
        let altered = Altered()
        var options = DrillOptions(point: .latest)
        options.beforeVerify = { client, mapping in
            let target = try #require(mapping.map(Namespace(database: "clinic0", collection: "patients")))
            let documents = try client.find(target, FindOptions(sort: Document(["_id": .int32(1)]), limit: 5)).collect()
            let id = try #require(documents.last?["_id"])
            _ = try client.runCommand(Document([
                "update": .string(target.collection),
                "updates": .array([.document(Document([
                    "q": .document(Document(["_id": id])),
                    "u": .document(Document(["$set": .document(Document(["altered": .bool(true)]))])),
                ]))]),
            ]), database: target.database)
            altered.lock.withLock { altered.id = id }
        }
        let report = try runner(s).run(options)
        #expect(!report.passed)
        let id = try #require(altered.lock.withLock { altered.id })
        let check = try #require(report.collections.first { $0.namespace == "clinic0.patients" })
        #expect(check.status == .failed && check.method == "dbHash+read-back")
        #expect(check.firstDifferingID == Document(pairs: [("_id", id)]).description, "\(check)")
        #expect(report.collections.filter { $0.status == .failed }.count == 1, "only the altered collection fails")
        #expect(report.failures.contains { $0.contains("clinic0.patients") && $0.contains("first differing _id") })
    }

    /// nx-27017 has no dbHash and sorts numeric `_id`s as text: the drill reads every
    /// collection back, and looks documents up by `_id` where the order differs.
    @Test func drillsIntoATargetWithoutDBHash() throws {
        if let reason = ServerProcess.unavailableReason(.nx27017) { try Test.cancel(Comment(rawValue: reason)) }
        let ids: [BSONValue] = [.int32(1), .int32(2), .int32(10), .int32(100), .string("a"), .string("b")]
        let s = try DrillScenario(initial: { client in
            _ = try client.insertMany(ids.map { Document(pairs: [("_id", $0), ("v", .int32(1))]) },
                                      into: Namespace(database: "shop", collection: "items"))
        }, changes: { client in
            _ = try client.insertMany([Document(pairs: [("_id", .int32(20)), ("v", .int32(2))])], into: Namespace(database: "shop", collection: "items"))
            _ = try client.runCommand(Document([
                "update": .string("items"),
                "updates": .array([.document(Document([
                    "q": .document(Document(["_id": .int32(10)])),
                    "u": .document(Document(["$set": .document(Document(["v": .int32(3)]))])),
                ]))]),
            ]), database: "shop")
            _ = try client.runCommand(Document([
                "delete": .string("items"),
                "deletes": .array([.document(Document(["q": .document(Document(["_id": .string("a")])), "limit": .int32(1)]))]),
            ]), database: "shop")
        })
        let nx = try ServerProcess(.nx27017)
        defer { nx.stop() }
        let runner = DrillRunner(repository: try s.open(), location: s.repositoryPath,
                                 client: try MongoClient(uri: nx.uri, serverSelectionTimeout: .seconds(5)), logger: Self.silent)
        let report = try runner.run(DrillOptions(point: .latest))
        #expect(report.passed, "\(report.failures) \(report.unverified)")
        let check = try #require(report.collections.first { $0.namespace == "shop.items" })
        #expect(check.method == "read-back+lookup" && check.expectedCount == 6 && check.restoredCount == 6, "\(check)")
        #expect(report.measurements.replayMode == "crud")

        var altered = DrillOptions(point: .latest)
        altered.beforeVerify = { client, mapping in
            let target = try #require(mapping.map(Namespace(database: "shop", collection: "items")))
            _ = try client.runCommand(Document([
                "update": .string(target.collection),
                "updates": .array([.document(Document([
                    "q": .document(Document(["_id": .int32(100)])),
                    "u": .document(Document(["$set": .document(Document(["v": .int32(9)]))])),
                ]))]),
            ]), database: target.database)
        }
        let failed = try runner.run(altered)
        let differing = try #require(failed.collections.first { $0.namespace == "shop.items" })
        #expect(!failed.passed && differing.status == .failed)
        #expect(differing.firstDifferingID == Document(pairs: [("_id", .int32(100))]).description, "\(differing)")
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
