import BSON
import Foundation
import Testing
import TestSupport
@testable import Mongo

/// Bad input and broken servers: each must fail quickly with a clear, credential-free error.
@Suite("Mongo errors", .timeLimit(.minutes(3)))
struct FaultTests {
    @Test("an unreachable host fails fast with serverUnreachable")
    func unreachable() throws {
        // A port nothing listens on: bind, read the port, close.
        let port = try freePort()
        let mongo = try MongoClient(uri: "mongodb://127.0.0.1:\(port)/", serverSelectionTimeout: .seconds(1))
        let began = ContinuousClock.now
        let error = mongoError { () throws(MongoError) in try mongo.hello() }
        #expect(ContinuousClock.now - began < .seconds(5))
        #expect(error?.code == .serverUnreachable)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true)
        #expect(error?.message.contains("Check the host and port") == true)
    }

    @Test("an invalid URI is refused without echoing the password")
    func invalidURI() throws {
        let error = mongoError { () throws(MongoError) in
            try MongoClient(uri: "mongodb://admin:Sup3rSecret@host:notaport/?replicaSet=rs0")
        }
        #expect(error?.code == .invalidURI)
        #expect(error?.message.contains("Sup3rSecret") == false)
        #expect(error?.message.contains("admin:***@") == true)
        #expect(mongoError { () throws(MongoError) in try MongoClient(uri: "http://nope") }?.code == .invalidURI)
    }

    // The simulator and nx-27017 implement no authentication: a URI with credentials
    // makes libmongoc run SCRAM, the server refuses saslStart, and libmongoc reports an
    // authentication failure. That exercises the real path; the redaction of a message
    // that does contain the password is checked with a faked libmongoc error below.
    @Test("wrong credentials give authenticationFailed, and the password appears nowhere", arguments: ServerKind.allCases)
    func wrongCredentials(kind: ServerKind) throws {
        let server = try startServer(kind)
        let password = "hunter2-\(UUID().uuidString)"
        let uri = "mongodb://backup:\(password)@127.0.0.1:\(server.port)/?authSource=admin&serverSelectionTimeoutMS=2000"
        let mongo = try MongoClient(uri: uri)
        #expect(!mongo.redactedURI.contains(password))
        let error = try #require(mongoError { () throws(MongoError) in try mongo.listDatabases() })
        #expect(error.code == .authenticationFailed, "\(error)")
        #expect(!error.description.contains(password))
        #expect(!String(reflecting: error).contains(password))
    }

    @Test("a standalone server is detected and reported as noOplog")
    func standalone() throws {
        let server = try startServer(.simulator, standalone: true)
        let mongo = try client(server)
        let info = try mongo.hello()
        #expect(info.setName == nil)
        #expect(!info.hasOplog)
        let error = mongoError { () throws(MongoError) in try mongo.helloRequiringOplog() }
        #expect(error?.code == .noOplog)
        #expect(error?.message.contains("not a replica set member") == true)
        #expect(mongoError { () throws(MongoError) in try info.requireReplicaSet(hosts: mongo.hosts) }?.code == .notReplicaSet)
    }

    @Test("a connection dropped mid-cursor is a clear connectionDropped error")
    func dropMidCursor() throws {
        let server = try startServer(.simulator)
        let mongo = try client(server)
        let ns = Namespace(database: "drop", collection: "c")
        _ = try mongo.insertMany(numbered(0..<50), into: ns)
        let cursor = try mongo.find(ns, .idRange(batchSize: 10))
        var seen = 0
        while seen < 10, try cursor.next() != nil { seen += 1 }
        try simulate(mongo, Document(["simDropMidCursor": .int32(1)]))
        let error = mongoError { () throws(MongoError) in
            while try cursor.next() != nil {}
            return ()
        }
        #expect(error?.code == .connectionDropped, "\(String(describing: error))")
        #expect(error?.message.contains("find on drop.c") == true)
        #expect(!cursor.isAlive)
        cursor.close()
        // The pool recovers: the next operation reconnects.
        #expect(try mongo.find(ns).collect().count == 50)
    }

    @Test("a garbled reply fails the operation with a clear error instead of hanging")
    func malformedReply() throws {
        let server = try startServer(.simulator)
        // retryReads=false: otherwise libmongoc retries the find on a fresh connection
        // and succeeds, hiding the fault (as it should in production).
        // The garbled reply announces more bytes than it sends, so the client notices at
        // its socket timeout: keep that short.
        let victim = try MongoClient(uri: server.uri + "&retryReads=false", serverSelectionTimeout: .seconds(2),
                                     socketTimeout: .milliseconds(1500))
        let ns = Namespace(database: "bad", collection: "c")
        _ = try victim.insertMany(numbered(0..<5), into: ns)
        // Armed for the next `find` on any connection, so monitoring connections
        // (hello) cannot take it. (A correctly framed reply with an invalid body
        // crashes libmongoc 1.23, so the simulator still sends a short garbled one.)
        try simulate(victim, Document(["simMalformedReply": .int32(1), "command": .string("find")]))
        let clock = ContinuousClock()
        let started = clock.now
        let error = mongoError { () throws(MongoError) in try victim.find(ns).collect() }
        #expect(error?.code == .malformedReply || error?.code == .connectionDropped, "\(String(describing: error))")
        #expect(clock.now - started < .seconds(5))
        #expect(try victim.find(ns).collect().count == 5)
    }

    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
