import BSON
import Foundation
import Mongo
import Recovery
import Repository

/// Compares a restored target with a `DrillExpectation`, collection by collection:
/// count and MD5 (`dbHash` where the target has it, else the documents read back in
/// `_id` order), index definitions, and on a mismatch the first differing `_id`.
///
/// Blocking; one connection at a time from `client`.
struct DrillVerification {
    let expectation: DrillExpectation
    let client: MongoClient
    let mapping: NamespaceMapping
    /// Read every collection back even where the target has `dbHash`.
    var readBack = false

    /// Checks every expected collection, and reports collections the target holds that
    /// nothing expects.
    func run() throws -> [DrillCollectionCheck] {
        var checks: [DrillCollectionCheck] = []
        var hashes: [String: [String: String]?] = [:]
        var expectedTargets: Set<String> = []
        for ns in expectation.namespaces {
            guard let source = Namespace(ns), let target = mapping.map(source) else { continue }
            expectedTargets.insert(target.description)
            if hashes[target.database] == nil { hashes[target.database] = readBack ? .some(nil) : dbHash(target.database) }
            checks.append(try check(ns, target: target, dbHash: hashes[target.database]!))
        }
        // Anything restored that the expectation lacks (a collection that should be gone).
        for database in Set(checks.map { Namespace($0.target)?.database ?? "" }) where !database.isEmpty {
            let present = (try? client.listCollections(database: database)) ?? []
            for info in present where !expectedTargets.contains("\(database).\(info.name)") && !info.name.hasPrefix("system.") {
                checks.append(DrillCollectionCheck(
                    namespace: "-", target: "\(database).\(info.name)", status: .failed, method: "listCollections",
                    expectedCount: 0, restoredCount: nil, expectedChecksum: "-", restoredChecksum: nil, touchedDocuments: 0,
                    oplogEntries: 0, indexes: [], indexesMatch: nil, firstDifferingID: nil,
                    problems: ["\(database).\(info.name) exists on the target but should not exist at the drilled point"]))
            }
        }
        return checks
    }

    /// `dbHash`'s per-collection MD5s, or nil where the target does not implement it.
    private func dbHash(_ database: String) -> [String: String]? {
        guard let reply = try? client.runCommand(Document(["dbHash": .int32(1)]), database: database),
              let collections = reply["collections"]?.documentValue else { return nil }
        var out: [String: String] = [:]
        for (name, value) in collections.elements { out[name] = value.stringValue }
        return out
    }

    private func check(_ ns: String, target: Namespace, dbHash: [String: String]?) throws -> DrillCollectionCheck {
        let touched = expectation.touched(ns)
        let expectedIndexes = expectation.indexes(ns)
        var check = DrillCollectionCheck(
            namespace: ns, target: target.description, status: .passed, method: dbHash == nil ? "read-back" : "dbHash",
            expectedCount: 0, restoredCount: nil, expectedChecksum: "-", restoredChecksum: nil,
            touchedDocuments: touched.documents, oplogEntries: touched.entries, indexes: expectedIndexes.keys.sorted(),
            indexesMatch: nil, firstDifferingID: nil, problems: [])
        let present: [CollectionInfo]
        do { present = try client.listCollections(database: target.database, filter: Document(["name": .string(target.collection)])) } catch {
            check.status = .unverified
            check.problems.append("cannot list \(target) on the target: \(error)")
            return check
        }
        guard let info = present.first else {
            check.status = .failed
            check.problems.append("\(target) is missing on the target")
            return check
        }
        if expectation.isView(ns) {
            check.method = "listCollections"
            if info.kind != .view {
                check.status = .failed
                check.problems.append("\(target) should be a view but is a \(info.kind.rawValue)")
            }
            return check
        }

        if let problem = expectation.problems[ns] {
            check.status = .failed
            check.problems.append(problem.message)
            return check
        }
        let expected = try expectation.digests[ns] ?? expectation.digest(ns)
        check.expectedCount = expected.count
        check.expectedChecksum = expected.md5
        if let overflow = expectation.cappedOverflow(ns, expected) {
            check.status = .unverified
            check.problems.append(overflow)
            return check
        }
        if let base = expectation.base(ns), let baseChecksum = expected.baseChecksum, base.namespace == ns, baseChecksum != base.checksum {
            check.status = .failed
            check.problems.append("the snapshot's leaves of \(ns) hash to \(baseChecksum) but its manifest recorded \(base.checksum): the snapshot does not hold what was captured")
        }

        // Count and hash on the target.
        if let dbHash {
            check.restoredChecksum = dbHash[target.collection]
            if let reply = try? client.runCommand(Document(["count": .string(target.collection)]), database: target.database),
               let n = reply["n"]?.int64Value {
                check.restoredCount = UInt64(max(0, n))
            }
        }
        let equalByHash = check.restoredChecksum == expected.md5 && check.restoredCount == expected.count
        if !equalByHash {
            // No dbHash, or a difference: read the collection back to find where.
            check.method = dbHash == nil ? "read-back" : "dbHash+read-back"
            try readBack(ns, target: target, into: &check)
            if check.status == .unverified { return check }
        }
        if check.restoredChecksum != expected.md5 || check.restoredCount != expected.count {
            check.status = .failed
            check.problems.insert("\(target) holds \(check.restoredCount.map(String.init) ?? "?") documents with MD5 \(check.restoredChecksum ?? "?"); expected \(expected.count) with MD5 \(expected.md5)"
                + (check.firstDifferingID.map { "; first differing _id: \($0)" } ?? ""), at: 0)
        }

        // Index definitions, without the fields that vary by server version.
        let restoredIndexes: [Document]
        do { restoredIndexes = try client.listIndexes(target) } catch {
            check.problems.append("cannot list the indexes of \(target): \(error)")
            if check.status == .passed { check.status = .unverified }
            return check
        }
        var restored: [String: String] = [:]
        for spec in restoredIndexes { if let name = spec["name"]?.stringValue { restored[name] = Self.normalized(spec) } }
        let wanted = expectedIndexes.mapValues(Self.normalized)
        check.indexesMatch = restored == wanted
        if restored != wanted {
            check.status = .failed
            let missing = Set(wanted.keys).subtracting(restored.keys).sorted()
            let extra = Set(restored.keys).subtracting(wanted.keys).sorted()
            let differing = wanted.keys.filter { restored[$0] != nil && restored[$0] != wanted[$0] }.sorted()
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { parts.append("unexpected \(extra.joined(separator: ", "))") }
            for name in differing { parts.append("\(name) is \(restored[name]!) instead of \(wanted[name]!)") }
            check.problems.append("indexes of \(target) differ: " + parts.joined(separator: "; "))
        }
        return check
    }

    /// Reads `target` in `_id` order next to the expected stream: its count and MD5, and
    /// the first `_id` where they part.
    private func readBack(_ ns: String, target: Namespace, into check: inout DrillCollectionCheck) throws {
        let cursor: Cursor
        do {
            cursor = try client.find(target, FindOptions(sort: Document(["_id": .int32(1)])))
        } catch {
            check.problems.append("cannot read \(target) back: \(error)")
            return
        }
        defer { cursor.close() }
        let md5 = StreamingDigest(.md5)
        var count: UInt64 = 0
        var firstDifference: String?
        var readError: MongoError?
        var previous: BSONKey?
        var outOfOrder = false
        func nextRestored() -> Document? {
            guard readError == nil else { return nil }
            do {
                let d = try cursor.next()
                if let d {
                    md5.update(d.bytes)
                    count += 1
                    // Some servers (nx-27017) sort numeric `_id`s as text.
                    if let key = d.idKey {
                        if let previous, !(previous < key) { outOfOrder = true }
                        previous = key
                    }
                }
                return d
            } catch {
                readError = error
                return nil
            }
        }
        func describe(_ d: Document?) -> String {
            guard let id = d?["_id"] else { return "(none)" }
            return Document(pairs: [("_id", id)]).description
        }
        try expectation.stream(ns) { expected in
            let restored = nextRestored()
            if firstDifference == nil, restored?.bytes != expected.bytes {
                // The smaller `_id` is the first place they differ (missing, extra or changed).
                if let restored, let r = restored.idKey, let e = expected.idKey, r < e {
                    firstDifference = describe(restored)
                } else {
                    firstDifference = describe(expected)
                }
            }
            return true
        }
        while let extra = nextRestored() {
            if firstDifference == nil { firstDifference = describe(extra) }
        }
        if let readError {
            check.problems.append("reading \(target) back failed: \(readError)")
            check.status = .unverified
            return
        }
        check.restoredCount = count
        check.restoredChecksum = md5.finalize()
        check.firstDifferingID = firstDifference
        if outOfOrder && firstDifference != nil {
            check.method += "+lookup"
            try lookUp(ns, target: target, restoredCount: count, into: &check)
        }
    }

    /// For a target that does not return `_id` order: each expected document fetched by
    /// `_id`, hashed in the expected order (one round trip per document, memory constant).
    private func lookUp(_ ns: String, target: Namespace, restoredCount: UInt64, into check: inout DrillCollectionCheck) throws {
        let md5 = StreamingDigest(.md5)
        var firstDifference: String?
        var failure: (any Error)?
        try expectation.stream(ns) { expected in
            guard let id = expected["_id"] else { return true }
            let found: Document?
            do {
                found = try client.find(target, FindOptions(filter: Document(pairs: [("_id", id)]), limit: 1)).collect().first
            } catch {
                failure = error
                return false
            }
            if let found { md5.update(found.bytes) }
            if firstDifference == nil, found?.bytes != expected.bytes {
                firstDifference = Document(pairs: [("_id", id)]).description
            }
            return true
        }
        if let failure {
            check.problems.append("looking documents of \(target) up by _id failed: \(failure)")
            check.status = .unverified
            return
        }
        // Every expected document is there and equal: only extra documents can remain.
        check.restoredChecksum = md5.finalize()
        check.firstDifferingID = firstDifference
        if firstDifference == nil && restoredCount != check.expectedCount {
            check.problems.append("\(target) holds \(Int64(restoredCount) - Int64(check.expectedCount)) documents more than expected; this target's order does not let the drill name them")
        }
    }

    /// An index spec as comparable text: `v` and `ns` dropped, fields sorted by name,
    /// numbers relaxed (1 and NumberLong(1) are the same key direction).
    static func normalized(_ spec: Document) -> String {
        let pairs = spec.elements.filter { $0.key != "v" && $0.key != "ns" }.sorted { $0.key < $1.key }
        let document = Document(pairs: pairs.map { ($0.key, $0.value) })
        return (try? ExtendedJSON.encode(document, canonical: false)) ?? "\(document.bytes)"
    }
}
