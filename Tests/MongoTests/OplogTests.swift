import BSON
import Foundation
import Testing
import TestSupport
@testable import Mongo

/// Tailable awaitData cursors on the simulator's oplog.
@Suite("Oplog tailing", .timeLimit(.minutes(3)))
struct OplogTests {
    /// Reads until `count` documents arrived or `deadline` passed.
    func read(_ cursor: Cursor, count: Int, within deadline: Duration = .seconds(5)) throws -> [Document] {
        var out: [Document] = []
        let end = ContinuousClock.now + deadline
        while out.count < count && ContinuousClock.now < end {
            if let d = try cursor.next() { out.append(d) }
        }
        return out
    }

    @Test("entries inserted by another client arrive; empty batches keep the cursor alive; truncation loses it")
    func tail() throws {
        let server = try startServer(.simulator)
        let tailer = try client(server)
        let writer = try client(server)
        let ns = Namespace(database: "tail", collection: "c")
        _ = try writer.insertMany(numbered([0]), into: ns)
        let start = try #require(try tailer.hello().lastWrite)

        let cursor = try tailer.tailOplog(from: start, maxAwaitTime: .milliseconds(200))
        let first = try #require(try cursor.next())
        #expect(first["ts"]?.timestampValue == start, "the first entry is the one at start ($gte)")

        // Nothing new: an empty batch after maxAwaitTimeMS, and the cursor stays alive.
        let began = ContinuousClock.now
        #expect(try cursor.next() == nil)
        #expect(ContinuousClock.now - began >= .milliseconds(150))
        #expect(cursor.isAlive)
        #expect(cursor.id != 0)

        _ = try writer.insertMany(numbered(1...3), into: ns)
        let entries = try read(cursor, count: 3)
        #expect(entries.count == 3)
        #expect(entries.allSatisfy { $0["op"]?.stringValue == "i" && $0["ns"]?.stringValue == "tail.c" })
        #expect(entries.compactMap { $0["o"]?.documentValue?.intID } == [1, 2, 3])
        #expect(try cursor.next() == nil)
        #expect(cursor.isAlive)

        // More entries the cursor has not read, then everything before the newest one is
        // dropped: the cursor's last position is gone.
        _ = try writer.insertMany(numbered(4...6), into: ns)
        try simulate(writer, Document(["simTruncateOplog": .int32(1), "keep": .int32(1)]))
        let error = mongoError { () throws(MongoError) in
            while try cursor.next() != nil {}
            return ()
        }
        #expect(error?.code == .cursorLost)
        #expect(error?.serverCode == ServerErrorCode.cappedPositionLost)
        #expect(!cursor.isAlive)
        #expect(try cursor.next() == nil, "a failed cursor stays failed")
    }

    @Test("a tail from a position already truncated fails with cursorLost or yields nothing older")
    func tailFromTruncatedPosition() throws {
        let server = try startServer(.simulator)
        let mongo = try client(server)
        let ns = Namespace(database: "tail", collection: "gone")
        _ = try mongo.insertMany(numbered([0]), into: ns)
        let old = try #require(try mongo.hello().lastWrite)
        _ = try mongo.insertMany(numbered(1...5), into: ns)
        try simulate(mongo, Document(["simTruncateOplog": .int32(1), "keep": .int32(2)]))
        // The filter `ts >= old` still matches the survivors; continuity is the caller's
        // check: the first entry is not `old`.
        let cursor = try mongo.tailOplog(from: old, maxAwaitTime: .milliseconds(100))
        let first = try cursor.next()
        #expect(first?["ts"]?.timestampValue != old)
    }

    @Test("a step-down kills the tail (cursorLost) and refuses writes (notPrimary)")
    func stepDown() throws {
        let server = try startServer(.simulator)
        let mongo = try client(server)
        let ns = Namespace(database: "tail", collection: "step")
        _ = try mongo.insertMany(numbered([0]), into: ns)
        let before = try mongo.hello()
        let start = try #require(before.lastWrite)
        let cursor = try mongo.tailOplog(from: start, maxAwaitTime: .milliseconds(100))
        #expect(try cursor.next() != nil)

        try simulate(mongo, Document(["simStepDown": .int32(1), "seconds": .int32(5)]))
        let lost = mongoError { () throws(MongoError) in
            while try cursor.next() != nil {}
            return ()
        }
        #expect(lost?.code == .cursorLost, "\(String(describing: lost))")

        let refused = mongoError { () throws(MongoError) in try mongo.insertMany(numbered([1]), into: ns) }
        #expect(refused?.code == .notPrimary, "\(String(describing: refused))")
    }
}
