import BSON

/// MongoDB's `$v:2` update diffs (ARCHITECTURE.md §7), applied in Swift exactly as
/// mongod's applier does, and translated into update operators for CRUD replay.
///
/// A diff is a document of sections in the order `d` (delete), `u` (update), `i`
/// (insert), then `s<field>` sub-diffs; an array sub-diff starts with `a: true` and
/// has `u<n>`, `s<n>` and `l` (new length). Pure functions, safe from any thread.
public enum DocumentDiff {
    /// Applies `diff` to `document` and returns the new document.
    /// - Throws: `RestoreError` `.invalidDiff` for an empty diff, a field named twice,
    ///   sections out of order, an unknown section, or a malformed array diff.
    public static func apply(_ diff: Document, to document: Document) throws(RestoreError) -> Document {
        let sections = try Sections(diff)
        return Document(pairs: try applyObject(document.elements, sections))
    }

    /// Update operators equivalent to `diff` for a CRUD-mode `update`, with the
    /// conditions under which they are equivalent, or nil when `$set`/`$unset` cannot
    /// reproduce the field order (array diffs, several `i` fields at one level,
    /// dotted or `$` names) or the conditions cannot be written with `$exists` (an object
    /// sub-diff without a `u` field): then fetch the document, `apply` the diff, and
    /// replace it.
    ///
    /// The conditions go into the update's filter beside `_id`: `u` fields must exist
    /// (so `$set` replaces them in place), an `i` field must not (so `$set` appends it),
    /// a sub-diff's field must be an object: proven by one of its `u` fields existing
    /// (`f.g: {$exists: true}`, at any depth) with `f.0: {$exists: false}` excluding an
    /// array holding such objects. A sub-diff with no `u` field anywhere below it (only
    /// `i`/`d`) has nothing to prove that with, so the diff is declined. When the update
    /// matches nothing, the caller falls back to fetch-and-replace, so a wrong guess
    /// costs a round trip, never a wrong document.
    ///
    /// The filter uses `$exists` only, never `$type` (or `$in`): nx-27017 0.8.1
    /// (neosqlite) evaluates a filter it cannot translate to SQL by `find_one`, then
    /// maps the document's `_id` to its SQLite row with `get_integer_id_for_oid`, which
    /// takes an integer `_id` as the row id itself. The update then lands on row N (another
    /// document, or none) instead of the document with `_id: N`, and the reply still says
    /// `n: 1, nModified: 1`; `$exists` filters are translated to SQL and are safe.
    /// - Throws: `RestoreError` `.invalidDiff` as `apply`.
    public static func operators(for diff: Document) throws(RestoreError) -> (conditions: Document, update: Document)? {
        var conditions: [(String, BSONValue)] = []
        var set: [(String, BSONValue)] = []
        var unset: [(String, BSONValue)] = []
        var anchored = false
        guard try translate(diff, prefix: "", &conditions, &set, &unset, anchored: &anchored) else { return nil }
        guard !set.isEmpty || !unset.isEmpty else { return nil }
        var update: [(String, BSONValue)] = []
        if !set.isEmpty { update.append(("$set", .document(Document(pairs: set)))) }
        if !unset.isEmpty { update.append(("$unset", .document(Document(pairs: unset)))) }
        return (Document(pairs: conditions), Document(pairs: update))
    }

    // MARK: Sections

    /// A validated object diff.
    struct Sections {
        var delete: Set<String> = []
        var update: [(String, BSONValue)] = []
        var insert: [(String, BSONValue)] = []
        var sub: [(String, Document)] = []

        init(_ diff: Document) throws(RestoreError) {
            let elements = diff.elements
            guard !elements.isEmpty else { throw DocumentDiff.invalid("empty diff") }
            var last = -1
            var seen: Set<String> = []
            for (key, value) in elements {
                let rank: Int
                switch key {
                case "d": rank = 0
                case "u": rank = 1
                case "i": rank = 2
                default:
                    guard key.hasPrefix("s"), key.count > 1 else { throw DocumentDiff.invalid("unknown section \"\(key)\"") }
                    rank = 3
                }
                // d, u and i appear at most once and in that order; sub-diffs come last.
                if rank < last || (rank == last && rank < 3) { throw DocumentDiff.invalid("sections out of order at \"\(key)\"") }
                last = rank
                guard let section = value.documentValue else {
                    throw DocumentDiff.invalid("section \"\(key)\" is not an object")
                }
                let names = rank < 3 ? section.keys : [String(key.dropFirst())]
                for name in names {
                    guard seen.insert(name).inserted else { throw DocumentDiff.invalid("field \"\(name)\" named twice") }
                }
                switch rank {
                case 0: delete = Set(names)
                case 1: update = section.elements.map { ($0.key, $0.value) }
                case 2: insert = section.elements.map { ($0.key, $0.value) }
                default: sub.append((String(key.dropFirst()), section))
                }
            }
        }
    }

    static func invalid(_ why: String) -> RestoreError {
        RestoreError(.invalidDiff, "invalid $v:2 update diff: \(why). The oplog entry is damaged or was not written by MongoDB 5.0+; restore to a time before it.")
    }

    // MARK: Applying

    private static func applyObject(_ fields: [(key: String, value: BSONValue)], _ s: Sections) throws(RestoreError) -> [(String, BSONValue)] {
        let updates = Dictionary(s.update, uniquingKeysWith: { a, _ in a })
        let inserted = Set(s.insert.map(\.0))
        let subs = Dictionary(s.sub, uniquingKeysWith: { a, _ in a })
        var out: [(String, BSONValue)] = []
        var present: Set<String> = []
        for (name, value) in fields {
            present.insert(name)
            // Deleted, or moved to the end by `i`.
            if s.delete.contains(name) || inserted.contains(name) { continue }
            if let new = updates[name] {
                out.append((name, new))
            } else if let sub = subs[name] {
                out.append((name, try applySub(value, sub)))
            } else {
                out.append((name, value))
            }
        }
        // Appended: missing `u` fields first, then the `i` fields, each in diff order.
        for (name, value) in s.update where !present.contains(name) { out.append((name, value)) }
        out.append(contentsOf: s.insert)
        return out
    }

    private static func applySub(_ value: BSONValue, _ sub: Document) throws(RestoreError) -> BSONValue {
        if sub["a"] == .bool(true) {
            // The wrong kind gives null without looking further, as mongod (and the simulator) do.
            guard case .array(let array) = value else { return .null }
            return .array(try applyArray(array, sub))
        }
        guard case .document(let d) = value else { return .null }
        return .document(Document(pairs: try applyObject(d.elements, try Sections(sub))))
    }

    private static func applyArray(_ input: [BSONValue], _ diff: Document) throws(RestoreError) -> [BSONValue] {
        var array = input
        var first = true
        for (key, value) in diff.elements {
            if first {
                first = false
                guard key == "a" else { throw invalid("an array diff must start with a: true") }
                continue
            }
            if key == "l" {
                guard let n = value.int64Value, value.isNumber, n >= 0 else { throw invalid("bad array length \(value)") }
                let length = Int(n)
                if array.count > length {
                    array.removeSubrange(length...)
                } else {
                    array.append(contentsOf: repeatElement(.null, count: length - array.count))
                }
                continue
            }
            guard let kind = key.first, kind == "u" || kind == "s", let index = Int(key.dropFirst()), index >= 0,
                  key.dropFirst().allSatisfy(\.isASCII) else {
                throw invalid("bad array diff field \"\(key)\"")
            }
            if index >= array.count {
                array.append(contentsOf: repeatElement(.null, count: index + 1 - array.count))
                if kind == "s" {
                    guard value.documentValue != nil else { throw invalid("array sub-diff \"\(key)\" is not an object") }
                    continue  // a sub-diff past the end gives null
                }
            }
            if kind == "u" {
                array[index] = value
            } else {
                guard let sub = value.documentValue else { throw invalid("array sub-diff \"\(key)\" is not an object") }
                array[index] = try applySub(array[index], sub)
            }
        }
        return array
    }

    // MARK: Translating

    /// Appends the operators and conditions for `diff` at `prefix`; false when the diff
    /// cannot be translated. `anchored` becomes true when a condition proves the object
    /// at `prefix` exists as an object (a `u` field of it, at any depth, must exist).
    private static func translate(_ diff: Document, prefix: String, _ conditions: inout [(String, BSONValue)],
                                  _ set: inout [(String, BSONValue)], _ unset: inout [(String, BSONValue)],
                                  anchored: inout Bool) throws(RestoreError) -> Bool {
        let s = try Sections(diff)
        let names = Array(s.delete) + s.update.map(\.0) + s.insert.map(\.0) + s.sub.map(\.0)
        // Paths cannot name fields with dots or a leading $ (or empty names).
        if names.contains(where: { $0.isEmpty || $0.contains(".") || $0.hasPrefix("$") }) { return false }
        // $set appends several new fields in its own order (lexicographic on MongoDB 5.0+),
        // not the diff's: only one appended field per level keeps the order.
        if s.insert.count > 1 { return false }
        for name in s.delete.sorted() { unset.append((prefix + name, .string(""))) }
        for (name, value) in s.update {
            conditions.append((prefix + name, .document(Document(["$exists": .bool(true)]))))
            set.append((prefix + name, value))
            anchored = true
        }
        for (name, value) in s.insert {
            conditions.append((prefix + name, .document(Document(["$exists": .bool(false)]))))
            set.append((prefix + name, value))
        }
        for (name, sub) in s.sub {
            if sub["a"] == .bool(true) { return false }
            // The field must be an object, not a scalar (a `u` field inside it must exist)
            // nor an array of objects (which has an element "0"; an empty array has no
            // fields, so the `u` condition excludes it).
            var subAnchored = false
            guard try translate(sub, prefix: prefix + name + ".", &conditions, &set, &unset, anchored: &subAnchored),
                  subAnchored else { return false }
            conditions.append((prefix + name + ".0", .document(Document(["$exists": .bool(false)]))))
            anchored = true
        }
        return true
    }
}
