import BSON
import Foundation
import Mongo
import Testing
import TestSupport
@testable import Recovery

/// Starts `kind`, or cancels the current test with the reason when it cannot run here.
func startServer(_ kind: ServerKind, arguments: [String] = []) throws -> ServerProcess {
    if let reason = ServerProcess.unavailableReason(kind) {
        try Test.cancel(Comment(rawValue: reason))
    }
    return try ServerProcess(kind, arguments: arguments)
}

func client(_ server: ServerProcess) throws -> MongoClient {
    try MongoClient(uri: server.uri, serverSelectionTimeout: .seconds(5))
}

/// Relaxed Extended JSON parsed into a document (keeps field order; `1` is an int32).
func doc(_ json: String) -> Document {
    try! ExtendedJSON.decode(json)
}

/// Relaxed Extended JSON: int32 and int64 print alike, which absorbs nx-27017 returning
/// int64 values as int32; field order is kept, so order differences still show.
func relaxed(_ d: Document) -> String {
    (try? ExtendedJSON.encode(d, canonical: false)) ?? "\(d.bytes)"
}

/// Every document of `ns` as relaxed JSON, keyed by the relaxed JSON of its `_id`
/// (nx-27017 sorts numeric `_id`s as text, so order is not compared).
func contents(_ client: MongoClient, _ ns: Namespace) throws -> [String: String] {
    var out: [String: String] = [:]
    for d in try client.find(ns).collect() {
        out[relaxed(Document(pairs: [("_id", d["_id"] ?? .null)]))] = relaxed(d)
    }
    return out
}

/// `dbHash` collections of `database`: name -> md5.
func dbHash(_ client: MongoClient, _ database: String) throws -> [String: String] {
    let reply = try client.runCommand(Document(["dbHash": .int32(1)]), database: database)
    var out: [String: String] = [:]
    for (k, v) in reply["collections"]?.documentValue?.elements ?? [] { out[k] = v.stringValue }
    return out
}

/// Every entry of the server's oplog, oldest first.
func oplog(_ client: MongoClient) throws -> [Document] {
    try client.find(.oplog).collect()
}
