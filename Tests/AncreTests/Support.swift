import BSON
import Foundation
import MongoDump
@testable import Repository
import Testing
import TestSupport

// Helpers for the end-to-end tests: a sandbox (temp dir + repository + runner), the
// fixtures, decoding `--json` output, damaging packs on disk, reading archives.

extension Trait where Self == ConditionTrait {
    /// Skips when the `ancre` executable is not built next to the test binary.
    static var needsBinary: Self { .enabled(if: CLIRunner.isAvailable, Comment(rawValue: CLIRunner.unavailableReason)) }
    /// Skips when ../shared/fixtures/mongo-tools is absent.
    static var needsFixtures: Self { .enabled(if: Fixtures.haveMongoTools, "needs ../shared/fixtures/mongo-tools") }
}

enum CLIFixtures {
    static let oplogDump = Fixtures.mongoTools("mongorestore/testdata/oplogdump")
    static let withOplogArchive = Fixtures.mongoTools("mongorestore/testdata/dump-w-oplog.archive")
    static let testBarArchive = Fixtures.mongoTools("mongorestore/testdata/test.bar.archive")
    static let badFormatArchive = Fixtures.mongoTools("mongorestore/testdata/bad-format.archive")
    static func bsondump(_ name: String) -> String { Fixtures.mongoTools("bsondump/testdata/\(name)") }
}

/// A temporary directory with a repository path in it and a runner whose environment
/// points at that repository (`ANCRE_REPOSITORY`) with `password`; removed when released.
final class Sandbox {
    let directory: URL
    let repo: String
    let password: String
    let cli: CLIRunner

    init(password: String = "pass-\(UUID().uuidString.prefix(6))") {
        directory = Fixtures.temporaryDirectory("ancre-cli")
        repo = directory.appendingPathComponent("repo").path
        self.password = password
        cli = CLIRunner(password: password, environment: ["ANCRE_REPOSITORY": repo])
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs `ancre args…`; `env` adds (or with nil removes) variables.
    @discardableResult
    func ancre(_ args: String..., env: [String: String?] = [:]) throws -> CLIRunner.Result {
        try cli.run(args, environment: env)
    }

    /// Runs and requires exit 0.
    @discardableResult
    func ok(_ args: String..., env: [String: String?] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws -> CLIRunner.Result {
        let r = try cli.run(args, environment: env)
        try #require(r.status == 0, "\(r)", sourceLocation: sourceLocation)
        return r
    }

    /// `init` with the sandbox's passphrase.
    func initialize() throws { try ok("init") }

    /// `import --json PATH`, decoded.
    func importDump(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ImportSummary {
        let r = try cli.run(["import", "--json", path])
        try #require(r.status == 0, "\(r)", sourceLocation: sourceLocation)
        return try decode(ImportSummary.self, r.stdout)
    }

    /// `snapshots --json`, decoded, in the catalog's order.
    func snapshots() throws -> [Listed] {
        let r = try cli.run(["snapshots", "--json"])
        try #require(r.status == 0, "\(r)")
        return try decode([Listed].self, r.stdout)
    }

    /// `check [--read-data] --json`, decoded, with the exit status.
    func checkJSON(readData: Bool) throws -> (status: Int32, report: CheckJSON) {
        let r = try cli.run(["check", "--json"] + (readData ? ["--read-data"] : []))
        return (r.status, try decode(CheckJSON.self, r.stdout))
    }

    /// Files under `<repo>/<directory>/`, as paths.
    func files(in sub: String) -> [String] {
        let root = URL(fileURLWithPath: repo).appendingPathComponent(sub)
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        return e.compactMap { ($0 as? URL)?.path }.filter { !isDirectory($0) }.sorted()
    }

    /// Pack file paths (`data/xx/<name>`).
    var packs: [String] { files(in: "data") }
    var indexFiles: [String] { files(in: "index") }

    /// Opens the repository in-process (to locate blobs for targeted damage).
    func openRepository() throws -> Repository {
        try Repository.open(storage: try LocalBackend(path: repo), passphrase: password)
    }

    /// Where a leaf of `snapshot`'s first collection with data lies: its pack file, blob id and byte range.
    func locateLeaf(of snapshot: String) throws -> (packPath: String, pack: String, blob: String, range: Range<Int>) {
        let repository = try openRepository()
        let catalog = SnapshotCatalog(repository: repository)
        let record = try catalog.find(snapshot).record
        let manifest = try catalog.manifest(of: record)
        let root = try #require(manifest.collections.compactMap(\.root).first, "snapshot \(snapshot) has a collection with documents")
        let leaf = try #require(try TreeReader(load: repository.loadBlob).leaves(root: root).first).child
        for entry in try repository.storage.list(prefix: "data/") {
            let name = String(entry.key.split(separator: "/").last!)
            let header = try PackReader.readHeader(storage: repository.storage, name: name, master: repository.master)
            if let e = header.entries.first(where: { $0.id == leaf }) {
                return (URL(fileURLWithPath: repo).appendingPathComponent(entry.key).path, name, leaf.hex,
                        Int(e.offset)..<Int(e.offset + e.length))
            }
        }
        throw CLIRunner.RunnerFailure(message: "leaf \(leaf) of \(snapshot) is in no pack")
    }
}

func isDirectory(_ path: String) -> Bool {
    var d: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
}

func decode<T: Decodable>(_ type: T.Type, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    do {
        return try decoder.decode(T.self, from: Data(text.utf8))
    } catch {
        Issue.record("cannot decode \(T.self) from:\n\(text)\n\(error)", sourceLocation: sourceLocation)
        throw error
    }
}

struct ImportSummary: Decodable {
    var snapshot: String
    var collections: Int
    var documents: UInt64
    var bytes: UInt64
    var addedBytes: UInt64
}

struct Listed: Decodable, Equatable {
    struct Time: Decodable, Equatable { var t: UInt32; var i: UInt32 }
    struct Record: Decodable, Equatable {
        var source: String
        var kind: String
        var collections: Int
        var documents: UInt64
        var bytes: UInt64
        var addedBytes: UInt64
        var start: Time?
        var end: Time?
    }
    var id: String
    var snapshot: Record
}

struct CheckJSON: Decodable {
    struct Problem: Decodable {
        var code: String
        var pack: String?
        var blob: String?
        var message: String
        var snapshots: [String]
    }
    var problems: [Problem]
    var unreferencedPacks: [String]
    var indexFiles: Int
    var packs: Int
    var snapshots: Int
    var blobsRead: Int
}

// MARK: Damage

/// Flips every bit of the byte at `offset` of `path`.
func flipByte(_ path: String, at offset: Int) throws {
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
    var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
    bytes[offset] ^= 0xFF
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Cuts `path` to `length` bytes.
func truncateFile(_ path: String, to length: Int) throws {
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    try bytes.prefix(length).write(to: URL(fileURLWithPath: path))
}

func packName(_ path: String) -> String { URL(fileURLWithPath: path).lastPathComponent }

// MARK: Archives

/// What a dump holds, for comparisons: per namespace its metadata and documents (as a
/// multiset: sorted by bytes, since Ancre writes them in `_id` order), and the oplog in order.
struct DumpContents: Equatable, CustomStringConvertible {
    var metadata: [Namespace: CollectionMetadata?] = [:]
    var documents: [Namespace: [[UInt8]]] = [:]
    var oplog: [[UInt8]] = []

    init(_ source: some DumpSource) throws {
        for ns in try source.namespaces() {
            metadata[ns.namespace] = ns.metadata
            var docs: [[UInt8]] = []
            if ns.kind != .view {
                try source.forEachDocument(in: ns.namespace) { d, _ in docs.append(d.bytes) }
            }
            documents[ns.namespace] = docs.sorted { $0.lexicographicallyPrecedes($1) }
        }
        try source.forEachOplogEntry { d, _ in oplog.append(d.bytes) }
    }

    init(path: String) throws {
        if isDirectory(path) { try self.init(DumpDirectory(path: path)) } else { try self.init(ArchiveReader(path: path)) }
    }

    var documentCount: Int { documents.values.reduce(0) { $0 + $1.count } }

    var description: String {
        documents.keys.sorted().map { "\($0): \(documents[$0]!.count) documents" }.joined(separator: ", ")
            + "; oplog: \(oplog.count) entries"
    }
}

/// Whitespace runs collapsed to one space, so wrapped help text can be searched.
func squeezed(_ text: String) -> String {
    text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
}
