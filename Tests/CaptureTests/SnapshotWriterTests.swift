import BSON
import Foundation
import Logging
import Repository
import Testing
import TestSupport
@testable import Capture

/// Two-hourly snapshots cost what changed (ARCHITECTURE.md §3).
struct SnapshotWriterTests {
    static func document(_ n: Int, edit: Int = 0) -> Document {
        Document([
            "_id": .int64(Int64(n)),
            "name": .string("Patient \(n)"),
            "address": .document(Document(["city": .string(["Lyon", "Nantes", "Lille"][n % 3]), "zip": .int32(Int32(69000 + n % 900))])),
            "visits": .int32(Int32(n % 17 + edit)),
            "notes": .string(String(repeating: "follow-up in \(n % 12) weeks; no allergies reported. ", count: 3 + n % 4)),
            "edited": .bool(edit > 0),
            "ref": .string(reference(n)),
        ])
    }

    /// 40 characters that do not compress, the same for each `n`: without them the documents
    /// compressed about 37 times, a leaf to a few KiB, and whether a delta beat half of that
    /// (or the leaf was stored whole) depended on where the repository's keyed boundaries
    /// fell, so the second snapshot's share ranged from 2% to over 20%.
    static func reference(_ n: Int) -> String {
        var x = UInt64(n) &* 0x9E37_79B9_7F4A_7C15 | 1
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return String((0..<40).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return alphabet[Int(x % UInt64(alphabet.count))]
        })
    }

    static func write(_ repository: Repository, previous: SnapshotManifest?, count: Int, edited: Set<Int>) throws
        -> (manifest: SnapshotManifest, added: UInt64, checksum: String)
    {
        let writer = SnapshotWriter(repository: repository, previous: previous, logger: Logger(label: "test"))
        var checksum = DocumentChecksum()
        try writer.writeCollection(database: "clinic", collection: "patients", type: "collection",
                                   metadata: Document(["options": .document(Document())]), averageDocumentBytes: 300) { emit in
            for n in 0..<count {
                let doc = document(n, edit: edited.contains(n) ? 1 : 0)
                checksum.add(doc.bytes)
                try doc.bytes.withUnsafeBytes { try emit(doc.idKey!, $0) }
            }
        }
        let (_, record) = try writer.finish(source: "test", kind: "import", start: nil, end: nil)
        return (try SnapshotCatalog(repository: repository).manifest(of: record), record.addedBytes, checksum.description)
    }

    @Test func secondSnapshotStoresOnlyDeltas() throws {
        let repository = try TestRepository.make(packTargetSize: 1 << 20)
        let first = try Self.write(repository, previous: nil, count: 20000, edited: [])
        #expect(first.manifest.collections[0].checksum == first.checksum, "the checksum covers the documents written")
        var generator = SystemRandomNumberGenerator()
        let edited = Set((0..<200).map { _ in Int.random(in: 0..<20000, using: &generator) })
        let second = try Self.write(repository, previous: first.manifest, count: 20000, edited: edited)
        let share = Double(second.added) / Double(first.added)
        #expect(share < 0.15, "second snapshot stored \(Int(share * 100))% of the first")
        #expect(repository.stats().deltaCount > 0)
        // A fresh write of the same content gives the same root: synthesis can be verified this way.
        let again = try Self.write(repository, previous: nil, count: 20000, edited: edited)
        #expect(again.manifest.collections[0].root == second.manifest.collections[0].root)
        #expect(again.added < 4096, "unchanged content adds only a manifest and a record")
    }

    @Test func duplicateAndUnsortedIDsAreRefused() throws {
        let repository = try TestRepository.make()
        let writer = SnapshotWriter(repository: repository, previous: nil, logger: Logger(label: "test"))
        #expect(throws: CaptureError.self) {
            try writer.writeCollection(database: "a", collection: "b", type: "collection", metadata: Document(),
                                       averageDocumentBytes: 100) { emit in
                for n in [1, 2, 2] {
                    let doc = Self.document(n)
                    try doc.bytes.withUnsafeBytes { try emit(doc.idKey!, $0) }
                }
            }
        }
        #expect(throws: CaptureError.self) {
            try writer.writeCollection(database: "a", collection: "c", type: "collection", metadata: Document(),
                                       averageDocumentBytes: 100) { emit in
                for n in [3, 1] {
                    let doc = Self.document(n)
                    try doc.bytes.withUnsafeBytes { try emit(doc.idKey!, $0) }
                }
            }
        }
    }
}
