import Foundation
import Repository
import Testing
import TestSupport

/// `check --read-data-subset`: rotating buckets of packs that together read every pack
/// once, and find damage in the bucket that holds it.
@Suite("check --read-data-subset")
struct DrillCheckSubsetTests {
    /// A repository of 40 small packs (one 3 KiB blob of random bytes each).
    static func repository(_ storage: InMemoryBackend) throws -> Repository {
        let repository = try TestRepository.make(storage: storage, packTargetSize: 2 << 10)
        for i in 0..<40 {
            _ = try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 3 << 10, seed: UInt64(i + 1)))
        }
        try repository.flush()
        return repository
    }

    @Test func bucketsTogetherReadEveryPackOnce() throws {
        let storage = InMemoryBackend()
        let repository = try Self.repository(storage)
        let packs = storage.keys.filter { $0.hasPrefix("data/") }.map { String($0.split(separator: "/").last!) }
        #expect(packs.count >= 20)
        var reads = 0
        var sizes: [Int] = []
        for bucket in 0..<4 {
            let subset = try PackSubset(bucket: bucket, of: 4)
            let report = try repository.check(readData: false, subset: subset)
            #expect(report.isClean)
            #expect(report.packsRead == packs.filter(subset.contains).count)
            reads += report.packsRead
            sizes.append(report.packsRead)
        }
        #expect(reads == packs.count, "each pack is in exactly one bucket")
        #expect(sizes.allSatisfy { $0 > 0 }, "buckets by name hash are all used: \(sizes)")
    }

    @Test func percentRotatesByDay() throws {
        let day = 86_400.0
        let monday = try PackSubset(percent: 25, date: Date(timeIntervalSince1970: 20_000 * day + 3600))
        let tuesday = try PackSubset(percent: 25, date: Date(timeIntervalSince1970: 20_001 * day))
        #expect(monday.count == 4 && tuesday.count == 4)
        #expect(monday.bucket == 20_000 % 4 && tuesday.bucket == 20_001 % 4)
        #expect(try PackSubset(percent: 30, date: Date()).count == 4, "ceil(100/30)")
        #expect(throws: RepositoryError.self) { try PackSubset(percent: 0, date: Date()) }
        #expect(throws: RepositoryError.self) { try PackSubset(bucket: 4, of: 4) }
    }

    @Test func damageIsFoundByTheBucketHoldingIt() throws {
        let storage = InMemoryBackend()
        _ = try Self.repository(storage)
        let key = try #require(storage.keys.filter { $0.hasPrefix("data/") }.sorted().first)
        let name = String(key.split(separator: "/").last!)
        storage.flipByte(key, at: 5)
        let repository = try TestRepository.open(storage: storage)
        for bucket in 0..<3 {
            let subset = try PackSubset(bucket: bucket, of: 3)
            let report = try repository.check(readData: false, subset: subset)
            #expect(report.isClean == !subset.contains(name), "bucket \(bucket)")
            if subset.contains(name) { #expect(report.problems.contains { $0.pack == name }) }
        }
    }

    @Test func cliReadsTheSubsetAndSaysWhich() throws {
        guard CLIRunner.isAvailable else { try Test.cancel(Comment(rawValue: CLIRunner.unavailableReason)) }
        let directory = Fixtures.temporaryDirectory("ancre-check-subset")
        defer { try? FileManager.default.removeItem(at: directory) }
        let repository = try TestRepository.make(storage: try LocalBackend(path: directory.path), packTargetSize: 2 << 10)
        for i in 0..<10 { _ = try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 3 << 10, seed: UInt64(i + 1))) }
        try repository.flush()
        let cli = CLIRunner(password: TestRepository.passphrase)
        let r = try cli.run(["check", "--repo", directory.path, "--read-data-subset", "1/2"])
        #expect(r.status == 0 && r.stdout.contains("subset 1/2:") && r.stdout.contains("buckets 0 to 1 together read every pack"), "\(r)")
        let daily = try cli.run(["check", "--repo", directory.path, "--read-data-subset", "10%", "--json"])
        #expect(daily.status == 0 && daily.stdout.contains("\"subset\"") && daily.stdout.contains("/10\""), "\(daily)")
        let bad = try cli.run(["check", "--repo", directory.path, "--read-data-subset", "150%"])
        #expect(bad.status == 64 && bad.stderr.contains("--read-data-subset takes a percentage"), "\(bad)")
    }
}
