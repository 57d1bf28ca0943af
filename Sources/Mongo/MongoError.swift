/// An error from the Mongo layer: what went wrong, what to do, and the server's
/// numeric error code when the server sent one.
///
/// Messages never contain credentials: URIs are redacted and the password is
/// scrubbed from anything libmongoc or the server reports.
public struct MongoError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; match on these, not on messages.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String, Sendable {
            case invalidURI, serverUnreachable, authenticationFailed, unauthorized
            case notReplicaSet, noOplog, notPrimary, cursorLost, connectionDropped
            case timeout, malformedReply, commandFailed, namespaceNotFound, commandNotFound
            case duplicateKey, writeFailed
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }
        public var description: String { kind.rawValue }

        /// The connection string could not be parsed.
        public static let invalidURI = Code(.invalidURI)
        /// No server could be selected within the server selection timeout.
        public static let serverUnreachable = Code(.serverUnreachable)
        /// The server rejected the credentials (server code 18, or a failed handshake).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The user lacks a privilege the operation needs (server code 13).
        public static let unauthorized = Code(.unauthorized)
        /// The server is not a replica set member.
        public static let notReplicaSet = Code(.notReplicaSet)
        /// The server keeps no oplog (`local.oplog.rs`), so changes cannot be captured.
        public static let noOplog = Code(.noOplog)
        /// The server is no longer (or not) the primary (10107, 13435, 189, 11602 outside cursors).
        public static let notPrimary = Code(.notPrimary)
        /// The server-side cursor is gone (136 CappedPositionLost, 43 CursorNotFound,
        /// 11602 InterruptedDueToReplStateChange, 175, 237): reopen from the last position.
        public static let cursorLost = Code(.cursorLost)
        /// The connection closed or failed while a request was in flight.
        public static let connectionDropped = Code(.connectionDropped)
        /// The server gave up on the operation's time limit (50 MaxTimeMSExpired).
        public static let timeout = Code(.timeout)
        /// The server's reply was not valid BSON or not a valid reply.
        public static let malformedReply = Code(.malformedReply)
        /// The server refused a command for another reason; see `serverCode`/`codeName`.
        public static let commandFailed = Code(.commandFailed)
        /// The database or collection does not exist (26).
        public static let namespaceNotFound = Code(.namespaceNotFound)
        /// The server does not know the command (59).
        public static let commandNotFound = Code(.commandNotFound)
        /// A unique index rejected a document (11000).
        public static let duplicateKey = Code(.duplicateKey)
        /// A write failed as a whole (write concern error, bulk write refused).
        public static let writeFailed = Code(.writeFailed)
    }

    public let code: Code
    /// What happened and what to do, free of credentials.
    public let message: String
    /// The server's numeric error code, when the server reported one.
    public let serverCode: Int?
    /// The server's `codeName`, when it sent one.
    public let codeName: String?
    /// libmongoc's error domain and code, for diagnostics (`domain.code`).
    public let libmongocCode: String?

    public init(_ code: Code, _ message: String, serverCode: Int? = nil, codeName: String? = nil, libmongocCode: String? = nil) {
        self.code = code
        self.message = message
        self.serverCode = serverCode
        self.codeName = codeName
        self.libmongocCode = libmongocCode
    }

    public var description: String {
        var text = message
        if let serverCode {
            text += " (server error \(serverCode)\(codeName.map { " \($0)" } ?? ""))"
        }
        return text
    }
}

/// Server error codes Ancre matches on, by number (names as in MongoDB's error_codes.yml).
public enum ServerErrorCode {
    public static let interruptedAtShutdown = 11600
    public static let unauthorized = 13
    public static let authenticationFailed = 18
    public static let namespaceNotFound = 26
    public static let cursorNotFound = 43
    public static let maxTimeMSExpired = 50
    public static let commandNotFound = 59
    public static let cappedPositionLost = 136
    public static let queryPlanKilled = 175
    public static let primarySteppedDown = 189
    public static let cursorKilled = 237
    public static let duplicateKey = 11000
    public static let interruptedDueToReplStateChange = 11602
    public static let notWritablePrimary = 10107
    public static let notPrimaryNoSecondaryOk = 13435
    public static let notPrimaryOrSecondary = 13436
}

extension MongoError {
    /// Where an error happened, so the mapping can choose the code and word the message.
    struct Context {
        /// "find on db.coll", "listDatabases", ...
        var operation: String
        /// Redacted host list, for messages.
        var hosts: String
        var inCursor = false
        var serverSelectionTimeoutMS: Int32 = 30_000
        /// Secrets to scrub from messages (the URI's password, percent-encoded and not).
        var secrets: [String] = []

        func scrub(_ text: String) -> String {
            var text = text
            for secret in secrets where !secret.isEmpty {
                text = text.replacing(secret, with: "***")
            }
            return text
        }
    }

    /// Maps a libmongoc error to a MongoError: server errors by numeric code, the rest by domain.
    init(_ e: LibMongoCError, _ context: Context) {
        let detail = context.scrub(e.message)
        let libCode = "\(e.domain).\(e.code)"
        let replyCode = e.reply?["code"]?.int64Value.map { Int($0) }
        let codeName = e.reply?["codeName"]?.stringValue
        let isServer = e.domain == LibMongoCDomain.server || e.domain == LibMongoCDomain.query
            || e.domain == LibMongoCDomain.writeConcern || replyCode != nil
        let op = context.operation

        if e.domain == LibMongoCDomain.client && e.code == LibMongoCDomain.clientAuthenticate
            || e.domain == LibMongoCDomain.sasl || e.domain == LibMongoCDomain.scram {
            self.init(.authenticationFailed,
                      "authentication to \(context.hosts) failed during \(op): \(detail). Check the user name, password, authSource and authMechanism in the URI.",
                      serverCode: replyCode, codeName: codeName, libmongocCode: libCode)
            return
        }
        if isServer {
            let code = replyCode ?? Int(e.code)
            self.init(serverCode: code, codeName: codeName, detail: detail, libCode: libCode, context)
            return
        }
        switch e.domain {
        case LibMongoCDomain.serverSelection:
            let seconds = Double(context.serverSelectionTimeoutMS) / 1000
            self.init(.serverUnreachable,
                      "cannot reach a suitable MongoDB server at \(context.hosts) for \(op) within \(seconds) s: \(detail). Check the host and port, that mongod is running and reachable, TLS options, and that replicaSet= names the set.",
                      libmongocCode: libCode)
        case LibMongoCDomain.stream:
            self.init(.connectionDropped,
                      "the connection to \(context.hosts) failed during \(op): \(detail). The server closed the connection or did not answer in time; retry, and check the server's log if it persists.",
                      libmongocCode: libCode)
        case LibMongoCDomain.proto, LibMongoCDomain.bson:
            self.init(.malformedReply,
                      "the server at \(context.hosts) sent a malformed reply to \(op): \(detail). This is a server or proxy bug; the operation was not completed.",
                      libmongocCode: libCode)
        case LibMongoCDomain.cursor:
            self.init(.malformedReply,
                      "the cursor for \(op) failed: \(detail)",
                      libmongocCode: libCode)
        default:
            self.init(.commandFailed, "\(op) failed: \(detail)", libmongocCode: libCode)
        }
    }

    private init(serverCode code: Int, codeName: String?, detail: String, libCode: String, _ context: Context) {
        let op = context.operation
        let kind: Code
        let advice: String
        switch code {
        case ServerErrorCode.unauthorized:
            kind = .unauthorized
            advice = "Grant the user the roles Ancre needs (backup/restore, or read on local for the oplog)."
        case ServerErrorCode.authenticationFailed:
            kind = .authenticationFailed
            advice = "Check the user name, password, authSource and authMechanism in the URI."
        case ServerErrorCode.cappedPositionLost, ServerErrorCode.cursorNotFound,
             ServerErrorCode.queryPlanKilled, ServerErrorCode.cursorKilled:
            kind = .cursorLost
            advice = "The server dropped the cursor (for the oplog: the position rolled off or the cursor timed out); reopen it from the last position read."
        case ServerErrorCode.interruptedDueToReplStateChange where context.inCursor:
            kind = .cursorLost
            advice = "The node changed replica set state and killed the cursor; find the primary and reopen from the last position read."
        case ServerErrorCode.notWritablePrimary, ServerErrorCode.notPrimaryNoSecondaryOk,
             ServerErrorCode.notPrimaryOrSecondary, ServerErrorCode.primarySteppedDown,
             ServerErrorCode.interruptedDueToReplStateChange:
            kind = .notPrimary
            advice = "The node is not the primary (it may have stepped down); retry after the election."
        case ServerErrorCode.maxTimeMSExpired:
            kind = .timeout
            advice = "The operation exceeded its time limit; retry with a longer limit."
        case ServerErrorCode.namespaceNotFound:
            kind = .namespaceNotFound
            advice = "Check the database and collection names."
        case ServerErrorCode.commandNotFound:
            kind = .commandNotFound
            advice = "The server does not support this command."
        case ServerErrorCode.duplicateKey:
            kind = .duplicateKey
            advice = "A document with the same unique key already exists."
        default:
            kind = .commandFailed
            advice = ""
        }
        let message = "\(op) failed on \(context.hosts): \(detail)." + (advice.isEmpty ? "" : " " + advice)
        self.init(kind, message, serverCode: code, codeName: codeName, libmongocCode: libCode)
    }
}
