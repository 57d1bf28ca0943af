import BSON
import Foundation
import Mongo
import Testing
import TestSupport
@testable import Recovery

/// Real mongod oplog entries from `../shared/fixtures/mongo-tools` replay as mongorestore's tests expect.
@Suite(.enabled(if: Fixtures.haveMongoTools, "../shared/fixtures/mongo-tools is absent"))
struct ReplayFixtureTests {
    /// Every transaction case of common/txn/testdata/oplog_entries.json reaches its post-image.
    @Test(arguments: [ServerKind.simulator, .nx27017])
    func transactionCases(_ kind: ServerKind) throws {
        let server = try startServer(kind)
        defer { server.stop() }
        let target = try client(server)
        let text = try String(contentsOfFile: Fixtures.mongoTools("common/txn/testdata/oplog_entries.json"), encoding: .utf8)
        let cases = try ExtendedJSON.decode(Self.utcDates(text))
        var checked = 0
        for (name, value) in cases.elements {
            let c = try #require(value.documentValue)
            let ops = try #require(c["ops"]?.arrayValue).compactMap(\.documentValue)
            let applier = try OplogApplier(client: target, options: .init(mode: kind == .simulator ? .applyOps : .crud))
            #expect(applier.mode == (kind == .simulator ? .applyOps : .crud))
            let result = try applier.replay(ops)
            #expect(result.openTransactions == 0, "\(name)")
            #expect(result.lastApplied == ops.last?["ts"]?.timestampValue, "\(name): the checkpoint reaches the last entry")
            guard let post = c["postimage"]?.arrayValue?.compactMap(\.documentValue), let ns = c["ns"]?.stringValue.flatMap(Namespace.init) else { continue }
            let expected = Dictionary(uniqueKeysWithValues: post.map { (relaxed(Document(pairs: [("_id", $0["_id"]!)])), relaxed($0)) })
            #expect(try contents(target, ns) == expected, "\(kind) \(name)")
            checked += 1
        }
        #expect(checked >= 11)
        // The createIndexes case built its index (nx-27017 renames indexes: match the key).
        #expect(try target.listIndexes(Namespace("txntest.k")!).contains { $0["key"] == .document(doc(#"{"x": 1}"#)) })
    }

    /// A delete reaching a namespace before the insert that creates it (another applier's
    /// lane, as in the "small, unprepared" transaction) has nothing to delete: no failure.
    @Test func aDeleteInAMissingNamespaceIsANoOp() throws {
        let server = try startServer(.simulator)
        defer { server.stop() }
        let delete = try ExtendedJSON.decode(#"{"ts": {"$timestamp": {"t": 1515616500, "i": 1}}, "t": 1, "op": "d", "ns": "txntest.none", "o": {"_id": 1}}"#)
        let result = try OplogApplier(client: try client(server), options: .init(mode: .applyOps)).replay([delete])
        #expect(result.entries == 1)
    }

    /// libbson reads only UTC (`Z`) dates in Extended JSON; one fixture entry has `-05:00`.
    static func utcDates(_ text: String) -> String {
        let regex = try! NSRegularExpression(pattern: #""(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?[+-]\d\d:\d\d)""#)
        var out = text
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).reversed() {
            let range = Range(match.range(at: 1), in: text)!
            let parser = ISO8601DateFormatter()
            parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let date = parser.date(from: String(text[range])) else { continue }
            parser.timeZone = TimeZone(identifier: "UTC")
            out.replaceSubrange(Range(match.range(at: 1), in: out)!, with: parser.string(from: date))
        }
        return out
    }

    /// The single-operation oplogs of mongorestore/testdata/oplogs replay without error.
    @Test(arguments: [ServerKind.simulator, .nx27017])
    func mongorestoreOplogs(_ kind: ServerKind) throws {
        let server = try startServer(kind)
        defer { server.stop() }
        let target = try client(server)
        let directory = Fixtures.mongoTools("mongorestore/testdata/oplogs/bson")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".bson") }.sorted()
        #expect(files.count >= 9)
        for file in files {
            let entries = try DocumentStream.readAll(path: directory + "/" + file)
            do {
                let result = try OplogApplier(client: target).replay(entries)
                #expect(result.entries == entries.count, "\(file)")
            } catch {
                Issue.record("\(kind) \(file): \(error)")
            }
        }
    }
}
