import Foundation
import Testing
import TestSupport

/// `ancre backup` end to end against the simulator: exit codes, `--json`, redaction.
@Suite(.serialized, .needsBinary)
struct BackupCommandTests {
    struct Summary: Decodable {
        var snapshot: String
        var source: String
        var pointInTime: Bool
        var start: String?
        var end: String?
        var collections: Int
        var documents: UInt64
        var oplogEntries: Int
    }

    func server(standalone: Bool = false) throws -> ServerProcess {
        if let reason = ServerProcess.unavailableReason(.simulator) { try Test.cancel(Comment(rawValue: reason)) }
        return try ServerProcess(.simulator, standalone: standalone)
    }

    /// Inserts documents with the simulator's own Python client, so this suite needs no Mongo import.
    func seed(_ server: ServerProcess, count: Int) throws {
        let script = "import pymongo; c = pymongo.MongoClient('127.0.0.1', \(server.port), directConnection=True); "
            + "c.clinic.patients.insert_many([{'_id': i, 'name': 'p%d' % i} for i in range(\(count))])"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
    }

    @Test("backup --json from ANCRE_MONGODB_URI: a point-in-time snapshot")
    func backupJSON() throws {
        let source = try server()
        try seed(source, count: 500)
        let sandbox = Sandbox()
        try sandbox.initialize()
        let r = try sandbox.ok("backup", "--json", "--tag", "nightly", env: ["ANCRE_MONGODB_URI": source.uri])
        let summary = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
        #expect(summary.pointInTime && summary.start != nil && summary.end != nil)
        #expect(summary.collections == 1 && summary.documents == 500)
        #expect(summary.oplogEntries >= 1)
        let text = try sandbox.ok("backup", "--uri", source.uri, "--exclude", "clinic.*")
        #expect(text.stdout.contains("0 documents") && text.stdout.contains("consistent at"))
        #expect(try sandbox.snapshots().count == 2)
        // An export of a backup is a mongorestore archive.
        try sandbox.ok("export", "latest", "--archive", sandbox.path("out.archive"))
    }

    @Test("a server without an oplog: exit 21 suggesting --snapshot-only; with it, a snapshot that says it is not point-in-time")
    func noOplog() throws {
        let source = try server(standalone: true)
        try seed(source, count: 20)
        let sandbox = Sandbox()
        try sandbox.initialize()
        let refused = try sandbox.ancre("backup", "--uri", source.uri)
        #expect(refused.status == 21, "\(refused)")
        #expect(refused.stderr.contains("--snapshot-only"))
        let taken = try sandbox.ok("backup", "--uri", source.uri, "--snapshot-only")
        #expect(taken.stdout.contains("not point-in-time") && taken.stdout.contains("20 documents"))
    }

    @Test("credentials never appear; an unreachable server is exit 20")
    func redactionAndExitCodes() throws {
        let source = try server()
        let sandbox = Sandbox()
        try sandbox.initialize()
        let secret = "s3cret-Pw-\(UUID().uuidString.prefix(6))"
        let file = sandbox.path("uri")
        try "mongodb://backup:\(secret)@127.0.0.1:\(source.port)/?serverSelectionTimeoutMS=1500&authSource=admin\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try sandbox.ancre("backup", "--uri-file", file)
        #expect(r.status != 0)
        #expect(!r.output.contains(secret), "\(r)")
        let unreachable = try sandbox.ancre("backup", "--uri", "mongodb://user:\(secret)@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300")
        #expect(unreachable.status == 20, "\(unreachable)")
        #expect(!unreachable.output.contains(secret))
        #expect(unreachable.output.contains("user:***@") || unreachable.output.contains("127.0.0.1:1"))
        let missing = try sandbox.ancre("backup")
        #expect(missing.status != 0 && missing.stderr.contains("ANCRE_MONGODB_URI"))
    }
}
