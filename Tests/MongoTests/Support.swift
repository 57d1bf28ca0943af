import BSON
import Foundation
import Testing
import TestSupport
@testable import Mongo

/// Starts `kind`, or cancels the current test (case) with the reason when it cannot run here.
func startServer(_ kind: ServerKind, standalone: Bool = false) throws -> ServerProcess {
    if let reason = ServerProcess.unavailableReason(kind) {
        try Test.cancel(Comment(rawValue: reason))
    }
    return try ServerProcess(kind, standalone: standalone)
}

/// A client on `server` with the short timeouts tests want.
func client(_ server: ServerProcess) throws -> MongoClient {
    try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(2))
}

/// Catches the MongoError `body` throws; records an issue if it throws nothing.
func mongoError<R>(_ body: () throws(MongoError) -> R, sourceLocation: SourceLocation = #_sourceLocation) -> MongoError? {
    do {
        _ = try body()
        Issue.record("expected a MongoError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Documents `{_id: i, n: i, pad: "..."}` for the given ids.
func numbered(_ ids: some Sequence<Int>, pad: Int = 40) -> [Document] {
    let padding = String(repeating: "x", count: pad)
    return ids.map { Document(["_id": .int32(Int32($0)), "n": .int64(Int64($0)), "pad": .string(padding)]) }
}

extension Document {
    var intID: Int? { self["_id"]?.int64Value.map { Int($0) } }
}

/// Runs a fault-injection admin command on the simulator.
func simulate(_ client: MongoClient, _ command: Document) throws {
    _ = try client.runAdminCommand(command)
}
