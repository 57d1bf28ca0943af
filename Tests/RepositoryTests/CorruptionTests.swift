import Testing
import TestSupport
@testable import Repository

/// A repository with three blobs in one flushed pack.
private struct Fixture {
    let storage = InMemoryBackend()
    let repository: Repository
    let blobs: [(id: BlobID, bytes: [UInt8])]
    let packKey: String
    var packName: String { String(packKey.split(separator: "/").last!) }

    init() throws {
        let repository = try TestRepository.make(storage: storage)
        self.repository = repository
        blobs = try (0..<3).map { i in
            let bytes = TestData.text(count: 10_000, seed: UInt64(i))
            return (try repository.saveBlob(type: .leaf, bytes: bytes).id, bytes)
        }
        try repository.flush()
        packKey = storage.keys.first { $0.hasPrefix("data/") }!
    }

    func reopen(ignoreCorruptIndex: Bool = false) throws -> Repository {
        try TestRepository.open(storage: storage, ignoreCorruptIndex: ignoreCorruptIndex)
    }
}

private func code(_ body: () throws -> Any) -> RepositoryError.Code? {
    do { _ = try body() } catch let error as RepositoryError { return error.code } catch { return nil }
    return nil
}

@Suite struct CorruptionTests {
    @Test func intactRepositoryChecksClean() throws {
        let f = try Fixture()
        let quick = try f.repository.check(readData: false)
        #expect(quick.isClean && quick.packsChecked == 1 && quick.indexFilesChecked == 1 && quick.unreferencedPacks.isEmpty)
        let full = try f.repository.check(readData: true)
        #expect(full.isClean && full.blobsChecked == 3)
    }

    @Test func flippedByteInAPack() throws {
        let f = try Fixture()
        f.storage.flipByte(f.packKey, at: 5)  // inside the first blob
        let repository = try f.reopen()
        #expect(code { try repository.loadBlob(f.blobs[0].id) } == .packCorrupt)
        do { _ = try repository.loadBlob(f.blobs[0].id) } catch { #expect("\(error)".contains(f.packName)) }
        #expect(try repository.loadBlob(f.blobs[1].id) == f.blobs[1].bytes)

        let report = try repository.check(readData: true)
        #expect(!report.isClean)
        #expect(report.problems.contains { $0.code == .packCorrupt && $0.pack == f.packName && $0.blob == nil })  // hash != name
        #expect(report.problems.contains { $0.code == .packCorrupt && $0.pack == f.packName && $0.blob == f.blobs[0].id })
        #expect(!report.problems.contains { $0.blob == f.blobs[1].id })
    }

    @Test func flippedByteInAPackHeader() throws {
        let f = try Fixture()
        let size = try f.storage.stat(f.packKey)!
        f.storage.flipByte(f.packKey, at: size - PackFormat.trailerLength - 3)
        let report = try f.reopen().check(readData: false)
        #expect(report.problems.contains { $0.code == .packCorrupt && $0.pack == f.packName })
    }

    @Test func truncatedPack() throws {
        let f = try Fixture()
        let size = try f.storage.stat(f.packKey)!
        f.storage.truncate(f.packKey, to: size / 2)
        let repository = try f.reopen()
        #expect(code { try repository.loadBlob(f.blobs[2].id) } == .packTruncated)
        let report = try repository.check(readData: false)
        #expect(report.problems.contains { $0.code == .packTruncated && $0.pack == f.packName && $0.blob == f.blobs[2].id })
        #expect(report.problems.contains { $0.code == .packTruncated && $0.pack == f.packName && $0.blob == nil })  // no trailer
    }

    @Test func missingPack() throws {
        let f = try Fixture()
        try f.storage.delete(f.packKey)
        let repository = try f.reopen()
        #expect(code { try repository.loadBlob(f.blobs[0].id) } == .packMissing)
        let report = try repository.check(readData: true)
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.code == .packMissing && report.problems.first?.pack == f.packName)
        #expect(report.problems.first?.message.contains("3 blobs") == true)
    }

    @Test func missingIndexLeavesUnreferencedPacks() throws {
        let f = try Fixture()
        for key in f.storage.keys where key.hasPrefix("index/") { try f.storage.delete(key) }
        let repository = try f.reopen()
        #expect(code { try repository.loadBlob(f.blobs[0].id) } == .blobNotFound)
        let report = try repository.check(readData: true)
        #expect(report.unreferencedPacks == [f.packName])
        #expect(report.isClean)
    }

    @Test func corruptIndex() throws {
        let f = try Fixture()
        let indexKey = f.storage.keys.first { $0.hasPrefix("index/") }!
        f.storage.flipByte(indexKey, at: 40)
        do {
            _ = try f.reopen()
            Issue.record("opened with a corrupt index")
        } catch let error as RepositoryError {
            #expect(error.code == .indexCorrupt)
            #expect(error.message.contains(indexKey))
        }
        let lenient = try f.reopen(ignoreCorruptIndex: true)
        #expect(lenient.indexProblems.map(\.code) == [.indexCorrupt])
        let report = try lenient.check(readData: false)
        #expect(report.problems.contains { $0.code == .indexCorrupt && $0.indexFile == indexKey })
        #expect(report.unreferencedPacks == [f.packName])
    }

    @Test func contentNotMatchingItsIDIsCaught() throws {
        let f = try Fixture()
        let bogus = f.repository.blobID(for: [42])
        try f.repository.saveBlob(type: .leaf, bytes: [1, 2, 3], id: bogus)
        try f.repository.flush()
        #expect(code { try f.repository.loadBlob(bogus) } == .blobCorrupt)
        let report = try f.repository.check(readData: true)
        #expect(report.problems.map(\.code) == [.blobCorrupt])
        #expect(report.problems.first?.blob == bogus)
    }

    @Test func anotherRepositorysPackFailsAuthentication() throws {
        let f = try Fixture()
        // Another repository's pack under the same offsets: a different master key does not authenticate.
        let stranger = try Fixture()
        let pack = try f.storage.get(f.packKey)
        stranger.storage.replace(stranger.packKey, with: pack)
        #expect(code { try stranger.reopen().loadBlob(stranger.blobs[0].id) } == .packCorrupt)
    }
}
