import Foundation
import Testing
import TestSupport
@testable import Repository

/// The S3 backend against moto's server on loopback, with a fault-injecting proxy for retries.
@Suite(.enabled(if: ServerMoto.isAvailable, Comment(rawValue: ServerMoto.unavailableReason ?? "")))
struct S3BackendTests {
    private func moto() throws -> ServerMoto { try ServerMoto.shared.get() }

    @Test func conforms() throws {
        let moto = try moto()
        try BackendConformance.run { try moto.makeBackend(prefix: "repo/one") }
    }

    @Test func bucketRootConforms() throws {
        let moto = try moto()
        try BackendConformance.run { try moto.makeBackend() }
    }

    @Test func multipartRoundTrips() throws {
        let backend = try moto().makeBackend(prefix: "big", options: S3Options(multipartThreshold: 16 << 20, partSize: 16 << 20))
        let bytes = TestRepository.bytes(count: 40 << 20, seed: 7)
        let clock = ContinuousClock()
        let putTime = try clock.measure { try backend.put("data/aa/big", bytes) }
        var read: [UInt8] = []
        let getTime = try clock.measure { read = try backend.get("data/aa/big") }
        #expect(read == bytes)
        #expect(try backend.stat("data/aa/big") == 40 << 20)
        // A range across the 16 MiB part boundary.
        let lower = (16 << 20) - 100
        #expect(try backend.get("data/aa/big", range: lower..<(lower + 200)) == Array(bytes[lower..<(lower + 200)]))
        func rate(_ d: Duration) -> String { String(format: "%.1f MB/s", 40.0 * 1.048576 / S3Backend.seconds(d)) }
        print("S3 to moto, 40 MiB object in 16 MiB parts: put \(putTime) (\(rate(putTime))), get \(getTime) (\(rate(getTime)))")
    }

    /// A copy checks uploads by the ETag S3 answers instead of reading them back: moto's
    /// ETags must be the MD5 of what was sent, for single and multipart uploads (each
    /// part's), and a directory cannot confirm anything without reading.
    @Test(arguments: [1 << 20, 13 << 20])
    func putConfirmsByTheETagAnswered(size: Int) throws {
        let backend = try moto().makeBackend(prefix: "etag", options: S3Options(multipartThreshold: 6 << 20, partSize: 5 << 20))
        let bytes = TestRepository.bytes(count: size, seed: UInt64(size))
        #expect(try backend.putConfirming("data/aa/object", bytes))
        #expect(try backend.get("data/aa/object") == bytes)
        let local = try LocalBackend(path: Fixtures.temporaryDirectory("etag-local").path)
        #expect(try !local.putConfirming("data/aa/object", bytes))
    }

    /// A copy hands the digests it computed for the name check to the upload. What confirms
    /// the upload is the server's ETag, never those digests: with digests of other bytes, AWS
    /// refuses the PUT (BadDigest) and moto, which checks neither Content-MD5 nor the payload
    /// hash, stores the bytes but answers an ETag that is not the MD5 sent, so nothing is
    /// confirmed and a copy reads the object back.
    @Test func givenDigestsAreSentAndOnlyTheServersETagConfirms() throws {
        let backend = try moto().makeBackend(prefix: "digests")
        let bytes = TestRepository.bytes(count: 300_000, seed: 11)
        #expect(try backend.putConfirming("data/aa/given", bytes, digests: ObjectDigests(of: bytes)))
        #expect(try backend.get("data/aa/given") == bytes)
        var other = bytes
        other[123_456] ^= 1
        let confirmed = try? backend.putConfirming("data/aa/other", bytes, digests: ObjectDigests(of: other))
        #expect(confirmed != true)
    }

    @Test func anETagThatIsNotTheMD5SentConfirmsNothing() {
        var response = S3Backend.S3Response(status: 200, headers: ["etag": "\"0123456789abcdef0123456789abcdef\""], body: [])
        #expect(!response.etagMatchesSentMD5)  // nothing was sent
        response.sentMD5 = "0123456789abcdef0123456789abcdef"
        #expect(response.etagMatchesSentMD5)
        response.headers["etag"] = "\"0123456789ABCDEF0123456789ABCDEF\""
        #expect(response.etagMatchesSentMD5)  // case does not matter
        response.sentMD5 = "fedcba9876543210fedcba9876543210"
        #expect(!response.etagMatchesSentMD5)  // SSE-KMS, or a damaged body the server took
        response.headers["etag"] = nil
        #expect(!response.etagMatchesSentMD5)
    }

    @Test func repositoryWorksEndToEnd() throws {
        let backend = try moto().makeBackend(prefix: "clinic")
        let repository = try TestRepository.make(storage: backend, packTargetSize: 32 << 10)
        var saved: [(BlobID, [UInt8])] = []
        for i in 0..<40 {
            let bytes = TestRepository.bytes(count: 3000 + i * 100, seed: UInt64(i), alphabet: 16)
            saved.append((try repository.saveBlob(type: .leaf, bytes: bytes).id, bytes))
        }
        try repository.flush()
        let snapshot = try repository.saveFile(kind: .snapshot, bytes: Array("snapshot one".utf8))

        let reopened = try TestRepository.open(storage: backend)
        for (id, bytes) in saved { #expect(try reopened.loadBlob(id) == bytes) }
        #expect(try reopened.loadFile(kind: .snapshot, id: snapshot) == Array("snapshot one".utf8))
        let lock = try reopened.lock(exclusive: true)
        try lock.release()
        let report = try reopened.check(readData: true)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.packsChecked > 1)
        #expect(report.unreferencedPacks.isEmpty)
    }

    // MARK: - Faults

    private func backend(through proxy: FaultProxy, bucket: String, options: S3Options) throws -> S3Backend {
        try S3Backend(location: try moto().location(bucket: bucket, port: proxy.port), credentials: ServerMoto.anyCredentials, options: options)
    }

    // A short idle timeout: after a connection reset mid-upload, Linux URLSession (libcurl)
    // can sit on the next request until the timeout fires (seen here; the retry then succeeds).
    private static let smallParts = S3Options(
        multipartThreshold: 6 << 20, partSize: 5 << 20, retryDelay: .milliseconds(10), requestTimeout: .seconds(5))

    @Test(arguments: [FaultProxy.Mode.error, .reset])
    func retriesRecoverFromFaults(mode: FaultProxy.Mode) throws {
        let direct = try moto().makeBackend()
        let proxy = try FaultProxy(upstreamPort: try moto().port, mode: mode, every: 3)
        let backend = try backend(through: proxy, bucket: direct.location.bucket, options: Self.smallParts)
        let big = TestRepository.bytes(count: 12 << 20, seed: 3)  // three parts
        try backend.put("data/bb/big", big)
        for i in 0..<6 { try backend.put("index/i\(i)", TestRepository.bytes(count: 2000, seed: UInt64(i))) }
        #expect(try backend.get("data/bb/big") == big)
        #expect(try backend.list(prefix: "index/").count == 6)
        for i in 0..<6 { #expect(try direct.get("index/i\(i)") == TestRepository.bytes(count: 2000, seed: UInt64(i))) }
        #expect(proxy.faults >= 3, "the proxy injected \(proxy.faults) faults")
        #expect(try pendingUploads(direct).isEmpty)
    }

    @Test func lostCompletionAnswerIsRecognised() throws {
        let direct = try moto().makeBackend()
        // POSTs are: create the upload, then complete it; the completion's answer is lost.
        let proxy = try FaultProxy(upstreamPort: try moto().port, mode: .dropAnswer, every: 2, match: "POST")
        let backend = try backend(through: proxy, bucket: direct.location.bucket, options: Self.smallParts)
        let big = TestRepository.bytes(count: 11 << 20, seed: 4)
        try backend.put("data/cc/big", big)
        #expect(proxy.faults >= 1)
        #expect(try direct.get("data/cc/big") == big)
    }

    @Test func failedMultipartLeavesNothingVisible() throws {
        let direct = try moto().makeBackend()
        let proxy = try FaultProxy(upstreamPort: try moto().port, mode: .reset, every: 1, match: "partNumber=2")
        let backend = try backend(through: proxy, bucket: direct.location.bucket, options: Self.smallParts)
        let big = TestRepository.bytes(count: 12 << 20, seed: 5)
        do {
            try backend.put("data/dd/big", big)
            Issue.record("an upload whose part 2 always fails succeeded")
        } catch let error as RepositoryError {
            #expect(error.code == .ioFailure)
            #expect(error.message.contains("after 5 attempts"), "\(error)")
            #expect(error.message.contains("data/dd/big"))
        }
        // 5 attempts of ours; libcurl may resend once more by itself when a reused connection dies.
        #expect((5...6).contains(proxy.faults), "\(proxy.faults)")
        #expect(try direct.stat("data/dd/big") == nil)
        #expect(try direct.list(prefix: "data/").isEmpty)
        #expect(try pendingUploads(direct).isEmpty, "the failed upload was aborted")
        // The next attempt, without faults, succeeds.
        try direct.put("data/dd/big", big)
        #expect(try direct.get("data/dd/big") == big)
    }

    @Test func clientErrorsAreNotRetried() throws {
        let direct = try moto().makeBackend()
        let missing = try S3Backend(
            location: try moto().location(bucket: "ancre-no-such-bucket"), credentials: ServerMoto.anyCredentials,
            options: S3Options(retryDelay: .seconds(5)))
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect { try missing.get("config") } throws: { error in
                let e = error as! RepositoryError
                return e.code == .ioFailure && e.message.contains("bucket 'ancre-no-such-bucket' does not exist")
            }
        }
        #expect(elapsed < .seconds(2), "a 404 is answered at once, not retried")
        #expect { try direct.get("data/00/none") } throws: { ($0 as? RepositoryError)?.code == .objectNotFound }
    }

    /// Multipart uploads begun and neither completed nor aborted.
    private func pendingUploads(_ backend: S3Backend) throws -> [String] {
        let response = try backend.perform(.init(method: "GET", key: nil, query: [("uploads", "")]), what: "LIST UPLOADS", key: "")
        #expect(response.status == 200)
        return XMLTree.parse(response.body)?.children.filter { $0.name == "Upload" }.compactMap { $0.child("Key")?.text } ?? []
    }

    // MARK: - Credentials, Object Lock

    @Test func wrongCredentialsGiveAClearErrorWithoutTheSecret() throws {
        let moto = try ServerMoto(authenticated: true)
        defer { moto.stop() }
        let good = try moto.makeBackend(prefix: "p")
        try good.put("config", [1, 2, 3])
        #expect(try good.get("config") == [1, 2, 3])

        let secret = "wrong-secret-\(UUID().uuidString)"
        let badSecret = S3Credentials(accessKeyID: moto.credentials.accessKeyID, secretAccessKey: secret)
        let unknownKey = S3Credentials(accessKeyID: "AKIAUNKNOWNKEY000000", secretAccessKey: secret, sessionToken: "token-\(secret)")
        for credentials in [badSecret, unknownKey] {
            let bad = try S3Backend(location: good.location, credentials: credentials, options: S3Options(retryDelay: .milliseconds(10)))
            for operation in [{ _ = try bad.get("config") }, { try bad.put("config", [9]) }, { _ = try bad.list(prefix: "") }] {
                do {
                    try operation()
                    Issue.record("a request with wrong credentials succeeded")
                } catch let error as RepositoryError {
                    #expect(error.code == .accessDenied, "\(error)")
                    #expect(error.description.contains("AWS_SECRET_ACCESS_KEY"), "\(error)")
                    #expect(!error.description.contains(secret) && !"\(error.code)".contains(secret))
                    #expect(!"\(credentials)".contains(secret))
                }
            }
        }
        #expect(try good.get("config") == [1, 2, 3])
    }

    @Test func objectLockRetentionIsApplied() throws {
        let lock = ObjectLockRetention(mode: .governance, duration: .seconds(3600))
        let backend = try moto().makeBackend(options: S3Options(objectLock: lock), objectLock: true)
        try backend.put("data/ee/pack", [1, 2, 3])
        try backend.put("locks/l1", [4])
        let big = TestRepository.bytes(count: 17 << 20, seed: 6)
        try backend.put("data/ee/big", big)  // multipart: the retention goes on the upload

        for key in ["data/ee/pack", "data/ee/big"] {
            let head = try backend.perform(.init(method: "HEAD", key: key), what: "HEAD", key: key)
            #expect(head.headers["x-amz-object-lock-mode"] == "GOVERNANCE", "\(key): \(head.headers)")
            let until = head.headers["x-amz-object-lock-retain-until-date"].flatMap { ISO8601DateFormatter().date(from: $0) }
            #expect(until.map { abs($0.timeIntervalSinceNow - 3600) < 120 } == true, "\(key): \(head.headers)")
            // The locked version cannot be removed (a plain delete only adds a delete marker).
            let version = try #require(head.headers["x-amz-version-id"])
            let removal = try backend.perform(
                .init(method: "DELETE", key: key, query: [("versionId", version)]), what: "DELETE", key: key)
            #expect(removal.status == 403, "\(key): deleting a locked version answered \(removal.status)")
        }
        let lockHead = try backend.perform(.init(method: "HEAD", key: "locks/l1"), what: "HEAD", key: "locks/l1")
        #expect(lockHead.headers["x-amz-object-lock-mode"] == nil, "locks stay deletable")
        try backend.delete("locks/l1")
        #expect(try backend.stat("locks/l1") == nil)
    }

    // MARK: - Units

    @Test func signatureMatchesAWSExample() {
        // "GET Object" example of the S3 SigV4 documentation (sig-v4-header-based-auth).
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let headers = signer.sign(
            method: "GET", path: "/test.txt", query: [], host: "examplebucket.s3.amazonaws.com",
            headers: ["Range": "bytes=0-9"],
            payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            date: Date(timeIntervalSince1970: 1_369_353_600))  // 2013-05-24T00:00:00Z
        #expect(headers["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func locationsParse() throws {
        let env = ["AWS_REGION": "eu-west-par"]
        let full = try S3Location.parse("s3:http://127.0.0.1:9000/bucket/a/b/", environment: env)
        #expect(full == S3Location(scheme: "http", host: "127.0.0.1", port: 9000, bucket: "bucket", prefix: "a/b", region: "eu-west-par"))
        let short = try S3Location.parse("s3:s3.gra.io.cloud.ovh.net/backups", environment: [:])
        #expect(short == S3Location(host: "s3.gra.io.cloud.ovh.net", bucket: "backups"))
        #expect(short.description == "s3:https://s3.gra.io.cloud.ovh.net/backups")
        #expect(try S3Location.parse("s3:https://h:443/b", environment: [:]).port == nil)
        #expect(try S3Location.parse("s3:h/b", environment: ["ANCRE_S3_ADDRESSING": "virtual"]).addressing == .virtualHost)
        for bad in ["s3:host", "s3:https://user:pw@host/b", "s3:h:99999/b", "/local/path"] {
            #expect(throws: RepositoryError.self, "\(bad)") { try S3Location.parse(bad, environment: [:]) }
        }
    }

    @Test func credentialsComeFromTheEnvironmentOrAFile() throws {
        let env = try S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"])
        #expect(env.accessKeyID == "id" && env.secretAccessKey == "s" && env.sessionToken == "t")
        let directory = Fixtures.temporaryDirectory("ancre-creds")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("credentials").path
        try "[default]\naws_access_key_id = d\naws_secret_access_key = ds\n\n[ovh]\naws_access_key_id=o\naws_secret_access_key=ovh-secret-9f\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let ovh = try S3Credentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ovh"])
        #expect(ovh.accessKeyID == "o" && ovh.secretAccessKey == "ovh-secret-9f" && ovh.sessionToken == nil)
        #expect(try S3Credentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": file]).accessKeyID == "d")
        #expect { try S3Credentials.fromEnvironment(["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "none"]) } throws: {
            ($0 as? RepositoryError)?.code == .accessDenied
        }
        #expect(!"\(ovh)".contains("ovh-secret-9f"))
    }
}
