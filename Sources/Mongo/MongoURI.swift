/// Connection-string handling that must not leak credentials.
public enum MongoURI {
    /// The URI with its password and password-bearing options replaced by `***`:
    /// `mongodb://user:secret@h/?tlsCertificateKeyFilePassword=x` becomes
    /// `mongodb://user:***@h/?tlsCertificateKeyFilePassword=***`. Use it wherever a URI
    /// is shown or logged.
    public static func redacted(_ uri: String) -> String {
        let parts = split(uri)
        var out = parts.scheme
        if let user = parts.user {
            out += user + (parts.password != nil ? ":***" : "") + "@"
        }
        out += parts.hosts + parts.path
        if let query = parts.query {
            let options = query.split(separator: "&", omittingEmptySubsequences: false).map { option -> String in
                guard let eq = option.firstIndex(of: "=") else { return String(option) }
                let key = option[..<eq]
                return isSecretOption(key) ? key + "=***" : String(option)
            }
            out += "?" + options.joined(separator: "&")
        }
        return out
    }

    /// A libmongoc log line with any embedded URI redacted (it may echo connection strings).
    static func redactedLogLine(_ line: String) -> String {
        guard let start = line.range(of: "mongodb") else { return line }
        let uriEnd = line[start.lowerBound...].firstIndex { $0 == " " || $0 == "\"" || $0 == "'" } ?? line.endIndex
        return String(line[..<start.lowerBound]) + redacted(String(line[start.lowerBound..<uriEnd])) + String(line[uriEnd...])
    }

    /// The host list (`h1:27017,h2:27017`), for log metadata and messages.
    public static func hosts(_ uri: String) -> String { split(uri).hosts }

    /// The password as written and percent-decoded, plus secret option values, so
    /// they can be scrubbed from messages libmongoc or the server produce.
    static func secrets(_ uri: String) -> [String] {
        let parts = split(uri)
        var out: [String] = []
        if let password = parts.password, !password.isEmpty {
            out.append(password)
            let decoded = percentDecoded(password)
            if decoded != password { out.append(decoded) }
        }
        if let query = parts.query {
            for option in query.split(separator: "&") {
                guard let eq = option.firstIndex(of: "="), isSecretOption(option[..<eq]) else { continue }
                let value = String(option[option.index(after: eq)...])
                if value.count >= 3 { out.append(value); out.append(percentDecoded(value)) }
            }
        }
        // Longest first, so a secret containing another is scrubbed whole.
        return out.sorted { $0.count > $1.count }
    }

    private static func isSecretOption(_ key: Substring) -> Bool {
        let k = key.lowercased()
        return k.contains("password") || k.contains("secret") || k.contains("token")
            || k == "authmechanismproperties" || k.contains("keyvault")
    }

    private struct Parts {
        var scheme = ""
        var user: String?
        var password: String?
        var hosts = ""
        var path = ""
        var query: String?
    }

    /// Splits without validating (libmongoc validates); the user info ends at the last
    /// `@` before the path, so an unencoded `@` or `/` in a password still stays hidden.
    private static func split(_ uri: String) -> Parts {
        var parts = Parts()
        var rest = Substring(uri)
        if let range = rest.range(of: "://") {
            parts.scheme = String(rest[..<range.upperBound])
            rest = rest[range.upperBound...]
        }
        if let q = rest.firstIndex(of: "?") {
            parts.query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                parts.user = String(userInfo[..<colon])
                parts.password = String(userInfo[userInfo.index(after: colon)...])
            } else {
                parts.user = String(userInfo)
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            parts.hosts = String(rest[..<slash])
            parts.path = String(rest[slash...])
        } else {
            parts.hosts = String(rest)
        }
        return parts
    }

    private static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
               let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
