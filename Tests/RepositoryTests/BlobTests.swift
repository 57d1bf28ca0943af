import Dispatch
import Synchronization
import Testing
import TestSupport
@testable import Repository

@Suite struct BlobTests {
    @Test func saveLoadAndDeduplicate() throws {
        let repository = try TestRepository.make()
        let text = TestData.text(count: 20_000, seed: 1)
        let saved = try repository.saveBlob(type: .leaf, bytes: text)
        #expect(!saved.deduplicated)
        #expect(saved.id == repository.blobID(for: text))
        #expect(saved.storedLength < text.count / 2)  // compressed
        #expect(repository.hasBlob(saved.id))
        #expect(try repository.loadBlob(saved.id) == text)  // from the open pack

        let again = try repository.saveBlob(type: .leaf, bytes: text)
        #expect(again.deduplicated && again.storedLength == 0 && again.id == saved.id)
        try repository.flush()
        #expect(try repository.saveBlob(type: .leaf, bytes: text).deduplicated)
        #expect(try repository.loadBlob(saved.id) == text)
        #expect(try repository.deltaBase(of: saved.id) == nil)

        let stats = repository.stats()
        #expect(stats.blobCount == 1 && stats.packCount == 1)
        #expect(stats.rawBytes[.leaf] == text.count && stats.storedBytes[.leaf] == saved.storedLength)
    }

    @Test func incompressibleBlobsAreStoredRaw() throws {
        let repository = try TestRepository.make()
        let noise = TestRepository.bytes(count: 10_000, seed: 9)
        let saved = try repository.saveBlob(type: .oplog, bytes: noise)
        #expect(saved.storedLength == noise.count + 16)  // raw + GCM tag
        try repository.flush()
        #expect(try repository.loadBlob(saved.id) == noise)
        let empty = try repository.saveBlob(type: .metadata, bytes: [])
        try repository.flush()
        #expect(try repository.loadBlob(empty.id) == [])
    }

    @Test func unknownBlobIsNotFound() throws {
        let repository = try TestRepository.make()
        let id = repository.blobID(for: [1, 2, 3])
        #expect(!repository.hasBlob(id))
        #expect { try repository.loadBlob(id) } throws: { ($0 as? RepositoryError)?.code == .blobNotFound }
        #expect { try repository.deltaBase(of: id) } throws: { ($0 as? RepositoryError)?.code == .blobNotFound }
    }

    @Test func deltaBlobs() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let base = TestData.text(count: 32 << 10, seed: 2)
        var changed = base
        changed.replaceSubrange(5000..<5010, with: Array("CHANGED!!!".utf8))
        let baseSaved = try repository.saveBlob(type: .leaf, bytes: base)
        let whole = try repository.saveBlob(type: .leaf, bytes: changed + [1])
        let delta = try repository.saveBlob(type: .leaf, bytes: changed, deltaBase: (baseSaved.id, base))
        #expect(delta.deltaBase == baseSaved.id)
        #expect(delta.storedLength * 10 < whole.storedLength)
        print("delta leaf: whole \(whole.storedLength) B stored, delta \(delta.storedLength) B stored")
        #expect(try repository.loadBlob(delta.id) == changed)  // base and delta still in the open pack

        // A delta's base must be whole, stored, and given with its own bytes.
        let other = TestData.text(count: 1000, seed: 4)
        #expect { try repository.saveBlob(type: .leaf, bytes: other, deltaBase: (delta.id, changed)) } throws: { ($0 as? RepositoryError)?.code == .invalidArgument }
        #expect { try repository.saveBlob(type: .leaf, bytes: other, deltaBase: (repository.blobID(for: [9]), [9])) } throws: { ($0 as? RepositoryError)?.code == .invalidArgument }
        #expect { try repository.saveBlob(type: .leaf, bytes: other, deltaBase: (baseSaved.id, changed)) } throws: { ($0 as? RepositoryError)?.code == .invalidArgument }

        try repository.flush()
        let reopened = try TestRepository.open(storage: storage)
        #expect(try reopened.deltaBase(of: delta.id) == baseSaved.id)
        #expect(try reopened.deltaBase(of: baseSaved.id) == nil)
        #expect(try reopened.loadBlob(delta.id) == changed)
        #expect(reopened.stats().deltaCount == 1)
    }

    @Test func packsFillFlushAndReload() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage, packTargetSize: 32 << 10)
        var saved: [(BlobID, [UInt8])] = []
        for i in 0..<40 {
            let bytes = TestData.text(count: 4000 + i * 100, seed: UInt64(100 + i))
            saved.append((try repository.saveBlob(type: i % 2 == 0 ? .leaf : .node, bytes: bytes).id, bytes))
        }
        // Full packs were uploaded during saving, but no index is written before flush.
        #expect(!storage.keys.filter { $0.hasPrefix("data/") }.isEmpty)
        #expect(storage.keys.filter { $0.hasPrefix("index/") }.isEmpty)
        try repository.flush()
        let packs = storage.keys.filter { $0.hasPrefix("data/") }
        #expect(packs.count >= 2)
        #expect(storage.keys.filter { $0.hasPrefix("index/") }.count == 1)
        for key in packs {  // named by the SHA-256 of their bytes, under their first two hex digits
            let name = String(key.split(separator: "/")[2])
            #expect(encodeHex(Crypto.sha256(try storage.get(key))) == name)
            #expect(key.hasPrefix("data/\(name.prefix(2))/"))
        }

        let reopened = try TestRepository.open(storage: storage)
        for (id, bytes) in saved {
            #expect(reopened.hasBlob(id))
            #expect(try reopened.loadBlob(id) == bytes)
        }
        #expect(reopened.stats().blobCount == 40)
        #expect(reopened.stats().packCount == packs.count)
        // A second session adds a second index file.
        try reopened.saveBlob(type: .manifest, bytes: Array("manifest".utf8))
        try reopened.flush()
        #expect(storage.keys.filter { $0.hasPrefix("index/") }.count == 2)
        #expect(try TestRepository.open(storage: storage).stats().blobCount == 41)
        #expect(try reopened.check(readData: true).isClean)
    }

    @Test func concurrentSavers() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage, packTargetSize: 48 << 10)
        let blobs = (0..<200).map { TestData.text(count: 2000 + $0 * 7, seed: UInt64($0 % 150)) }  // 50 duplicates
        let results = Mutex<[SavedBlob]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in stride(from: worker, to: blobs.count, by: 4) {
                let saved = try! repository.saveBlob(type: .leaf, bytes: blobs[i])
                results.withLock { $0.append(saved) }
            }
        }
        try repository.flush()
        let saved = results.withLock { $0 }
        #expect(saved.count == 200)
        let distinct = Set(blobs.map { repository.blobID(for: $0) })
        #expect(saved.filter { !$0.deduplicated }.count == distinct.count)
        let reopened = try TestRepository.open(storage: storage)
        #expect(reopened.stats().blobCount == distinct.count)
        for bytes in blobs { #expect(try reopened.loadBlob(reopened.blobID(for: bytes)) == bytes) }
        #expect(try reopened.check(readData: true).isClean)
    }

    @Test func sealedFiles() throws {
        let storage = InMemoryBackend()
        let repository = try TestRepository.make(storage: storage)
        let snapshot = Array("{\"root\":\"abc\"}".utf8)
        let id = try repository.saveFile(kind: .snapshot, bytes: snapshot)
        let timeline = try repository.saveFile(kind: .timeline, bytes: [1, 2, 3])
        #expect(try repository.listFiles(kind: .snapshot) == [id])
        #expect(try repository.listFiles(kind: .timeline) == [timeline])
        #expect(try repository.loadFile(kind: .snapshot, id: id) == snapshot)
        #expect(!String(decoding: try storage.get("snapshots/\(id)"), as: UTF8.self).contains("root"))
        // A file cannot pass for another kind.
        storage.replace("timeline/\(id)", with: try storage.get("snapshots/\(id)"))
        #expect { try repository.loadFile(kind: .timeline, id: id) } throws: { ($0 as? RepositoryError)?.code == .invalidFormat }
        try repository.deleteFile(kind: .snapshot, id: id)
        #expect(try repository.listFiles(kind: .snapshot).isEmpty)
    }
}
