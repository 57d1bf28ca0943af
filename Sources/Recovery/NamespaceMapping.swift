import BSON

/// Which namespaces a restore writes and under which names: mongorestore's
/// `--nsInclude`/`--nsExclude` filters and `--nsFrom`/`--nsTo` renames, applied alike
/// to the snapshot load and to oplog replay.
///
/// Patterns name `database.collection`; `*` matches any run of characters (dots
/// included) and `\` escapes the next character. Filters match the source
/// namespace; a rename's `*`s capture what they matched and the `--nsTo` pattern's
/// `*`s insert the captures in order, so `nsFrom 'clinic.*' nsTo 'drill_clinic.*'`
/// moves a whole database. The first rename that matches applies. A value type,
/// safe from any thread.
public struct NamespaceMapping: Sendable {
    struct Pattern: Sendable {
        /// Literal runs between `*`s.
        var parts: [String]
        var text: String

        init(_ text: String) {
            self.text = text
            var parts = [""]
            var escaped = false
            for c in text {
                if escaped {
                    parts[parts.count - 1].append(c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "*" {
                    parts.append("")
                } else {
                    parts[parts.count - 1].append(c)
                }
            }
            self.parts = parts
        }

        var wildcards: Int { parts.count - 1 }

        /// The texts the `*`s matched, or nil when `name` does not match.
        func match(_ name: String) -> [String]? {
            let s = Array(name.unicodeScalars)
            let p = parts.map { Array($0.unicodeScalars) }
            return Self.match(s, 0, p, 0)
        }

        private static func match(_ s: [Unicode.Scalar], _ at: Int, _ parts: [[Unicode.Scalar]], _ k: Int) -> [String]? {
            let part = parts[k]
            guard at + part.count <= s.count, Array(s[at..<(at + part.count)]) == part else { return nil }
            let next = at + part.count
            if k == parts.count - 1 { return next == s.count ? [] : nil }
            // Shortest capture first, like mongorestore's non-greedy variables.
            for end in next...s.count {
                if let rest = match(s, end, parts, k + 1) {
                    return [String(String.UnicodeScalarView(s[next..<end]))] + rest
                }
            }
            return nil
        }

        func fill(_ captures: [String]) -> String {
            var out = parts[0]
            for (i, part) in parts.dropFirst().enumerated() { out += captures[i] + part }
            return out
        }
    }

    private var includes: [Pattern] = []
    private var excludes: [Pattern] = []
    private var renames: [(from: Pattern, to: Pattern)] = []

    /// Every namespace, unchanged.
    public static let identity = NamespaceMapping()

    public init() {}

    /// - Parameters:
    ///   - include: restore only namespaces matching one of these (all when empty).
    ///   - exclude: never restore namespaces matching one of these.
    ///   - renames: `(from, to)` pairs, as `--nsFrom`/`--nsTo`.
    /// - Throws: `RestoreError` `.badPattern` for a pattern without a dot or a rename whose
    ///   patterns have different numbers of `*`.
    public init(include: [String] = [], exclude: [String] = [], renames: [(from: String, to: String)] = []) throws(RestoreError) {
        for text in include + exclude + renames.flatMap({ [$0.from, $0.to] }) where !text.contains(".") {
            throw RestoreError(.badPattern, "namespace pattern \"\(text)\" has no dot; write it as database.collection, e.g. clinic.* or clinic.patients")
        }
        includes = include.map(Pattern.init)
        excludes = exclude.map(Pattern.init)
        for (from, to) in renames {
            let f = Pattern(from), t = Pattern(to)
            guard f.wildcards == t.wildcards else {
                throw RestoreError(.badPattern, "--nsFrom \"\(from)\" and --nsTo \"\(to)\" have \(f.wildcards) and \(t.wildcards) asterisks; they must have the same number")
            }
            self.renames.append((f, t))
        }
    }

    /// True when no filter or rename is set.
    public var isIdentity: Bool { includes.isEmpty && excludes.isEmpty && renames.isEmpty }

    /// Whether the source namespace is restored at all.
    public func includes(_ namespace: Namespace) -> Bool {
        let name = namespace.description
        if !includes.isEmpty && !includes.contains(where: { $0.match(name) != nil }) { return false }
        return !excludes.contains { $0.match(name) != nil }
    }

    /// The target namespace for a source namespace, or nil when it is filtered out.
    public func map(_ namespace: Namespace) -> Namespace? {
        guard includes(namespace) else { return nil }
        return rename(namespace)
    }

    /// The renamed namespace (filters not applied).
    public func rename(_ namespace: Namespace) -> Namespace {
        let name = namespace.description
        for (from, to) in renames {
            if let captures = from.match(name), let mapped = Namespace(to.fill(captures)) { return mapped }
        }
        return namespace
    }

    /// Where a whole database goes (for `dropDatabase`): the target database when every
    /// collection of `database` is restored under one database, else nil.
    ///
    /// Probed with a collection name no real collection has: if the renames and
    /// filters treat it as they treat any name, they apply to the whole database.
    public func mapDatabase(_ database: String) -> String? {
        let probes = ["\u{1}probe", "\u{2}other.probe"].map { Namespace(database: database, collection: $0) }
        let mapped = probes.map(map)
        guard let first = mapped[0], let second = mapped[1], first.database == second.database,
              first.collection == probes[0].collection, second.collection == probes[1].collection else { return nil }
        return first.database
    }
}
