import BSON
import Foundation

/// Which namespaces a backup takes: `--include`/`--exclude` patterns over `db.coll`
/// (`db.*`, `db.coll`, `*.users`, a bare `db` meaning `db.*`; `*` and `?` as in shell
/// globs), and the system namespaces skipped unless asked.
///
/// Always skipped: the `local` database (the oplog is captured on its own), each
/// database's `system.views` (views are kept as metadata), `system.profile` and
/// `system.buckets.*`. Skipped unless `includeSystem`: `config` and `admin.system.*`.
public struct NamespaceFilter: Sendable {
    public var include: [String]
    public var exclude: [String]
    public var includeSystem: Bool

    /// - Throws: `CaptureError` `.badPattern` for an empty pattern or one with a NUL.
    public init(include: [String] = [], exclude: [String] = [], includeSystem: Bool = false) throws {
        for pattern in include + exclude where pattern.isEmpty || pattern.contains("\0") {
            throw CaptureError(.badPattern, "namespace pattern \"\(pattern)\" is empty or invalid; use db.coll, db.* or a glob such as *.users")
        }
        self.include = include.map(Self.normalized)
        self.exclude = exclude.map(Self.normalized)
        self.includeSystem = includeSystem
    }

    /// Whether a database may hold anything to back up (to skip listing it at all).
    public func mayInclude(database: String) -> Bool {
        if database == "local" { return false }
        if database == "config" && !includeSystem { return false }
        return true
    }

    /// Whether `namespace` is backed up.
    public func includes(_ namespace: Namespace) -> Bool {
        guard mayInclude(database: namespace.database) else { return false }
        let collection = namespace.collection
        if collection == "system.views" || collection == "system.profile" || collection.hasPrefix("system.buckets.") {
            return false
        }
        if namespace.database == "admin" && collection.hasPrefix("system.") && !includeSystem { return false }
        let name = namespace.description
        if !include.isEmpty && !include.contains(where: { Self.matches($0, name) }) { return false }
        return !exclude.contains { Self.matches($0, name) }
    }

    private static func normalized(_ pattern: String) -> String {
        pattern.contains(".") || pattern == "*" ? pattern : pattern + ".*"
    }

    private static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
