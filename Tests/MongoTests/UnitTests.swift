import BSON
import Testing
@testable import Mongo

@Suite("Mongo without a server")
struct UnitTests {
    @Test("URIs are redacted wherever they appear", arguments: [
        ("mongodb://user:pa55@h1:27017,h2/?replicaSet=rs0", "mongodb://user:***@h1:27017,h2/?replicaSet=rs0"),
        ("mongodb://user@h/db", "mongodb://user@h/db"),
        ("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=k3y&appname=x",
         "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***&appname=x"),
        ("mongodb+srv://u:p%40ss/w@cluster.example.net/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok",
         "mongodb+srv://u:***@cluster.example.net/?authMechanism=MONGODB-AWS&authMechanismProperties=***"),
        ("mongodb://u:a@b@h/", "mongodb://u:***@h/"),
    ])
    func redaction(uri: String, expected: String) {
        #expect(MongoURI.redacted(uri) == expected)
    }

    @Test("host lists come out of URIs with and without credentials")
    func hosts() {
        #expect(MongoURI.hosts("mongodb://u:p@a:1,b:2/db?x=y") == "a:1,b:2")
        #expect(MongoURI.hosts("mongodb://a") == "a")
    }

    @Test("the password is scrubbed from messages libmongoc or the server produce")
    func scrubbing() {
        let uri = "mongodb://backup:s%3Acret-pass@h:27017/"
        let context = MongoError.Context(operation: "listDatabases", hosts: "h:27017", secrets: MongoURI.secrets(uri))
        let faked = LibMongoCError(domain: LibMongoCDomain.client, code: LibMongoCDomain.clientAuthenticate,
                                   message: "Authentication failed for backup with s:cret-pass (s%3Acret-pass)")
        let error = MongoError(faked, context)
        #expect(error.code == .authenticationFailed)
        #expect(!error.message.contains("cret-pass"))
        #expect(error.message.contains("***"))
    }

    @Test("server errors map by numeric code", arguments: [
        (13, false, MongoError.Code.unauthorized), (18, false, .authenticationFailed),
        (10107, false, .notPrimary), (13435, false, .notPrimary), (189, false, .notPrimary),
        (11602, false, .notPrimary), (11602, true, .cursorLost), (136, true, .cursorLost),
        (43, true, .cursorLost), (59, false, .commandNotFound), (26, false, .namespaceNotFound),
        (11000, false, .duplicateKey), (50, false, .timeout), (2, false, .commandFailed),
    ])
    func serverCodes(code: Int, inCursor: Bool, expected: MongoError.Code) {
        let reply = Document(["ok": .double(0), "errmsg": .string("boom"), "code": .int32(Int32(code)),
                              "codeName": .string("Name")])
        var e = LibMongoCError(domain: LibMongoCDomain.server, code: UInt32(code), message: "boom")
        e.reply = reply
        let context = MongoError.Context(operation: "find on a.b", hosts: "h", inCursor: inCursor)
        let error = MongoError(e, context)
        #expect(error.code == expected)
        #expect(error.serverCode == code)
        #expect(error.codeName == "Name")
        #expect(error.description.contains("server error \(code) Name"))
    }

    @Test("libmongoc domains map to codes")
    func domains() {
        let context = MongoError.Context(operation: "hello", hosts: "h")
        #expect(MongoError(LibMongoCError(domain: LibMongoCDomain.serverSelection, code: 13, message: "x"), context).code == .serverUnreachable)
        #expect(MongoError(LibMongoCError(domain: LibMongoCDomain.stream, code: 4, message: "x"), context).code == .connectionDropped)
        #expect(MongoError(LibMongoCError(domain: LibMongoCDomain.proto, code: 1, message: "x"), context).code == .malformedReply)
    }

    @Test("namespaces parse with dotted collection names")
    func namespaces() {
        #expect(Namespace("local.oplog.rs") == .oplog)
        #expect(Namespace("nodot") == nil)
        #expect(Namespace(".c") == nil)
        #expect(Namespace("db.") == nil)
    }

    @Test("find options become libmongoc opts")
    func findOptions() {
        let options = FindOptions.idRange(from: .int32(5), to: .int32(9), batchSize: 100, readConcern: .majority)
        #expect(options.filter == Document(["_id": .document(Document(["$gte": .int32(5), "$lt": .int32(9)]))]))
        let opts = options.document
        #expect(opts["sort"] == .document(Document(["_id": .int32(1)])))
        #expect(opts["batchSize"] == .int64(100))
        #expect(opts["readConcern"] == .document(Document(["level": .string("majority")])))
    }

    @Test("Swift's bson_error_t layout agrees with libbson's alignment")
    func errorAlignment() {
        #expect(LibMongoC.bsonErrorAlignment <= 8)
    }
}
