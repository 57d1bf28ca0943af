import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Repository

/// A storage that counts puts per key and fails every put once `limit` puts were made in all.
final class CountingStorage: Storage {
    let base: any Storage
    private let state = Mutex((puts: [String: Int](), total: 0, limit: Int?.none))

    init(_ base: any Storage) { self.base = base }

    /// Fails every put after `total` puts in all (counting from the first); nil stops failing.
    func failAfter(total limit: Int?) { state.withLock { $0.limit = limit } }
    var totalPuts: Int { state.withLock { $0.total } }
    /// Puts per key, lock files left out (every run writes its own).
    var puts: [String: Int] { state.withLock { $0.puts.filter { !$0.key.hasPrefix("locks/") } } }

    private func count(_ key: String) throws {
        try state.withLock { state in
            if let limit = state.limit, state.total >= limit {
                throw RepositoryError(.ioFailure, "injected failure after \(limit) puts")
            }
            state.total += 1
            state.puts[key, default: 0] += 1
        }
    }

    func put(_ key: String, _ bytes: [UInt8]) throws {
        try count(key)
        try base.put(key, bytes)
    }

    func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        try count(key)
        return try base.putIfAbsent(key, bytes)
    }

    func get(_ key: String, range: Range<Int>?) throws -> [UInt8] { try base.get(key, range: range) }
    func list(prefix: String) throws -> [StorageEntry] { try base.list(prefix: prefix) }
    func delete(_ key: String) throws { try base.delete(key) }
    func stat(_ key: String) throws -> Int? { try base.stat(key) }
}

/// A storage that runs a closure once, the first time a prefix is listed, before listing it.
final class ListingHookStorage: Storage {
    let base: any Storage
    private let hooks = Mutex([String: @Sendable () throws -> Void]())

    init(_ base: any Storage) { self.base = base }

    func beforeFirstListing(of prefix: String, _ hook: @escaping @Sendable () throws -> Void) {
        hooks.withLock { $0[prefix] = hook }
    }

    func list(prefix: String) throws -> [StorageEntry] {
        if let hook = hooks.withLock({ $0.removeValue(forKey: prefix) }) { try hook() }
        return try base.list(prefix: prefix)
    }

    func put(_ key: String, _ bytes: [UInt8]) throws { try base.put(key, bytes) }
    func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool { try base.putIfAbsent(key, bytes) }
    func get(_ key: String, range: Range<Int>?) throws -> [UInt8] { try base.get(key, range: range) }
    func delete(_ key: String) throws { try base.delete(key) }
    func stat(_ key: String) throws -> Int? { try base.stat(key) }
}

@Suite struct RepositoryCopyTests {
    /// A repository with several packs, index files, snapshots and timeline files, and the blobs saved.
    static func populate(_ storage: any Storage) throws -> (Repository, [(BlobID, [UInt8])]) {
        let repository = try TestRepository.make(storage: storage, packTargetSize: 16 << 10)
        _ = try repository.addKeySlot(passphrase: "second passphrase", kdf: .weakForTesting)
        var saved: [(BlobID, [UInt8])] = []
        for round in 0..<3 {
            for i in 0..<20 {
                let bytes = TestRepository.bytes(count: 2000 + i * 50, seed: UInt64(round * 100 + i), alphabet: 32)
                saved.append((try repository.saveBlob(type: .leaf, bytes: bytes).id, bytes))
            }
            try repository.flush()
            try repository.saveFile(kind: .snapshot, bytes: Array("snapshot \(round)".utf8))
            try repository.saveFile(kind: .timeline, bytes: Array("timeline \(round)".utf8))
        }
        return (repository, saved)
    }

    static func expectSameRepository(_ destination: any Storage, as source: Repository, blobs: [(BlobID, [UInt8])]) throws {
        let copy = try TestRepository.open(storage: destination)
        #expect(copy.config == source.config)
        for (id, bytes) in blobs { #expect(try copy.loadBlob(id) == bytes) }
        #expect(try copy.listFiles(kind: .snapshot) == source.listFiles(kind: .snapshot))
        #expect(try copy.listFiles(kind: .timeline) == source.listFiles(kind: .timeline))
        #expect(try Repository.open(storage: destination, passphrase: "second passphrase").config.id == source.config.id)
        let report = try copy.check(readData: true)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.unreferencedPacks.isEmpty)
        #expect(try copy.listLocks().isEmpty, "the copy released its lock")
    }

    @Test func localToLocal() throws {
        let root = Fixtures.temporaryDirectory("ancre-copy")
        defer { try? FileManager.default.removeItem(at: root) }
        let (source, blobs) = try Self.populate(try LocalBackend(path: root.appendingPathComponent("source").path))
        let destination = try LocalBackend(path: root.appendingPathComponent("destination").path)

        let first = try RepositoryCopy(source: source, destination: destination).run()
        let packs = try source.storage.list(prefix: "data/")
        #expect(first.packs == packs.count && first.packs > 3)
        #expect(first.indexFiles == 3 && first.snapshots == 3 && first.timelineFiles == 3 && first.keys == 2 && first.config == 1)
        #expect(first.bytesCopied > packs.map(\.size).reduce(0, +))
        #expect(first.objectsSkipped == 0)
        try Self.expectSameRepository(destination, as: source, blobs: blobs)

        // More backups on the source; the next copy sends only those.
        let more = TestRepository.bytes(count: 30_000, seed: 99)
        let id = try source.saveBlob(type: .leaf, bytes: more).id
        try source.flush()
        try source.saveFile(kind: .snapshot, bytes: Array("snapshot 3".utf8))
        let second = try RepositoryCopy(source: source, destination: destination).run()
        #expect(second.config == 0 && second.keys == 0 && second.indexFiles == 1 && second.snapshots == 1 && second.timelineFiles == 0)
        #expect(second.packs == 1)
        #expect(second.objectsSkipped == first.objectsCopied)
        try Self.expectSameRepository(destination, as: source, blobs: blobs + [(id, more)])
    }

    /// A backup that ends while the copy lists the source (its pack, then its index file,
    /// then its snapshot) is copied whole or not at all: metadata is listed in the reverse
    /// of the write order, so a snapshot listed is never copied without its index file.
    @Test func aBackupEndingDuringTheListingIsCopiedWhole() throws {
        let sourceStorage = ListingHookStorage(InMemoryBackend())
        let (source, blobs) = try Self.populate(sourceStorage)
        let indexBefore = Set(try source.storage.list(prefix: "index/").map(\.key))
        let more = TestRepository.bytes(count: 30_000, seed: 98)
        let id = try source.saveBlob(type: .leaf, bytes: more).id  // pending until the flush in the hook
        sourceStorage.beforeFirstListing(of: "snapshots/") {
            try source.flush()
            try source.saveFile(kind: .snapshot, bytes: Array("snapshot during the copy".utf8))
        }
        let destination = InMemoryBackend()
        let report = try RepositoryCopy(source: source, destination: destination).run()
        let newIndex = Set(try source.storage.list(prefix: "index/").map(\.key)).subtracting(indexBefore)
        #expect(newIndex.count == 1)
        #expect(report.snapshots == 4)
        #expect(Set(try destination.list(prefix: "index/").map(\.key)).isSuperset(of: newIndex), "the new snapshot's index file was not copied")
        try Self.expectSameRepository(destination, as: source, blobs: blobs + [(id, more)])
    }

    @Test func interruptedCopyResumesWithNothingCopiedTwice() throws {
        let (source, blobs) = try Self.populate(InMemoryBackend())
        let memory = InMemoryBackend()
        let destination = CountingStorage(memory)
        var interruptions = 0
        for extra in [1, 3, 5, 6] {  // interrupt at several points, resuming each time
            destination.failAfter(total: destination.totalPuts + extra)
            do {
                _ = try RepositoryCopy(source: source, destination: destination).run()
            } catch let error as RepositoryError {
                #expect(error.message.contains("injected failure"), "\(error)")
                interruptions += 1
            }
            // Whatever was written is consistent: at most unreferenced packs.
            if try memory.stat("config") != nil {
                let report = try TestRepository.open(storage: memory).check(readData: false)
                #expect(report.isClean, "after \(destination.totalPuts) puts: \(report.problems)")
            }
        }
        #expect(interruptions >= 3)
        let before = destination.puts.count
        destination.failAfter(total: nil)
        let finished = try RepositoryCopy(source: source, destination: destination).run()
        let twice = destination.puts.filter { $0.value > 1 }
        #expect(twice.isEmpty, "copied more than once: \(twice)")
        let expected = try ["keys/", "data/", "index/", "snapshots/", "timeline/"].map { try source.storage.list(prefix: $0).count }.reduce(1, +)
        #expect(destination.puts.count == expected)
        #expect(finished.objectsCopied == expected - before)
        #expect(finished.objectsSkipped == before)
        try Self.expectSameRepository(memory, as: source, blobs: blobs)
    }

    @Test func refusesAnotherRepository() throws {
        let (source, _) = try Self.populate(InMemoryBackend())
        let other = InMemoryBackend()
        _ = try TestRepository.make(storage: other)
        #expect { try RepositoryCopy(source: source, destination: other).run() } throws: {
            ($0 as? RepositoryError)?.code == .invalidArgument
        }
    }

    @Test func damagedSourcePackIsNotCopied() throws {
        let memory = InMemoryBackend()
        let (source, _) = try Self.populate(memory)
        let pack = try #require(memory.keys.first { $0.hasPrefix("data/") })
        memory.flipByte(pack, at: 10)
        let destination = InMemoryBackend()
        #expect { try RepositoryCopy(source: source, destination: destination).run() } throws: {
            ($0 as? RepositoryError)?.code == .packCorrupt
        }
        #expect(try destination.stat(pack) == nil)
        #expect(try destination.list(prefix: "index/").isEmpty, "no index copied after a failed pack")
    }

    @Test(.enabled(if: ServerMoto.isAvailable, Comment(rawValue: ServerMoto.unavailableReason ?? "")))
    func localToS3() throws {
        let root = Fixtures.temporaryDirectory("ancre-copy-s3")
        defer { try? FileManager.default.removeItem(at: root) }
        let (source, blobs) = try Self.populate(try LocalBackend(path: root.path))
        let destination = try ServerMoto.shared.get().makeBackend(prefix: "offsite/clinic")
        let report = try RepositoryCopy(source: source, destination: destination).run()
        #expect(report.packs == (try source.storage.list(prefix: "data/").count))
        try Self.expectSameRepository(destination, as: source, blobs: blobs)
        let again = try RepositoryCopy(source: source, destination: destination).run()
        #expect(again.objectsCopied == 0)
    }
}
