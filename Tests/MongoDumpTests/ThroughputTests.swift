import BSON
import Foundation
import Testing
import TestSupport
@testable import MongoDump

/// Reading speed on a few hundred MB; run with `ANCRE_BENCH=1` in release mode
/// (`swift test -c release -Xswiftc -enable-testing --filter Throughput`).
struct ThroughputTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["ANCRE_BENCH"] != nil, "set ANCRE_BENCH=1 to measure throughput"))
    func archiveReadSpeed() throws {
        let dir = Fixtures.temporaryDirectory("dump-bench")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ns = Namespace(database: "bench", collection: "docs")
        let archivePath = dir.appendingPathComponent("bench.archive").path
        let writer = try ArchiveWriter(path: archivePath, header: ArchiveHeader(serverVersion: "7.0.0", toolVersion: "bench"),
                                       prelude: [try ArchivePreludeEntry(namespace: ns, metadata: CollectionMetadata())])
        let filler = String(repeating: "x", count: 300)
        var written: Int64 = 0
        var i: Int64 = 0
        while written < 300 << 20 {
            let doc = Document(["_id": .int64(i), "name": .string("patient \(i)"), "note": .string(filler),
                                "visits": .array([.int32(1), .int32(2), .double(3.5)])])
            try writer.append(doc, to: ns)
            written += Int64(doc.byteCount)
            i += 1
        }
        try writer.end(ns)
        try writer.finish()

        let reader = try ArchiveReader(path: archivePath)
        var start = Date()
        try reader.verify()
        let scan = Date().timeIntervalSince(start)
        start = Date()
        var count = 0
        var keyed: [(BSONKey, DocumentLocation)] = []
        keyed.reserveCapacity(Int(i))
        try reader.forEachDocument(in: ns) { doc, location in
            keyed.append((doc.idKey!, location))
            count += 1
        }
        let pass = Date().timeIntervalSince(start)
        #expect(count == Int(i))
        let mb = Double(written) / 1e6
        print("throughput: \(count) documents, \(Int(mb)) MB; scan+CRC \(Int(mb / scan)) MB/s; validated read with _id keys \(Int(mb / pass)) MB/s")
    }
}
