import Foundation

/// Credentials for S3-compatible storage: an access key id, its secret, and an optional
/// session token (temporary credentials).
///
/// `description` never shows the secret or the token, so a credentials value can be
/// logged or interpolated into an error by mistake without leaking them.
public struct S3Credentials: Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(accessKeyID: \(accessKeyID), secret: <redacted>)" }

    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optional
    /// `AWS_SESSION_TOKEN`; else from the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`).
    /// - Throws: `RepositoryError` `.accessDenied` when neither has credentials.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Credentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !id.isEmpty, !secret.isEmpty {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
        }
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"]
            ?? (environment["HOME"].map { $0 + "/.aws/credentials" } ?? NSHomeDirectory() + "/.aws/credentials")
        let profile = environment["AWS_PROFILE"] ?? "default"
        if let credentials = try fromFile(file, profile: profile) { return credentials }
        throw RepositoryError(
            .accessDenied,
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '\(profile)' to \(file)")
    }

    /// Reads `profile` from an AWS-style INI credentials file; nil when the file or the profile is absent.
    /// - Throws: `RepositoryError` `.accessDenied` when the profile lacks a key id or secret.
    public static func fromFile(_ path: String, profile: String) throws -> S3Credentials? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var section: String?
        var values: [String: String] = [:]
        var found = false
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if section == profile { found = true }
                continue
            }
            guard section == profile, let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values[name] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard found else { return nil }
        guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
            throw RepositoryError(.accessDenied, "profile '\(profile)' in \(path) lacks aws_access_key_id or aws_secret_access_key")
        }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }
}

/// AWS Signature Version 4 for S3 requests (header authentication).
///
/// Signs the method, canonical path and query, `host`, every `x-amz-*` header and the
/// other headers passed in, and the payload's SHA-256 (sent as `x-amz-content-sha256`,
/// which S3 checks against the body). Thread-safe: immutable; signing keys are derived
/// per call (an HMAC chain of four, negligible next to a request).
struct SigV4Signer: Sendable {
    let credentials: S3Credentials
    let region: String
    let service: String

    init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request: `Authorization`, `x-amz-date`, `x-amz-content-sha256`
    /// and, with temporary credentials, `x-amz-security-token`.
    ///
    /// - Parameters:
    ///   - path: the canonical (already percent-encoded) path, starting with `/`.
    ///   - query: decoded query parameters; encoded here in canonical order.
    ///   - host: the `Host` header value, with the port when it is not the scheme's default.
    ///   - headers: other headers to sign (for example `content-md5`, `range`, `if-none-match`).
    ///   - payloadHash: lowercase hex SHA-256 of the body.
    func sign(
        method: String, path: String, query: [(String, String)], host: String,
        headers: [String: String], payloadHash: String, date: Date = Date()
    ) -> [String: String] {
        let (amzDate, day) = Self.timestamps(date)
        var signed: [String: String] = [:]
        for (name, value) in headers { signed[name.lowercased()] = value.trimmingCharacters(in: .whitespaces) }
        signed["host"] = host
        signed["x-amz-date"] = amzDate
        signed["x-amz-content-sha256"] = payloadHash
        if let token = credentials.sessionToken { signed["x-amz-security-token"] = token }

        let names = signed.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(signed[$0]!)\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method, path, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, encodeHex(Crypto.sha256(Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let signature = encodeHex(Crypto.hmacSHA256(key: signingKey(day: day), Array(stringToSign.utf8)))

        var result = signed
        result["host"] = nil  // URLSession sets Host from the URL; the value signed is the same
        result["Authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return result
    }

    func signingKey(day: String) -> [UInt8] {
        var key = Crypto.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = Crypto.hmacSHA256(key: key, Array(part.utf8)) }
        return key
    }

    /// `yyyyMMdd'T'HHmmss'Z'` and `yyyyMMdd` in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func pad(_ value: Int?, _ width: Int) -> String {
            let s = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let day: String = [pad(c.year, 4), pad(c.month, 2), pad(c.day, 2)].joined()
        let time: String = [pad(c.hour, 2), pad(c.minute, 2), pad(c.second, 2)].joined()
        return (day + "T" + time + "Z", day)
    }

    /// Query parameters encoded and sorted by name, then value (SigV4's canonical query string).
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { (uriEncode($0.0), uriEncode($0.1)) }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (and `/` when `keepSlash`).
    static func uriEncode(_ string: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
