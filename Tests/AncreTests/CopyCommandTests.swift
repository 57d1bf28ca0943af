import Foundation
@testable import Repository
import Testing
import TestSupport

@Suite(.needsBinary) struct CopyCommandTests {
    struct CopyJSON: Decodable {
        var keys: Int
        var config: Int
        var packs: Int
        var indexFiles: Int
        var objectsCopied: Int
        var objectsSkipped: Int
        var bytesCopied: Int
        var seconds: Double
    }

    @Test func copiesOnlyWhatIsMissingAndTheCopyChecksClean() throws {
        let sandbox = Sandbox()
        try sandbox.initialize()
        let repository = try sandbox.openRepository()
        for i in 0..<30 {
            _ = try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 40_000, seed: UInt64(i), alphabet: 64))
        }
        try repository.flush()
        let destination = sandbox.path("offsite")

        let first = try decode(CopyJSON.self, try sandbox.ok("copy", "--from", sandbox.repo, "--to", destination, "--json").stdout)
        #expect(first.config == 1 && first.keys == 1 && first.indexFiles == 1)
        #expect(first.packs == sandbox.packs.count && first.packs > 0)
        #expect(first.bytesCopied > 0 && first.objectsSkipped == 0)

        let check = try sandbox.ok("check", "--repo", destination, "--read-data")
        #expect(check.stdout.contains("no errors"), "\(check)")

        let again = try sandbox.ok("copy", "--from", sandbox.repo, "--to", destination)
        #expect(again.stdout.contains("copied 0 objects"), "\(again)")
        #expect(again.stdout.contains("\(first.objectsCopied) objects already there"), "\(again)")

        let wrong = try sandbox.ancre("copy", "--from", sandbox.repo, "--to", destination, env: ["ANCRE_PASSWORD": "not it"])
        #expect(wrong.status == 12, "\(wrong)")
        let notS3 = try sandbox.ancre("copy", "--from", sandbox.repo, "--to", destination, "--object-lock", "7d")
        #expect(notS3.status == 64 && notS3.stderr.contains("needs an s3: destination"), "\(notS3)")
    }

    /// A ransomware-proof copy: every object locked; a prune there (or an attacker's
    /// deletes) only hides objects behind delete markers, and the locked versions stay.
    @Test(.enabled(if: ServerMoto.isAvailable)) func objectLockedCopy() throws {
        let moto = try ServerMoto.shared.get()
        let sandbox = Sandbox()
        try sandbox.initialize()
        let repository = try sandbox.openRepository()
        for i in 0..<5 {
            _ = try repository.saveBlob(type: .leaf, bytes: TestRepository.bytes(count: 20_000, seed: UInt64(i), alphabet: 64))
        }
        try repository.flush()
        let bucket = try moto.makeBackend(objectLock: true)
        let location = "s3:http://127.0.0.1:\(moto.port)/\(bucket.location.bucket)/copy"
        let env: [String: String?] = ["AWS_ACCESS_KEY_ID": moto.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.credentials.secretAccessKey]
        let copied = try sandbox.ancre("copy", "--from", sandbox.repo, "--to", location, "--object-lock", "1d", "--object-lock-mode", "compliance", env: env)
        try #require(copied.status == 0, "\(copied)")
        let pack = try #require(try bucket.list(prefix: "copy/data/").first?.key)
        let head = try bucket.perform(.init(method: "HEAD", key: pack), what: "HEAD", key: pack)
        #expect(head.headers["x-amz-object-lock-mode"] == "COMPLIANCE", "\(head.headers)")

        // No snapshot names these blobs: prune on the copy removes every pack, as far as listings go.
        let pruned = try sandbox.ancre("prune", "--repo", location, env: env)
        #expect(pruned.status == 0, "\(pruned)")
        #expect(try bucket.list(prefix: "copy/data/").isEmpty)
        let versions = try bucket.perform(.init(method: "GET", key: nil, query: [("versions", ""), ("prefix", "copy/data/")]), what: "GET versions", key: "copy/data/")
        #expect(String(decoding: versions.body, as: UTF8.self).contains(pack), "the locked version of \(pack) is still there")
    }
}
