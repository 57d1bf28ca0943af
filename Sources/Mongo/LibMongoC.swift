import BSON
import CMongoC
import Logging

// Every call into libmongoc from this target goes through this file. Documents
// cross as bytes; Swift never holds a bson_t (see CMongoC/shim.h).

/// A libmongoc error as reported in a bson_error_t, plus the server's reply when one came.
struct LibMongoCError: Error, Sendable {
    var domain: UInt32
    var code: UInt32
    var message: String
    var reply: Document?

    init(_ error: bson_error_t, reply: Document? = nil) {
        domain = error.domain
        code = error.code
        message = withUnsafeBytes(of: error.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        self.reply = reply
    }

    init(domain: UInt32, code: UInt32, message: String) {
        self.domain = domain
        self.code = code
        self.message = message
    }
}

enum LibMongoC {
    /// mongoc_init exactly once per process (a lazy static is initialized thread-safely).
    private static let initialized: Bool = {
        ancre_mongoc_init()
        // libmongoc's default handler prints its chatter (failed monitor checks, short
        // reads) to stderr; route it to swift-log at debug, since errors reach callers
        // as MongoErrors anyway.
        mongoc_log_set_handler({ level, domain, message, _ in
            guard level.rawValue <= MONGOC_LOG_LEVEL_INFO.rawValue else { return }
            let text = message.map { MongoURI.redactedLogLine(String(cString: $0)) } ?? ""
            libmongocLogger.debug("\(text)", metadata: [
                "libmongoc.domain": .string(domain.map { String(cString: $0) } ?? ""),
                "libmongoc.level": .stringConvertible(level.rawValue),
            ])
        }, nil)
        return true
    }()

    private static let libmongocLogger = Logger(label: "ancre.mongo.libmongoc")

    static var bsonErrorAlignment: Int { ancre_bson_error_alignment() }

    static func poolNew(uri: String, serverSelectionTimeoutMS: Int32, connectTimeoutMS: Int32, socketTimeoutMS: Int32) -> Result<OpaquePointer, LibMongoCError> {
        _ = initialized
        var error = bson_error_t()
        guard let pool = ancre_pool_new(uri, serverSelectionTimeoutMS, connectTimeoutMS, socketTimeoutMS, "ancre", &error) else {
            return .failure(LibMongoCError(error))
        }
        return .success(pool)
    }

    static func poolDestroy(_ pool: OpaquePointer) { mongoc_client_pool_destroy(pool) }

    /// Blocks until a client is free (the pool holds up to maxPoolSize, default 100).
    static func pop(_ pool: OpaquePointer) -> OpaquePointer { mongoc_client_pool_pop(pool) }

    static func push(_ pool: OpaquePointer, _ client: OpaquePointer) { mongoc_client_pool_push(pool, client) }

    /// Runs a command; the reply comes back on success and, when the server sent one, on failure.
    static func command(_ client: OpaquePointer, database: String, _ command: Document) -> Result<Document, LibMongoCError> {
        var error = bson_error_t()
        var data: UnsafeMutablePointer<UInt8>?
        var length: UInt32 = 0
        let ok = command.bytes.withUnsafeBufferPointer { p in
            ancre_command(client, database, p.baseAddress, p.count, &data, &length, &error)
        }
        let reply = takeBytes(data, length)
        if ok {
            guard let reply else {
                return .failure(LibMongoCError(domain: UInt32(MONGOC_ERROR_PROTOCOL.rawValue), code: UInt32(MONGOC_ERROR_PROTOCOL_INVALID_REPLY.rawValue), message: "empty reply"))
            }
            return .success(reply)
        }
        return .failure(LibMongoCError(error, reply: reply))
    }

    static func find(_ client: OpaquePointer, _ ns: Namespace, filter: Document, options: Document) -> OpaquePointer? {
        filter.bytes.withUnsafeBufferPointer { f in
            options.bytes.withUnsafeBufferPointer { o in
                ancre_find(client, ns.database, ns.collection, f.baseAddress, f.count, o.baseAddress, o.count)
            }
        }
    }

    static func listCollections(_ client: OpaquePointer, database: String, options: Document) -> OpaquePointer? {
        options.bytes.withUnsafeBufferPointer { o in
            ancre_list_collections(client, database, o.baseAddress, o.count)
        }
    }

    static func listIndexes(_ client: OpaquePointer, _ ns: Namespace) -> OpaquePointer? {
        ancre_list_indexes(client, ns.database, ns.collection)
    }

    /// Calls `body` with a borrowed view of the next document; false when there is none.
    @inline(__always)
    static func cursorNext<R>(_ cursor: OpaquePointer, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        guard ancre_cursor_next(cursor, &data, &length) else { return nil }
        return body(UnsafeBufferPointer(start: data, count: Int(length)))
    }

    static func cursorError(_ cursor: OpaquePointer) -> LibMongoCError? {
        var error = bson_error_t()
        var data: UnsafeMutablePointer<UInt8>?
        var length: UInt32 = 0
        guard ancre_cursor_error(cursor, &error, &data, &length) else { return nil }
        return LibMongoCError(error, reply: takeBytes(data, length))
    }

    static func cursorMore(_ cursor: OpaquePointer) -> Bool { mongoc_cursor_more(cursor) }

    static func cursorID(_ cursor: OpaquePointer) -> Int64 { mongoc_cursor_get_id(cursor) }

    static func cursorDestroy(_ cursor: OpaquePointer) { mongoc_cursor_destroy(cursor) }

    /// Inserts through one bulk write (libmongoc splits it into batches the server accepts).
    /// Returns the reply and, on failure, the error.
    static func bulkInsert(_ client: OpaquePointer, _ ns: Namespace, _ documents: [Document], ordered: Bool) -> (reply: Document?, error: LibMongoCError?) {
        guard let bulk = ancre_bulk_new(client, ns.database, ns.collection, ordered) else {
            return (nil, LibMongoCError(domain: UInt32(MONGOC_ERROR_COMMAND.rawValue), code: UInt32(MONGOC_ERROR_COMMAND_INVALID_ARG.rawValue), message: "could not create a bulk write"))
        }
        defer { mongoc_bulk_operation_destroy(bulk) }
        var error = bson_error_t()
        for document in documents {
            let ok = document.bytes.withUnsafeBufferPointer { p in ancre_bulk_insert(bulk, p.baseAddress, p.count, &error) }
            if !ok { return (nil, LibMongoCError(error)) }
        }
        var data: UnsafeMutablePointer<UInt8>?
        var length: UInt32 = 0
        let server = ancre_bulk_execute(bulk, &data, &length, &error)
        let reply = takeBytes(data, length)
        return (reply, server == 0 ? LibMongoCError(error, reply: reply) : nil)
    }

    /// Takes ownership of a bson_malloc'd copy; libmongoc already checked its length
    /// framing, so only the element structure is left to validate.
    private static func takeBytes(_ data: UnsafeMutablePointer<UInt8>?, _ length: UInt32) -> Document? {
        guard let data else { return nil }
        defer { bson_free(data) }
        return try? Document(bytes: Array(UnsafeBufferPointer(start: data, count: Int(length))))
    }
}

// Error domains and codes libmongoc reports, as plain integers for matching.
enum LibMongoCDomain {
    static let client = UInt32(MONGOC_ERROR_CLIENT.rawValue)
    static let stream = UInt32(MONGOC_ERROR_STREAM.rawValue)
    static let proto = UInt32(MONGOC_ERROR_PROTOCOL.rawValue)
    static let cursor = UInt32(MONGOC_ERROR_CURSOR.rawValue)
    static let query = UInt32(MONGOC_ERROR_QUERY.rawValue)
    static let sasl = UInt32(MONGOC_ERROR_SASL.rawValue)
    static let bson = UInt32(MONGOC_ERROR_BSON.rawValue)
    static let command = UInt32(MONGOC_ERROR_COMMAND.rawValue)
    static let scram = UInt32(MONGOC_ERROR_SCRAM.rawValue)
    static let serverSelection = UInt32(MONGOC_ERROR_SERVER_SELECTION.rawValue)
    static let writeConcern = UInt32(MONGOC_ERROR_WRITE_CONCERN.rawValue)
    static let server = UInt32(MONGOC_ERROR_SERVER.rawValue)
    static let collection = UInt32(MONGOC_ERROR_COLLECTION.rawValue)

    static let clientAuthenticate = UInt32(MONGOC_ERROR_CLIENT_AUTHENTICATE.rawValue)
}
