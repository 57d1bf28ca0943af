import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import Repository

@Suite struct BackendTests {
    @Test func inMemoryBackendConforms() throws {
        try BackendConformance.run { InMemoryBackend() }
    }

    @Test func localBackendConforms() throws {
        let root = Fixtures.temporaryDirectory("ancre-local")
        defer { try? FileManager.default.removeItem(at: root) }
        var n = 0
        try BackendConformance.run {
            n += 1
            return try LocalBackend(path: root.appendingPathComponent("r\(n)").path)
        }
    }

    /// A writer that accepts `limit` bytes in total, then fails with ENOSPC like a full disk.
    private func fullDisk(after limit: Int) -> FileWriter {
        let written = Mutex(0)
        return FileWriter { fd, buffer in
            let allowed = written.withLock { total in
                let n = min(buffer.count, max(0, limit - total))
                total += n
                return n
            }
            guard allowed > 0 else { return .failure(.init(code: ENOSPC)) }
            return FileWriter.posix.write(fd, UnsafeRawBufferPointer(rebasing: buffer[..<allowed]))
        }
    }

    private func temporaryFiles(under root: URL) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root.path)!
        return walker.compactMap { $0 as? String }.filter { ($0 as NSString).lastPathComponent.hasPrefix(".tmp-") }
    }

    @Test func fullDiskLeavesNoPartialObject() throws {
        let root = Fixtures.temporaryDirectory("ancre-full")
        defer { try? FileManager.default.removeItem(at: root) }
        let backend = try LocalBackend(path: root.path, fileWriter: fullDisk(after: 100_000))
        let small = TestRepository.bytes(count: 50_000, seed: 1)
        try backend.put("data/aa/first", small)

        let big = TestRepository.bytes(count: 200_000, seed: 2)
        do {
            try backend.put("data/aa/second", big)
            Issue.record("a write past the full disk succeeded")
        } catch let error as RepositoryError {
            #expect(error.code == .storageFull)
            #expect(error.message.contains("data/aa/second"))
            #expect(error.message.contains("free space"))
        }
        #expect(try backend.stat("data/aa/second") == nil)
        #expect(try backend.list(prefix: "data/").map(\.key) == ["data/aa/first"])
        #expect(throws: RepositoryError.self) { try backend.get("data/aa/second") }
        #expect(temporaryFiles(under: root).isEmpty)

        // Replacing an object on a full disk keeps the old one whole.
        #expect(throws: RepositoryError.self) { try backend.put("data/aa/first", big) }
        #expect(try backend.get("data/aa/first") == small)
        #expect(throws: RepositoryError.self) { _ = try backend.putIfAbsent("config", big) }
        #expect(try backend.stat("config") == nil)
    }

    @Test func fullDiskDuringPackUploadFailsTheFlush() throws {
        let root = Fixtures.temporaryDirectory("ancre-fullrepo")
        defer { try? FileManager.default.removeItem(at: root) }
        // Enough room for config and key slot only.
        let backend = try LocalBackend(path: root.path, fileWriter: fullDisk(after: 4_000))
        let repository = try TestRepository.make(storage: backend)
        try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 20_000, seed: 5))
        #expect(throws: RepositoryError.self) { try repository.flush() }
        do { try repository.flush() } catch let error as RepositoryError { #expect(error.code == .storageFull) }
        #expect(try backend.list(prefix: "data/").isEmpty)
        #expect(try backend.list(prefix: "index/").isEmpty)
        #expect(temporaryFiles(under: root).isEmpty)
    }

    /// A full pack uploads in the background: its failure reaches the next save and the flush,
    /// and its blobs are no longer counted as stored.
    @Test func fullDiskDuringABackgroundUploadFailsLaterSavesAndTheFlush() throws {
        let root = Fixtures.temporaryDirectory("ancre-fullrepo-background")
        defer { try? FileManager.default.removeItem(at: root) }
        let backend = try LocalBackend(path: root.path, fileWriter: fullDisk(after: 4_000))
        let repository = try TestRepository.make(storage: backend, packTargetSize: 10_000)
        let first = try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 20_000, seed: 5))
        repository.waitForUploads()
        #expect(!repository.hasBlob(first.id))
        do {
            try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 20_000, seed: 6))
            Issue.record("a save after a failed upload succeeded")
        } catch let error as RepositoryError {
            #expect(error.code == .storageFull)
        }
        do {
            try repository.flush()
            Issue.record("a flush after a failed upload succeeded")
        } catch let error as RepositoryError {
            #expect(error.code == .storageFull)
        }
        #expect(try backend.list(prefix: "data/").isEmpty)
        #expect(try backend.list(prefix: "index/").isEmpty)
        #expect(temporaryFiles(under: root).isEmpty)
    }

    @Test func temporaryFilesAreIgnoredAndRemovable() throws {
        let root = Fixtures.temporaryDirectory("ancre-tmp")
        defer { try? FileManager.default.removeItem(at: root) }
        let backend = try LocalBackend(path: root.path)
        try backend.put("data/ab/x", [1])
        _ = FileManager.default.createFile(atPath: root.path + "/data/ab/.tmp-dead", contents: Data([1, 2]))
        #expect(try backend.list(prefix: "data/").map(\.key) == ["data/ab/x"])
        #expect(try backend.removeTemporaryFiles() == 1)
        #expect(temporaryFiles(under: root).isEmpty)
    }

    @Test func keysCannotEscapeTheRoot() throws {
        let backend = try LocalBackend(path: Fixtures.temporaryDirectory("ancre-keys").path)
        for key in ["../x", "/etc/passwd", "data/../../x", "", "data//x", "data/.tmp-1"] {
            #expect(throws: RepositoryError.self) { try backend.put(key, [1]) }
        }
    }
}
