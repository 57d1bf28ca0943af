import BSON
import Logging

/// A connection to a MongoDB deployment (standalone or replica set) from a standard
/// `mongodb://` or `mongodb+srv://` URI.
///
/// Thread-safe: it owns a libmongoc client pool, and every operation borrows a
/// connection for its duration (a `Cursor` keeps its connection until it is closed).
/// All methods block the calling thread on network I/O: call them from threads you
/// own (sized to the work), never unbounded from Swift's cooperative pool.
public final class MongoClient: @unchecked Sendable {
    // @unchecked: the only state is the pool pointer, and mongoc_client_pool_t is
    // documented thread-safe; the rest is immutable.
    private let pool: OpaquePointer
    /// The URI with credentials replaced by `***`.
    public let redactedURI: String
    /// The URI's host list, for messages and log metadata.
    public let hosts: String
    private let secrets: [String]
    private let serverSelectionTimeoutMS: Int32
    private let logger: Logger

    /// Parses the URI and prepares a pool; connects lazily on the first operation.
    ///
    /// - Parameters:
    ///   - uri: any libmongoc URI (replicaSet, tls*, authMechanism, authSource, ...).
    ///   - serverSelectionTimeout: how long an operation waits for a suitable server
    ///     (libmongoc's default is 30 s; nil keeps the URI's value).
    ///   - connectTimeout: TCP/TLS connect timeout (nil keeps the URI's value, default 10 s).
    ///   - socketTimeout: how long to wait on a silent connection before failing it
    ///     (libmongoc's default is 5 minutes; must exceed any maxAwaitTime).
    ///   - logger: receives debug/info events with `mongo.*` metadata; never credentials.
    /// - Throws: `MongoError` `.invalidURI` (the message never repeats the password).
    public init(uri: String, serverSelectionTimeout: Duration? = nil, connectTimeout: Duration? = nil,
                socketTimeout: Duration? = nil, logger: Logger = MongoClient.silentLogger) throws(MongoError) {
        redactedURI = MongoURI.redacted(uri)
        hosts = MongoURI.hosts(uri)
        secrets = MongoURI.secrets(uri)
        var logger = logger
        logger[metadataKey: "mongo.host"] = .string(hosts)
        self.logger = logger
        let selectionMS = serverSelectionTimeout.map(Self.milliseconds) ?? 0
        let connectMS = connectTimeout.map(Self.milliseconds) ?? 0
        let socketMS = socketTimeout.map(Self.milliseconds) ?? 0
        serverSelectionTimeoutMS = selectionMS > 0 ? selectionMS : Self.uriServerSelectionTimeoutMS(uri)
        switch LibMongoC.poolNew(uri: uri, serverSelectionTimeoutMS: selectionMS, connectTimeoutMS: connectMS, socketTimeoutMS: socketMS) {
        case .success(let pool):
            self.pool = pool
        case .failure(let error):
            let detail = error.message.isEmpty ? "" : ": " + Self.scrub(error.message, secrets)
            throw MongoError(.invalidURI, "invalid MongoDB URI \(redactedURI)\(detail). Use mongodb://[user:password@]host[:port][,host...]/[authDB][?options] and percent-encode special characters in the user name and password.",
                             libmongocCode: "\(error.domain).\(error.code)")
        }
        logger.debug("mongo client created", metadata: ["mongo.uri": .string(redactedURI)])
    }

    deinit {
        LibMongoC.poolDestroy(pool)
    }

    /// A logger that discards everything, the default when the caller passes none.
    public static let silentLogger = Logger(label: "ancre.mongo") { _ in SwiftLogNoOpLogHandler() }

    // MARK: Topology

    /// Asks the server who it is: `hello` (falling back to `isMaster`), `buildInfo`, and
    /// whether `local.oplog.rs` exists.
    /// - Throws: `MongoError` (`.serverUnreachable`, `.authenticationFailed`, ...).
    public func hello() throws(MongoError) -> ServerInfo {
        var reply: Document
        do {
            reply = try runCommand(Document(["hello": .int32(1)]), database: "admin")
        } catch let error where error.code == .commandNotFound {
            reply = try runCommand(Document(["isMaster": .int32(1)]), database: "admin")
        }
        let build = try? runCommand(Document(["buildInfo": .int32(1)]), database: "admin")
        let oplog = try listCollections(database: "local", filter: Document(["name": .string("oplog.rs")]))
        let opTime = reply["lastWrite"]?.documentValue?["opTime"]?.documentValue
        var electionID: ObjectID?
        if case .objectID(let id)? = reply["electionId"] { electionID = id }
        let info = ServerInfo(
            setName: reply["setName"]?.stringValue,
            primary: reply["primary"]?.stringValue,
            hosts: reply["hosts"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            me: reply["me"]?.stringValue,
            isWritablePrimary: (reply["isWritablePrimary"] ?? reply["ismaster"])?.boolValue ?? false,
            isSecondary: reply["secondary"]?.boolValue ?? false,
            maxWireVersion: Int(reply["maxWireVersion"]?.int64Value ?? 0),
            version: build?["version"]?.stringValue ?? "unknown",
            hasOplog: oplog.contains { $0.name == "oplog.rs" },
            electionID: electionID,
            term: opTime?["t"]?.int64Value,
            lastWrite: opTime?["ts"]?.timestampValue,
            hello: reply)
        logger.debug("hello", metadata: [
            "mongo.set": .string(info.setName ?? "-"), "mongo.version": .string(info.version),
            "mongo.primary": .stringConvertible(info.isWritablePrimary), "mongo.oplog": .stringConvertible(info.hasOplog),
        ])
        return info
    }

    /// `hello()`, then `requireOplog`: the check to run before capturing.
    /// - Throws: `MongoError` `.noOplog` for a standalone server or one without `local.oplog.rs`.
    public func helloRequiringOplog() throws(MongoError) -> ServerInfo {
        let info = try hello()
        try info.requireOplog(hosts: hosts)
        return info
    }

    // MARK: Listing

    /// All databases with their size on disk.
    /// - Throws: `MongoError` (`.unauthorized` without listDatabases privilege).
    public func listDatabases() throws(MongoError) -> [DatabaseInfo] {
        let reply = try runCommand(Document(["listDatabases": .int32(1)]), database: "admin")
        guard let list = reply["databases"]?.arrayValue else {
            throw MongoError(.malformedReply, "listDatabases on \(hosts) replied without a databases array")
        }
        return try list.map { (value: BSONValue) throws(MongoError) -> DatabaseInfo in
            guard let d = value.documentValue, let name = d["name"]?.stringValue else {
                throw MongoError(.malformedReply, "listDatabases on \(hosts) replied with an entry without a name")
            }
            return DatabaseInfo(name: name, sizeOnDisk: d["sizeOnDisk"]?.int64Value ?? 0, empty: d["empty"]?.boolValue ?? false)
        }
    }

    /// Collections and views of a database with their full `listCollections` info.
    /// - Parameter filter: a listCollections filter, e.g. `{name: "x"}`.
    /// - Throws: `MongoError`.
    public func listCollections(database: String, filter: Document? = nil) throws(MongoError) -> [CollectionInfo] {
        var options = DocumentBuilder()
        if let filter { options.append("filter", .document(filter)) }
        let cursor = try openCursor("listCollections on \(database)") { client in
            LibMongoC.listCollections(client, database: database, options: options.build())
        }
        let all = try cursor.collect().map { (d: Document) throws(MongoError) in try CollectionInfo(d) }
        // Some servers (nx-27017) ignore the filter; re-apply the common `{name: "x"}` form.
        if let filter, filter.keys == ["name"], let name = filter["name"]?.stringValue {
            return all.filter { $0.name == name }
        }
        return all
    }

    /// Index specifications (`listIndexes` documents); empty if the collection does not exist.
    /// - Throws: `MongoError`.
    public func listIndexes(_ namespace: Namespace) throws(MongoError) -> [Document] {
        let cursor = try openCursor("listIndexes on \(namespace)") { client in
            LibMongoC.listIndexes(client, namespace)
        }
        return try cursor.collect()
    }

    // MARK: Cursors

    /// Opens a find cursor; the first batch is fetched on the first `next()`.
    ///
    /// The cursor holds one pooled connection until it is closed or deinitialized.
    /// - Throws: `MongoError` for invalid options; server errors surface from `next()`.
    public func find(_ namespace: Namespace, _ options: FindOptions = FindOptions()) throws(MongoError) -> Cursor {
        let optionsDocument = options.document
        logger.debug("find", metadata: ["mongo.namespace": .string(namespace.description),
                                        "mongo.filter": .string(options.filter.description)])
        return try openCursor("find on \(namespace)", tailable: options.tailable) { client in
            LibMongoC.find(client, namespace, filter: options.filter, options: optionsDocument)
        }
    }

    /// A tailable awaitData cursor on `local.oplog.rs` from `start` (inclusive), read
    /// concern majority, so continuity can be checked against the last entry saved.
    ///
    /// `next()` returns nil when no entry arrived within `maxAwaitTime` while the cursor
    /// stays alive (`isAlive`); a lost position throws `.cursorLost`.
    /// - Throws: `MongoError`.
    public func tailOplog(from start: Timestamp, maxAwaitTime: Duration = .seconds(1),
                          batchSize: Int? = nil, readConcern: ReadConcern = .majority) throws(MongoError) -> Cursor {
        let filter = Document(["ts": .document(Document(["$gte": .timestamp(start)]))])
        let options = FindOptions(filter: filter, batchSize: batchSize, readConcern: readConcern,
                                  tailable: true, awaitData: true,
                                  maxAwaitTimeMS: Int(Self.milliseconds(maxAwaitTime)))
        logger.info("tailing oplog", metadata: ["oplog.ts": .string(start.description)])
        return try find(.oplog, options)
    }

    // MARK: Commands and writes

    /// Runs a command on `database` with read preference primary and returns the reply.
    /// - Throws: `MongoError`; a reply with `ok: 0` is mapped by its numeric `code`.
    public func runCommand(_ command: Document, database: String) throws(MongoError) -> Document {
        let name = command.keys.first ?? "command"
        let context = self.context("\(name) on \(database)")
        let result = withClient { client in LibMongoC.command(client, database: database, command) }
        switch result {
        case .success(let reply): return reply
        case .failure(let error): throw MongoError(error, context)
        }
    }

    /// Runs a command on the `admin` database.
    /// - Throws: `MongoError`.
    public func runAdminCommand(_ command: Document) throws(MongoError) -> Document {
        try runCommand(command, database: "admin")
    }

    /// Inserts documents with one bulk write (split into server-sized batches).
    ///
    /// With `ordered: false` (the default, as a restore loads leaves) every document is
    /// tried; the ones the server refuses are reported in `writeErrors`, not thrown.
    /// - Throws: `MongoError` when the write fails as a whole (network, auth,
    ///   write concern).
    public func insertMany(_ documents: [Document], into namespace: Namespace, ordered: Bool = false) throws(MongoError) -> InsertResult {
        guard !documents.isEmpty else { return InsertResult(insertedCount: 0, writeErrors: []) }
        let context = self.context("insert into \(namespace)")
        let (reply, error) = withClient { client in LibMongoC.bulkInsert(client, namespace, documents, ordered: ordered) }
        let writeErrors = (reply?["writeErrors"]?.arrayValue ?? []).compactMap { value -> InsertResult.WriteError? in
            guard let d = value.documentValue else { return nil }
            return InsertResult.WriteError(index: Int(d["index"]?.int64Value ?? -1),
                                           serverCode: Int(d["code"]?.int64Value ?? 0),
                                           message: context.scrub(d["errmsg"]?.stringValue ?? ""))
        }
        let writeConcernErrors = reply?["writeConcernErrors"]?.arrayValue ?? []
        if let error, writeErrors.isEmpty || !writeConcernErrors.isEmpty {
            throw MongoError(error, context)
        }
        let inserted = Int(reply?["nInserted"]?.int64Value ?? 0)
        logger.debug("inserted", metadata: ["mongo.namespace": .string(namespace.description),
                                            "mongo.inserted": .stringConvertible(inserted),
                                            "mongo.writeErrors": .stringConvertible(writeErrors.count)])
        return InsertResult(insertedCount: inserted, writeErrors: writeErrors)
    }

    // MARK: Internals

    private func withClient<R>(_ body: (OpaquePointer) -> R) -> R {
        let client = LibMongoC.pop(pool)
        defer { LibMongoC.push(pool, client) }
        return body(client)
    }

    private func openCursor(_ operation: String, tailable: Bool = false,
                            _ open: (OpaquePointer) -> OpaquePointer?) throws(MongoError) -> Cursor {
        let client = LibMongoC.pop(pool)
        guard let cursor = open(client) else {
            LibMongoC.push(pool, client)
            throw MongoError(.commandFailed, "\(operation): libmongoc refused the options (invalid filter or options document)")
        }
        return Cursor(cursor: cursor, client: client, owner: self, context: context(operation, inCursor: true),
                      tailable: tailable)
    }

    /// Returns a connection a cursor borrowed.
    func release(_ client: OpaquePointer) { LibMongoC.push(pool, client) }

    func context(_ operation: String, inCursor: Bool = false) -> MongoError.Context {
        MongoError.Context(operation: operation, hosts: hosts, inCursor: inCursor,
                           serverSelectionTimeoutMS: serverSelectionTimeoutMS, secrets: secrets)
    }

    private static func scrub(_ text: String, _ secrets: [String]) -> String {
        MongoError.Context(operation: "", hosts: "", secrets: secrets).scrub(text)
    }

    private static func milliseconds(_ d: Duration) -> Int32 {
        let (seconds, attoseconds) = d.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// serverSelectionTimeoutMS from the URI (for messages), else libmongoc's 30 s default.
    private static func uriServerSelectionTimeoutMS(_ uri: String) -> Int32 {
        guard let q = uri.firstIndex(of: "?") else { return 30_000 }
        for option in uri[uri.index(after: q)...].split(separator: "&") {
            let pair = option.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "serverselectiontimeoutms", let v = Int32(pair[1]) { return v }
        }
        return 30_000
    }
}
