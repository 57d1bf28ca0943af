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
    }
}
