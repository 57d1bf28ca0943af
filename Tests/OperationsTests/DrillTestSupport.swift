import BSON
import Foundation
import Mongo
import Repository
import Testing
import TestSupport

/// A simulator under a loadgen workload, backed up and tailed into a local repository
/// (weak KDF, small packs), which drills restore into under a scratch prefix.
final class DrillScenario {
    let server: ServerProcess
    let directory = Fixtures.temporaryDirectory("ancre-drill")
    var repositoryPath: String { directory.appendingPathComponent("repo").path }
    let cli = CLIRunner(password: TestRepository.passphrase)

    static var unavailableReason: String? {
        if !CLIRunner.isAvailable { return CLIRunner.unavailableReason }
        return ServerProcess.unavailableReason(.simulator)
    }

    /// - Parameters:
    ///   - initial, changes: writes before the snapshot and after it (tailed); loadgen
    ///     for 1 and `loadSeconds` seconds when nil.
    init(loadSeconds: Double = 2, initial: ((MongoClient) throws -> Void)? = nil, changes: ((MongoClient) throws -> Void)? = nil) throws {
        if let reason = Self.unavailableReason { try Test.cancel(Comment(rawValue: reason)) }
        server = try ServerProcess(.simulator, arguments: ["--txn-chunk-ops", "40"])
        _ = try TestRepository.make(storage: try LocalBackend(path: repositoryPath))
        if let initial { try initial(try client()) } else { try loadgen(seconds: 1, seed: 1) }
        try cli.whileTailing(uri: server.uri, repo: repositoryPath) {
            let backup = try cli.run(["backup", "--uri", server.uri, "--repo", repositoryPath])
            try #require(backup.status == 0, "\(backup)")
            if let changes { try changes(try client()) } else { try loadgen(seconds: loadSeconds, seed: 2) }
        }
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func loadgen(seconds: Double, seed: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", ServerProcess.repositoryRoot.appendingPathComponent("Tools/simulator/loadgen.py").path,
                             "--uri", server.uri, "--rate", "400", "--duration", "\(seconds)", "--seed", "\(seed)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
    }

    func open() throws -> Repository {
        try TestRepository.open(storage: try LocalBackend(path: repositoryPath))
    }

    func client() throws -> MongoClient {
        try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(5))
    }

    /// Database names on the server.
    func databases() throws -> [String] {
        try client().listDatabases().map(\.name).sorted()
    }

    /// Pack files of the repository, by name.
    func packFiles() throws -> [String: URL] {
        var out: [String: URL] = [:]
        let data = directory.appendingPathComponent("repo/data")
        for sub in try FileManager.default.contentsOfDirectory(atPath: data.path) {
            let dir = data.appendingPathComponent(sub)
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                out[name] = dir.appendingPathComponent(name)
            }
        }
        return out
    }

    /// Flips one byte of a file in place.
    static func flipByte(_ url: URL, at offset: Int) throws {
        var bytes = try Data(contentsOf: url)
        bytes[offset] ^= 0xFF
        try bytes.write(to: url)
    }
}
