import Foundation
import Testing
import TestSupport

/// `init` and `key add|list|remove`, and opening with right and wrong passphrases.
@Suite(.needsBinary)
struct KeyCommandTests {
    @Test func initRefusesAnExistingRepository() throws {
        let box = Sandbox()
        let first = try box.ok("init")
        #expect(first.stdout.contains("created repository"), "\(first)")
        let config = try Data(contentsOf: URL(fileURLWithPath: box.repo).appendingPathComponent("config"))

        let again = try box.ancre("init")
        #expect(again.status == 11, "\(again)")
        #expect(again.stderr.contains("a repository already exists here"), "\(again)")
        // Nothing was overwritten: the first repository still opens with its passphrase.
        #expect(try Data(contentsOf: URL(fileURLWithPath: box.repo).appendingPathComponent("config")) == config)
        #expect(box.files(in: "keys").count == 1)
        try box.ok("snapshots")
    }

    @Test func keySlotsAddListRemove() throws {
        let box = Sandbox()
        try box.initialize()
        let list1 = try box.ok("key", "list")
        let firstID = try #require(list1.stdout.split(separator: "\n").first { $0.hasPrefix("*") }?
            .split(separator: " ").dropFirst().first.map(String.init), "\(list1)")

        let added = try box.ok("key", "add", "--label", "second", env: ["ANCRE_NEW_PASSWORD": "second passphrase"])
        let secondID = try #require(added.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        #expect(added.stdout.hasPrefix("added key "), "\(added)")
        #expect(secondID != firstID)

        // The new passphrase opens the repository; `*` marks the slot that opened it.
        let list2 = try box.ok("key", "list", env: ["ANCRE_PASSWORD": "second passphrase"])
        let rows = list2.stdout.split(separator: "\n").dropFirst(2)
        #expect(rows.count == 2, "\(list2)")
        #expect(rows.contains { $0.hasPrefix("*") && $0.contains(secondID) && $0.contains("second") }, "\(list2)")
        #expect(rows.contains { !$0.hasPrefix("*") && $0.contains(firstID) }, "\(list2)")

        // Open with the first passphrase, remove the other slot: its passphrase stops working.
        let removed = try box.ok("key", "remove", secondID)
        #expect(removed.stdout.contains("removed key \(secondID)"))
        let stale = try box.ancre("snapshots", env: ["ANCRE_PASSWORD": "second passphrase"])
        #expect(stale.status == 12, "\(stale)")
        #expect(box.files(in: "keys").count == 1)

        // The last slot is never removed.
        let last = try box.ancre("key", "remove", firstID)
        #expect(last.status == 1, "\(last)")
        #expect(last.stderr.contains("is the last one"), "\(last)")
        #expect(box.files(in: "keys").count == 1)
        try box.ok("snapshots")

        let unknown = try box.ancre("key", "remove", "0123456789abcdef0123456789abcdef")
        #expect(unknown.status == 1, "\(unknown)")
        #expect(unknown.stderr.contains("no key slot"), "\(unknown)")
    }

    @Test func wrongPassphraseIsExit12() throws {
        let box = Sandbox()
        try box.initialize()
        for command in [["snapshots"], ["key", "list"], ["check"], ["stats"]] {
            let r = try box.cli.run(command, environment: ["ANCRE_PASSWORD": "not the passphrase"])
            #expect(r.status == 12, "\(r)")
            #expect(r.stderr.contains("wrong passphrase"), "\(r)")
            #expect(!r.output.contains("not the passphrase"), "the passphrase is never echoed: \(r)")
        }
        // A passphrase file is read too (first line).
        let file = box.path("pw")
        try Data("\(box.password)\nignored\n".utf8).write(to: URL(fileURLWithPath: file))
        try box.ok("snapshots", "--password-file", file, env: ["ANCRE_PASSWORD": nil])
        // No passphrase at all, no terminal: a clear error, same code.
        let none = try box.ancre("snapshots", env: ["ANCRE_PASSWORD": nil])
        #expect(none.status == 12, "\(none)")
        #expect(none.stderr.contains("No passphrase"), "\(none)")
    }

    @Test func missingRepositoryIsExit10() throws {
        let box = Sandbox()
        let r = try box.ancre("snapshots")
        #expect(r.status == 10, "\(r)")
        #expect(!r.stderr.isEmpty, "\(r)")
        let usage = try box.cli.run(["snapshots"], environment: ["ANCRE_REPOSITORY": nil])
        #expect(usage.status == 64, "\(usage)")
        #expect(usage.stderr.contains("--repo"), "\(usage)")
    }
}
