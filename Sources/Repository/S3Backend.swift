import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(FoundationXML)
import FoundationXML
#endif
import Synchronization

/// Where an S3-compatible repository lives: endpoint, bucket, key prefix, region and addressing.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// How the bucket appears in request URLs.
    public enum Addressing: String, Sendable {
        /// `https://host/bucket/key`: works with MinIO, moto and most providers.
        case path
        /// `https://bucket.host/key`: what AWS prefers.
        case virtualHost
    }

    /// `http` or `https`.
    public var scheme: String
    public var host: String
    /// Nil for the scheme's default port.
    public var port: Int?
    public var bucket: String
    /// Keys are stored under `prefix/`; empty for the bucket's root.
    public var prefix: String
    public var region: String
    public var addressing: Addressing

    public init(
        scheme: String = "https", host: String, port: Int? = nil, bucket: String, prefix: String = "",
        region: String = "us-east-1", addressing: Addressing = .path
    ) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
        self.region = region
        self.addressing = addressing
    }

    /// Parses `s3:https://host:port/bucket/prefix`, `s3:http://…`, or `s3:host/bucket/prefix` (https).
    ///
    /// The region comes from `AWS_REGION` or `AWS_DEFAULT_REGION` (default `us-east-1`),
    /// the addressing from `ANCRE_S3_ADDRESSING` (`path`, the default, or `virtual`).
    /// - Throws: `RepositoryError` `.invalidArgument` for anything else.
    public static func parse(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Location {
        guard text.hasPrefix("s3:") else {
            throw RepositoryError(.invalidArgument, "'\(text)' is not an S3 location; write s3:https://host[:port]/bucket[/prefix]")
        }
        var rest = String(text.dropFirst(3))
        var scheme = "https"
        for candidate in ["https", "http"] where rest.hasPrefix(candidate + "://") {
            scheme = candidate
            rest = String(rest.dropFirst(candidate.count + 3))
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 2, !parts[0].contains("@") else {
            throw RepositoryError(.invalidArgument, "'s3:…' needs a host and a bucket: s3:https://host[:port]/bucket[/prefix] (credentials come from the environment, never the location)")
        }
        var host = parts[0]
        var port: Int?
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw RepositoryError(.invalidArgument, "the port in '\(parts[0])' is not a number from 1 to 65535")
            }
            port = value
            host = String(host[..<colon])
        }
        if port == (scheme == "https" ? 443 : 80) { port = nil }
        let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let addressing: Addressing = environment["ANCRE_S3_ADDRESSING"] == "virtual" ? .virtualHost : .path
        return S3Location(
            scheme: scheme, host: host, port: port, bucket: parts[1], prefix: parts.dropFirst(2).joined(separator: "/"),
            region: region, addressing: addressing)
    }

    /// `s3:scheme://host[:port]/bucket/prefix`: no credentials are ever part of it.
    public var description: String {
        "s3:\(scheme)://\(hostHeader(forBucket: false))/\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")
    }

    func hostHeader(forBucket: Bool) -> String {
        let name = forBucket && addressing == .virtualHost ? "\(bucket).\(host)" : host
        return port.map { "\(name):\($0)" } ?? name
    }
}

/// Object Lock retention put on every object written (except `locks/`, which must be deletable).
public struct ObjectLockRetention: Sendable, Equatable {
    public enum Mode: String, Sendable {
        /// Nobody, not even the root account, can delete or shorten it before it expires.
        case compliance = "COMPLIANCE"
        /// Users with `s3:BypassGovernanceRetention` can remove it.
        case governance = "GOVERNANCE"
    }
    public var mode: Mode
    /// How long after the write the object stays locked.
    public var duration: Duration

    public init(mode: Mode, duration: Duration) {
        self.mode = mode
        self.duration = duration
    }
}

/// Tunables of an `S3Backend`.
public struct S3Options: Sendable {
    /// Objects larger than this are uploaded in parts. The default is above the largest
    /// pack (64 MiB), so a pack goes up in one PUT whose signed payload hash is its name.
    public var multipartThreshold: Int
    /// Size of each part but the last (S3 needs at least 5 MiB).
    public var partSize: Int
    /// Tries per request, counting the first (retries only 5xx, throttling and connection errors).
    public var maxAttempts: Int
    /// First retry delay; doubled each time, with full jitter, up to `maxRetryDelay`.
    public var retryDelay: Duration
    public var maxRetryDelay: Duration
    /// Idle time after which a request fails (and is retried).
    public var requestTimeout: Duration
    /// When set, objects are written with this Object Lock retention (the bucket needs Object Lock enabled).
    public var objectLock: ObjectLockRetention?
    /// Whether the server honours `If-None-Match: *` on PUT (AWS since 2024, MinIO, moto).
    /// When false, `putIfAbsent` falls back to HEAD then PUT, which is not atomic.
    public var conditionalWrites: Bool

    public init(
        multipartThreshold: Int = 128 << 20, partSize: Int = 16 << 20, maxAttempts: Int = 5,
        retryDelay: Duration = .milliseconds(200), maxRetryDelay: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(60), objectLock: ObjectLockRetention? = nil, conditionalWrites: Bool = true
    ) {
        precondition(partSize >= 1 && multipartThreshold >= 1 && maxAttempts >= 1)
        self.multipartThreshold = multipartThreshold
        self.partSize = partSize
        self.maxAttempts = maxAttempts
        self.retryDelay = retryDelay
        self.maxRetryDelay = maxRetryDelay
        self.requestTimeout = requestTimeout
        self.objectLock = objectLock
        self.conditionalWrites = conditionalWrites
    }
}

/// A repository in an S3-compatible bucket (AWS, OVHcloud, Scaleway, MinIO; tested against moto).
///
/// Requests are signed with SigV4; bodies carry `Content-MD5` and `x-amz-content-sha256`,
/// which the server checks, so a damaged upload is refused rather than stored. Objects
/// above `multipartThreshold` go up in parts and become visible only when every part
/// arrived (a failed upload is aborted). 5xx, throttling and connection errors are
/// retried with exponential backoff and jitter; 4xx are not.
///
/// Threading: thread-safe; every call blocks its calling thread until the HTTP exchange
/// ends (URLSession runs it on its own threads). Call it from worker threads, as the
/// repository does, never from the Swift concurrency pool.
///
/// Credentials never appear in URLs, logs or errors.
public final class S3Backend: Storage {
    public let location: S3Location
    public let options: S3Options
    let signer: SigV4Signer
    private let session: URLSession

    /// - Parameter credentials: defaults to `S3Credentials.fromEnvironment()`.
    /// - Throws: `RepositoryError` `.accessDenied` when no credentials are found.
    public init(location: S3Location, credentials: S3Credentials? = nil, options: S3Options = S3Options()) throws {
        self.location = location
        self.options = options
        self.signer = SigV4Signer(credentials: try credentials ?? S3Credentials.fromEnvironment(), region: location.region)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpMaximumConnectionsPerHost = 16
        configuration.timeoutIntervalForRequest = Self.seconds(options.requestTimeout)
        configuration.timeoutIntervalForResource = 24 * 3600
        session = URLSession(configuration: configuration)
    }

    deinit { session.finishTasksAndInvalidate() }

    // MARK: - Storage

    public func put(_ key: String, _ bytes: [UInt8]) throws {
        _ = try putConfirming(key, bytes)
    }

    /// Stores `bytes`; true when the server's answer shows it received exactly them: the
    /// ETag it answered is the MD5 of what was sent (for a multipart upload, every part's).
    /// False when an ETag is not an MD5 (SSE-KMS, SSE-C, some providers): read it back then.
    public func putConfirming(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        try upload(key, bytes, digests: nil)
    }

    /// `putConfirming` with the bytes' digests already computed: a single PUT hashes nothing more.
    public func putConfirming(_ key: String, _ bytes: [UInt8], digests: ObjectDigests) throws -> Bool {
        try upload(key, bytes, digests: digests)
    }

    private func upload(_ key: String, _ bytes: [UInt8], digests: ObjectDigests?) throws -> Bool {
        try validateStorageKey(key)
        if bytes.count > options.multipartThreshold {
            return try putMultipart(key, bytes)
        }
        let request = S3Request(
            method: "PUT", key: objectKey(key), headers: lockHeaders(key), body: bytes, digests: digests ?? ObjectDigests(of: bytes))
        let response = try perform(request, what: "PUT", key: key)
        guard response.status == 200 else { throw error(response, what: "PUT", key: key) }
        return response.etagMatchesSentMD5
    }

    public func putIfAbsent(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        try validateStorageKey(key)
        guard options.conditionalWrites else {
            // Fallback for servers that ignore If-None-Match: a concurrent writer can slip
            // between the HEAD and the PUT. Only `init` uses putIfAbsent, so the window is small.
            if try stat(key) != nil { return false }
            try put(key, bytes)
            return true
        }
        var headers = lockHeaders(key)
        headers["If-None-Match"] = "*"
        let response = try perform(S3Request(method: "PUT", key: objectKey(key), headers: headers, body: bytes), what: "PUT", key: key)
        switch response.status {
        case 200: return true
        case 412: return false
        default: throw error(response, what: "PUT", key: key)
        }
    }

    public func get(_ key: String, range: Range<Int>?) throws -> [UInt8] {
        try validateStorageKey(key)
        if let range, range.isEmpty {
            // S3 cannot express an empty range; still report a missing object.
            guard try stat(key) != nil else { throw notFound(key) }
            return []
        }
        var headers: [String: String] = [:]
        if let range { headers["Range"] = "bytes=\(range.lowerBound)-\(range.upperBound - 1)" }
        let response = try perform(S3Request(method: "GET", key: objectKey(key), headers: headers), what: "GET", key: key)
        switch response.status {
        case 200:
            // A server that ignores Range sends the whole object.
            guard let range else { return response.body }
            let lower = min(range.lowerBound, response.body.count), upper = min(range.upperBound, response.body.count)
            return Array(response.body[lower..<upper])
        case 206:
            return response.body
        case 416:
            // The range starts at or past the end (or the object is empty): nothing there.
            return []
        case 404 where response.errorCode != "NoSuchBucket":
            throw notFound(key)
        default:
            throw error(response, what: "GET", key: key)
        }
    }

    public func list(prefix: String) throws -> [StorageEntry] {
        let base = location.prefix.isEmpty ? "" : location.prefix + "/"
        var entries: [StorageEntry] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", base + prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try perform(S3Request(method: "GET", key: nil, query: query), what: "LIST", key: prefix)
            guard response.status == 200 else { throw error(response, what: "LIST", key: prefix) }
            guard let root = XMLTree.parse(response.body), root.name == "ListBucketResult" else {
                throw RepositoryError(.ioFailure, "S3 LIST '\(prefix)' in \(location): the server's answer is not a ListBucketResult")
            }
            for contents in root.children where contents.name == "Contents" {
                guard let key = contents.child("Key")?.text, key.hasPrefix(base), let size = Int(contents.child("Size")?.text ?? "") else {
                    continue
                }
                entries.append(StorageEntry(key: String(key.dropFirst(base.count)), size: size))
            }
            let truncated = root.child("IsTruncated")?.text == "true"
            token = truncated ? root.child("NextContinuationToken")?.text : nil
            if truncated && token == nil {
                throw RepositoryError(.ioFailure, "S3 LIST '\(prefix)' in \(location): truncated listing without a continuation token")
            }
        } while token != nil
        return entries
    }

    public func delete(_ key: String) throws {
        try validateStorageKey(key)
        let response = try perform(S3Request(method: "DELETE", key: objectKey(key)), what: "DELETE", key: key)
        guard response.status == 204 || response.status == 200 || (response.status == 404 && response.errorCode != "NoSuchBucket") else {
            throw error(response, what: "DELETE", key: key)
        }
    }

    public func stat(_ key: String) throws -> Int? {
        try validateStorageKey(key)
        let response = try perform(S3Request(method: "HEAD", key: objectKey(key)), what: "HEAD", key: key)
        switch response.status {
        case 200:
            guard let length = response.headers["content-length"].flatMap({ Int($0) }) else {
                throw RepositoryError(.ioFailure, "S3 HEAD '\(key)' in \(location): no Content-Length in the answer")
            }
            return length
        case 404: return nil  // HEAD has no body, so a missing bucket looks the same; GET and LIST tell
        default: throw error(response, what: "HEAD", key: key)
        }
    }

    // MARK: - Bucket (for tests and setup)

    /// Creates the bucket, with Object Lock enabled when asked; an existing bucket of ours is fine.
    /// - Throws: `RepositoryError` `.accessDenied` or `.ioFailure`.
    public func createBucket(objectLock: Bool = false) throws {
        var body: [UInt8] = []
        if location.region != "us-east-1" {
            body = Array("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(location.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        let headers = objectLock ? ["x-amz-bucket-object-lock-enabled": "true"] : [:]
        let response = try perform(S3Request(method: "PUT", key: nil, headers: headers, body: body), what: "CREATE BUCKET", key: "")
        guard response.status == 200 || response.errorCode == "BucketAlreadyOwnedByYou" else {
            throw error(response, what: "CREATE BUCKET", key: "")
        }
    }

    // MARK: - Multipart

    /// - Returns: whether every part's ETag was the MD5 of the part sent.
    private func putMultipart(_ key: String, _ bytes: [UInt8]) throws -> Bool {
        let object = objectKey(key)
        let created = try perform(
            S3Request(method: "POST", key: object, query: [("uploads", "")], headers: lockHeaders(key)), what: "CREATE MULTIPART", key: key)
        guard created.status == 200, let uploadID = XMLTree.parse(created.body)?.child("UploadId")?.text else {
            throw error(created, what: "CREATE MULTIPART", key: key)
        }
        do {
            var parts: [(number: Int, etag: String)] = []
            var confirmed = true
            var offset = 0
            while offset < bytes.count {
                let number = parts.count + 1
                let end = min(offset + options.partSize, bytes.count)
                let part = Array(bytes[offset..<end])
                let request = S3Request(
                    method: "PUT", key: object, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                    body: part, digests: ObjectDigests(of: part))
                let response = try perform(request, what: "UPLOAD PART \(number)", key: key)
                guard response.status == 200, let etag = response.headers["etag"] else {
                    throw error(response, what: "UPLOAD PART \(number)", key: key)
                }
                parts.append((number, etag))
                confirmed = confirmed && response.etagMatchesSentMD5
                offset = end
            }
            try completeMultipart(key, object: object, uploadID: uploadID, parts: parts, size: bytes.count)
            return confirmed
        } catch {
            // Abort so no parts linger (and cost money); the object was never visible.
            _ = try? perform(S3Request(method: "DELETE", key: object, query: [("uploadId", uploadID)]), what: "ABORT MULTIPART", key: key)
            throw error
        }
    }

    /// Sets the object's retention explicitly: moto (and possibly other servers) ignore the
    /// Object Lock headers of CreateMultipartUpload, and one more request per large pack is cheap.
    private func putRetention(_ key: String, object: String) throws {
        let headers = lockHeaders(key)
        guard let mode = headers["x-amz-object-lock-mode"], let until = headers["x-amz-object-lock-retain-until-date"] else { return }
        let xml = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(mode)</Mode><RetainUntilDate>\(until)</RetainUntilDate></Retention>"
        let response = try perform(
            S3Request(method: "PUT", key: object, query: [("retention", "")], body: Array(xml.utf8)), what: "PUT RETENTION", key: key)
        guard response.status == 200 || response.status == 204 else { throw error(response, what: "PUT RETENTION", key: key) }
    }

    private func completeMultipart(_ key: String, object: String, uploadID: String, parts: [(number: Int, etag: String)], size: Int) throws {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(Self.escapeXML(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let request = S3Request(method: "POST", key: object, query: [("uploadId", uploadID)], body: Array(xml.utf8))
        let response = try perform(request, what: "COMPLETE MULTIPART", key: key)
        if response.status == 200 { return try putRetention(key, object: object) }
        // A retried completion whose first attempt succeeded (the answer was lost) finds no
        // upload; the object is then there with our size (pack keys name their content).
        if response.status == 404, response.errorCode == "NoSuchUpload", try stat(key) == size {
            return try putRetention(key, object: object)
        }
        throw error(response, what: "COMPLETE MULTIPART", key: key)
    }

    // MARK: - Requests

    struct S3Request {
        var method: String
        /// The full object key (with the location's prefix), or nil for a bucket request.
        var key: String?
        var query: [(String, String)] = []
        var headers: [String: String] = [:]
        var body: [UInt8] = []
        /// The body's digests, when the caller has them; computed in `send` otherwise.
        var digests: ObjectDigests? = nil
    }

    struct S3Response: Sendable {
        var status: Int
        /// Lowercased names.
        var headers: [String: String]
        var body: [UInt8]
        /// The S3 error code (`NoSuchKey`, `AccessDenied`, ...) from the XML body, if any.
        /// Hex MD5 of the request body sent (set for requests that carried Content-MD5).
        var sentMD5: String? = nil
        /// True when the answer's ETag is the MD5 of the body sent: the server received it intact.
        var etagMatchesSentMD5: Bool {
            guard let sent = sentMD5, let etag = headers["etag"] else { return false }
            return etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased() == sent
        }
        var errorCode: String? { XMLTree.parse(body)?.child("Code")?.text }
        var errorMessage: String? { XMLTree.parse(body)?.child("Message")?.text }
    }

    private func objectKey(_ key: String) -> String {
        location.prefix.isEmpty ? key : location.prefix + "/" + key
    }

    private func lockHeaders(_ key: String) -> [String: String] {
        guard let lock = options.objectLock, !key.hasPrefix("locks/") else { return [:] }
        let until = Date().addingTimeInterval(Self.seconds(lock.duration))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return ["x-amz-object-lock-mode": lock.mode.rawValue, "x-amz-object-lock-retain-until-date": formatter.string(from: until)]
    }

    /// Sends `request`, retrying 5xx, throttling and connection failures; returns any other answer.
    /// - Throws: `RepositoryError` `.ioFailure` when every attempt failed.
    func perform(_ request: S3Request, what: String, key: String) throws -> S3Response {
        var attempt = 0
        while true {
            attempt += 1
            let outcome = send(request)
            let retryable: String
            switch outcome {
            case .success(let response):
                if response.status == 200, request.method == "POST", request.query.contains(where: { $0.0 == "uploadId" }),
                    XMLTree.parse(response.body)?.name == "Error"
                {
                    // CompleteMultipartUpload can fail after sending 200: the error is in the body.
                    retryable = "HTTP 200 with error \(response.errorCode ?? "?")"
                } else if Self.isRetryable(response) {
                    retryable = "HTTP \(response.status)" + (response.errorCode.map { " \($0)" } ?? "")
                    if attempt >= options.maxAttempts { return response }
                } else {
                    return response
                }
            case .failure(let failure):
                retryable = failure.message
                if attempt >= options.maxAttempts {
                    throw RepositoryError(
                        .ioFailure,
                        "S3 \(what) '\(key)' in \(location) failed after \(attempt) attempts: \(failure.message); check that the endpoint is reachable")
                }
            }
            if attempt >= options.maxAttempts {
                throw RepositoryError(.ioFailure, "S3 \(what) '\(key)' in \(location) failed after \(attempt) attempts: \(retryable)")
            }
            // Full jitter (AWS architecture blog): sleep a random time up to the capped exponential delay.
            let cap = min(Self.seconds(options.retryDelay) * pow(2, Double(attempt - 1)), Self.seconds(options.maxRetryDelay))
            Thread.sleep(forTimeInterval: Double.random(in: 0...cap))
        }
    }

    static func isRetryable(_ response: S3Response) -> Bool {
        switch response.status {
        case 500...599, 429: return true
        case 400: return response.errorCode == "RequestTimeout"
        case 409: return response.errorCode == "OperationAborted" || response.errorCode == "ConditionalRequestConflict"
        case 403: return response.errorCode == "RequestTimeTooSkewed" ? false : response.errorCode == "SlowDown"
        default: return false
        }
    }

    struct TransportFailure: Error {
        var message: String
    }

    /// One HTTP exchange, blocking the caller on a semaphore while URLSession works on its own threads.
    private func send(_ request: S3Request) -> Result<S3Response, TransportFailure> {
        let bucketInHost = location.addressing == .virtualHost
        var path = "/"
        if !bucketInHost { path += SigV4Signer.uriEncode(location.bucket) + (request.key == nil ? "" : "/") }
        if let key = request.key { path += SigV4Signer.uriEncode(key, keepSlash: true) }
        let host = location.hostHeader(forBucket: true)
        let queryString = SigV4Signer.canonicalQuery(request.query)
        guard let url = URL(string: "\(location.scheme)://\(host)\(path)" + (queryString.isEmpty ? "" : "?" + queryString)) else {
            return .failure(TransportFailure(message: "cannot form a URL for host '\(host)'"))
        }
        var headers = request.headers
        let payloadHash: String
        var sentMD5: String?
        if !request.body.isEmpty || request.method == "PUT" {
            // AWS checks both digests, so a body damaged on the way is refused, not stored
            // (moto checks neither: the ETag it answers tells). One pass computes both,
            // unless the caller (a copy) already did.
            let digests = request.digests ?? ObjectDigests(of: request.body)
            payloadHash = encodeHex(digests.sha256)
            sentMD5 = encodeHex(digests.md5)
            headers["Content-MD5"] = Data(digests.md5).base64EncodedString()
        } else {
            payloadHash = Self.emptyPayloadHash
        }
        let signed = signer.sign(
            method: request.method, path: path, query: request.query, host: host, headers: headers, payloadHash: payloadHash)
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = Self.seconds(options.requestTimeout)
        for (name, value) in signed { urlRequest.setValue(value, forHTTPHeaderField: name) }
        if request.method == "PUT" || request.method == "POST" {
            urlRequest.setValue(String(request.body.count), forHTTPHeaderField: "Content-Length")
        }

        let completion = Completion()
        let handler: @Sendable (Data?, URLResponse?, (any Error)?) -> Void = { data, response, error in
            let outcome: Result<S3Response, TransportFailure>
            if let http = response as? HTTPURLResponse, error == nil {
                var headers: [String: String] = [:]
                for (name, value) in http.allHeaderFields {
                    if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
                }
                outcome = .success(S3Response(status: http.statusCode, headers: headers, body: data.map { Array($0) } ?? []))
            } else if let error {
                // URLError's description names the URL only; it never holds our headers.
                let code = (error as? URLError).map { " (URLError \($0.code.rawValue))" } ?? ""
                outcome = .failure(TransportFailure(message: "connection failed\(code): \(error.localizedDescription)"))
            } else {
                outcome = .failure(TransportFailure(message: "no HTTP response"))
            }
            completion.finish(outcome)
        }
        let outcome: Result<S3Response, TransportFailure>
        if request.method == "PUT" || request.method == "POST", !request.body.isEmpty {
            // Lend URLSession the body's own storage rather than a copy: this call waits for
            // the completion, which comes after the last read of the body (Foundation on Linux
            // copies it into DispatchData when the transfer starts), so the storage outlives it.
            outcome = request.body.withUnsafeBytes { buffer in
                let body = Data(
                    bytesNoCopy: UnsafeMutableRawPointer(mutating: buffer.baseAddress!), count: buffer.count, deallocator: .none)
                session.uploadTask(with: urlRequest, from: body, completionHandler: handler).resume()
                return completion.wait()
            }
        } else if request.method == "PUT" || request.method == "POST" {
            session.uploadTask(with: urlRequest, from: Data(), completionHandler: handler).resume()
            outcome = completion.wait()
        } else {
            session.dataTask(with: urlRequest, completionHandler: handler).resume()
            outcome = completion.wait()
        }
        return outcome.map { response in
            var response = response
            response.sentMD5 = sentMD5
            return response
        }
    }

    /// SHA-256 of no bytes, the payload hash of GET, HEAD, DELETE and LIST.
    static let emptyPayloadHash = encodeHex(Crypto.sha256([UInt8]()))

    /// A one-shot result handed from URLSession's thread to the waiting caller.
    private final class Completion: Sendable {
        private let result = Mutex<Result<S3Response, TransportFailure>?>(nil)
        private let semaphore = DispatchSemaphore(value: 0)

        func finish(_ outcome: Result<S3Response, TransportFailure>) {
            result.withLock { $0 = outcome }
            semaphore.signal()
        }

        func wait() -> Result<S3Response, TransportFailure> {
            semaphore.wait()
            return result.withLock { $0! }
        }
    }

    // MARK: - Errors

    private func notFound(_ key: String) -> RepositoryError {
        RepositoryError(.objectNotFound, "object '\(key)' does not exist in \(location)")
    }

    /// Maps an S3 error answer to a `RepositoryError` with the server's code and message (never our credentials).
    func error(_ response: S3Response, what: String, key: String) -> RepositoryError {
        let code = response.errorCode
        let detail = "HTTP \(response.status)" + (code.map { " \($0)" } ?? "") + (response.errorMessage.map { ": \($0)" } ?? "")
        let subject = "S3 \(what)" + (key.isEmpty ? "" : " '\(key)'") + " in \(location)"
        switch (response.status, code) {
        case (403, _), (401, _):
            let hint = code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "InvalidToken"
                ? "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the credentials file"
                : "check the credentials and that the bucket policy allows this operation"
            return RepositoryError(.accessDenied, "\(subject) was refused (\(detail)); \(hint)")
        case (404, "NoSuchBucket"):
            return RepositoryError(.ioFailure, "\(subject) failed: bucket '\(location.bucket)' does not exist; create it or fix the location")
        case (404, _):
            return RepositoryError(.objectNotFound, "\(subject) failed: \(detail)")
        case (507, _), (_, "QuotaExceeded"), (_, "XMinioStorageFull"), (_, "InsufficientStorage"), (_, "EntityTooLarge"):
            return RepositoryError(.storageFull, "\(subject) failed: \(detail); free space or raise the bucket's quota and retry")
        case (301, _), (307, _):
            let region = response.headers["x-amz-bucket-region"].map { " (the bucket is in \($0); set AWS_REGION)" } ?? ""
            return RepositoryError(.ioFailure, "\(subject) was redirected\(region): \(detail)")
        case (400, "InvalidDigest"), (400, "BadDigest"), (400, "XAmzContentSHA256Mismatch"):
            return RepositoryError(.ioFailure, "\(subject) failed: the server received different bytes than were sent (\(detail)); retry")
        default:
            return RepositoryError(.ioFailure, "\(subject) failed: \(detail)")
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func escapeXML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// A minimal XML element tree, enough for S3's answers (elements and their text; attributes ignored).
struct XMLTree: Sendable {
    var name: String
    var text: String
    var children: [XMLTree]

    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// The document's root element, or nil when `bytes` is not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLTree? {
        guard !bytes.isEmpty else { return nil }
        let builder = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(XMLTree(name: elementName, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
        }
    }
}
