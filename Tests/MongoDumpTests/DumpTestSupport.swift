import BSON
import Foundation
@testable import MongoDump
import Testing
import TestSupport

// Fixture paths and small helpers shared by this target's tests.
enum DumpFixtures {
    static var available: Bool { Fixtures.haveMongoTools }
    static let oplogDump = Fixtures.mongoTools("mongorestore/testdata/oplogdump")
    static let withOplogArchive = Fixtures.mongoTools("mongorestore/testdata/dump-w-oplog.archive")
    static let testBarArchive = Fixtures.mongoTools("mongorestore/testdata/test.bar.archive")
    static let badFormatArchive = Fixtures.mongoTools("mongorestore/testdata/bad-format.archive")
    static func bsondump(_ name: String) -> String { Fixtures.mongoTools("bsondump/testdata/\(name)") }
}

/// Runs `body` and returns the `DumpError` it throws (nil when it throws nothing).
func dumpError(_ body: () throws -> Void) -> DumpError? {
    do {
        try body()
        return nil
    } catch let error as DumpError {
        return error
    } catch {
        Issue.recordUnexpected(error)
        return nil
    }
}

extension Issue {
    static func recordUnexpected(_ error: any Error) {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
    }
}

/// Every document of `source`, by namespace, in order.
func allDocuments(_ source: some DumpSource) throws -> [Namespace: [Document]] {
    var out: [Namespace: [Document]] = [:]
    try source.forEachDocument { ns, doc, _ in out[ns, default: []].append(doc) }
    return out
}
