import BSON

/// A server-side cursor that yields documents in batches; owns its libmongoc cursor
/// and the pooled connection it runs on.
///
/// Not thread-safe: use it from one thread at a time (it may move between threads).
/// `next()` blocks while a batch is fetched. Closing (or deinit) kills the server-side
/// cursor and returns the connection to the client's pool.
public final class Cursor {
    private var cursor: OpaquePointer?
    private var client: OpaquePointer?
    private let owner: MongoClient
    private let context: MongoError.Context
    /// Tailable cursors stay alive at the end of the data.
    public let isTailable: Bool
    private var failed = false

    init(cursor: OpaquePointer, client: OpaquePointer, owner: MongoClient, context: MongoError.Context, tailable: Bool) {
        self.cursor = cursor
        self.client = client
        self.owner = owner
        self.context = context
        self.isTailable = tailable
    }

    deinit { close() }

    /// The next document, or nil: at the end of a regular cursor, or, for a tailable
    /// cursor, when nothing new arrived within maxAwaitTimeMS (check `isAlive`).
    ///
    /// Documents are copied out of libmongoc's batch buffer and validated.
    /// - Throws: `MongoError` `.cursorLost` (136, 43, 11602...), `.connectionDropped`,
    ///   `.malformedReply`, or another mapped server error; the cursor is dead after.
    public func next() throws(MongoError) -> Document? {
        guard let cursor, !failed else { return nil }
        let bytes = LibMongoC.cursorNext(cursor) { Array($0) }
        if let bytes {
            do {
                return try Document(bytes: bytes)
            } catch {
                failed = true
                throw MongoError(.malformedReply, "\(context.operation) on \(context.hosts) returned an invalid BSON document (\(error)); the server or a proxy is broken.")
            }
        }
        if let error = LibMongoC.cursorError(cursor) {
            failed = true
            throw MongoError(error, context)
        }
        return nil
    }

    /// True while more documents may come: a regular cursor not yet exhausted, or a
    /// tailable cursor the server still holds. False after an error or `close()`.
    public var isAlive: Bool {
        guard let cursor, !failed else { return false }
        return LibMongoC.cursorMore(cursor)
    }

    /// The server-side cursor id (0 once exhausted or before the first batch).
    public var id: Int64 { cursor.map(LibMongoC.cursorID) ?? 0 }

    /// Reads the remaining documents (for small results: listings, tests).
    /// - Throws: `MongoError` as `next()`.
    public func collect() throws(MongoError) -> [Document] {
        var out: [Document] = []
        while let d = try next() { out.append(d) }
        return out
    }

    /// Kills the server-side cursor (if open) and returns the connection; idempotent.
    public func close() {
        if let cursor { LibMongoC.cursorDestroy(cursor) }
        if let client { owner.release(client) }
        cursor = nil
        client = nil
    }
}
