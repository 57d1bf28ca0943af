import BSON
import Testing
@testable import Recovery

/// `$v:2` diffs applied as ARCHITECTURE.md §7 says; the same table as the simulator's
/// `Tools/simulator/tests/test_diff.py`, so both appliers agree.
struct DocumentDiffTests {
    static let applyCases: [(String, String, String, String)] = [
        ("delete", #"{"_id": 1, "a": 1, "b": 2}"#, #"{"d": {"a": false}}"#, #"{"_id": 1, "b": 2}"#),
        ("delete missing is no-op", #"{"_id": 1}"#, #"{"d": {"zz": false}}"#, #"{"_id": 1}"#),
        ("update in place", #"{"_id": 1, "a": 1, "b": 2}"#, #"{"u": {"a": 9}}"#, #"{"_id": 1, "a": 9, "b": 2}"#),
        ("update missing appends", #"{"_id": 1, "a": 1}"#, #"{"u": {"z": 1}}"#, #"{"_id": 1, "a": 1, "z": 1}"#),
        ("insert moves existing to end", #"{"_id": 1, "a": 1, "b": 2}"#, #"{"i": {"a": 3}}"#, #"{"_id": 1, "b": 2, "a": 3}"#),
        ("appended: missing u first, then i", #"{"_id": 1}"#, #"{"u": {"x": 1}, "i": {"y": 2}}"#, #"{"_id": 1, "x": 1, "y": 2}"#),
        ("i in diff order", #"{"_id": 1}"#, #"{"i": {"b": 1, "a": 2}}"#, #"{"_id": 1, "b": 1, "a": 2}"#),
        ("sub-diff", #"{"_id": 1, "o": {"p": 1, "q": 2}}"#, #"{"so": {"u": {"p": 5}}}"#, #"{"_id": 1, "o": {"p": 5, "q": 2}}"#),
        ("sub-diff on missing field is no-op", #"{"_id": 1}"#, #"{"so": {"u": {"p": 5}}}"#, #"{"_id": 1}"#),
        ("sub-diff on scalar gives null in place", #"{"_id": 1, "o": 5, "z": 1}"#, #"{"so": {"u": {"p": 5}}}"#, #"{"_id": 1, "o": null, "z": 1}"#),
        ("object diff on array gives null", #"{"_id": 1, "o": [1]}"#, #"{"so": {"u": {"p": 5}}}"#, #"{"_id": 1, "o": null}"#),
        ("array diff on object gives null", #"{"_id": 1, "o": {"a": 1}}"#, #"{"so": {"a": true, "u0": 1}}"#, #"{"_id": 1, "o": null}"#),
        ("array update", #"{"_id": 1, "a": [1, 2, 3]}"#, #"{"sa": {"a": true, "u1": 9}}"#, #"{"_id": 1, "a": [1, 9, 3]}"#),
        ("array u past end pads with nulls", #"{"_id": 1, "a": [1]}"#, #"{"sa": {"a": true, "u3": 4}}"#, #"{"_id": 1, "a": [1, null, null, 4]}"#),
        ("array s past end gives null", #"{"_id": 1, "a": [1]}"#, #"{"sa": {"a": true, "s2": {"u": {"x": 1}}}}"#, #"{"_id": 1, "a": [1, null, null]}"#),
        ("array s on wrong kind gives null", #"{"_id": 1, "a": [1, 2]}"#, #"{"sa": {"a": true, "s1": {"u": {"x": 1}}}}"#, #"{"_id": 1, "a": [1, null]}"#),
        ("array s on element", #"{"_id": 1, "a": [{"x": 1}, {"x": 2}]}"#, #"{"sa": {"a": true, "s1": {"u": {"x": 5}}}}"#, #"{"_id": 1, "a": [{"x": 1}, {"x": 5}]}"#),
        ("array l truncates", #"{"_id": 1, "a": [1, 2, 3, 4]}"#, #"{"sa": {"a": true, "l": 2}}"#, #"{"_id": 1, "a": [1, 2]}"#),
        ("array l pads", #"{"_id": 1, "a": [1]}"#, #"{"sa": {"a": true, "l": 3}}"#, #"{"_id": 1, "a": [1, null, null]}"#),
        ("array without l keeps trailing", #"{"_id": 1, "a": [1, 2, 3]}"#, #"{"sa": {"a": true, "u0": 0}}"#, #"{"_id": 1, "a": [0, 2, 3]}"#),
        ("nested arrays", #"{"_id": 1, "a": [[1, 2], [3]]}"#, #"{"sa": {"a": true, "s0": {"a": true, "u1": 7}}}"#, #"{"_id": 1, "a": [[1, 7], [3]]}"#),
        ("all sections", #"{"_id": 1, "a": 1, "b": 2, "c": {"d": 1}, "e": 5}"#,
         #"{"d": {"a": false}, "u": {"b": 3}, "i": {"e": 6, "f": 7}, "sc": {"i": {"x": 1}}}"#,
         #"{"_id": 1, "b": 3, "c": {"d": 1, "x": 1}, "e": 6, "f": 7}"#),
    ]

    @Test(arguments: applyCases)
    func apply(_ c: (String, String, String, String)) throws {
        let out = try DocumentDiff.apply(doc(c.2), to: doc(c.1))
        // Byte equality: same values, same types, same field order.
        #expect(out.bytes == doc(c.3).bytes, "\(c.0): got \(out)")
    }

    static let invalidCases: [(String, String)] = [
        ("empty diff", "{}"),
        ("sections out of order", #"{"u": {"a": 1}, "d": {"b": false}}"#),
        ("field named twice", #"{"d": {"a": false}, "u": {"a": 1}}"#),
        ("field in u and s", #"{"u": {"a": 1}, "sa": {"u": {"x": 1}}}"#),
        ("s before i", #"{"sa": {"u": {"x": 1}}, "i": {"b": 1}}"#),
        ("unknown section", #"{"x": {"a": 1}}"#),
    ]

    @Test(arguments: invalidCases)
    func invalid(_ c: (String, String)) {
        #expect(throws: RestoreError.self, "\(c.0)") {
            try DocumentDiff.apply(doc(c.1), to: doc(#"{"_id": 1, "a": {"x": 1}, "b": 1}"#))
        }
    }

    @Test func operatorsPreserveOrderOrDecline() throws {
        // u in place, d, one appended i, an object sub-diff: operators with conditions.
        let t = try #require(try DocumentDiff.operators(for: doc(#"{"d": {"x": false}, "u": {"a": 2}, "i": {"n": 1}, "so": {"u": {"p": 5}}}"#)))
        #expect(relaxed(t.update) == relaxed(doc(#"{"$set": {"a": 2, "n": 1, "o.p": 5}, "$unset": {"x": ""}}"#)))
        #expect(t.conditions["a"] == .document(doc(#"{"$exists": true}"#)))
        #expect(t.conditions["n"] == .document(doc(#"{"$exists": false}"#)))
        // The sub-diff's field is an object: a `u` field inside it exists, and it has no
        // element 0. Never `$type` (nx-27017 mis-applies updates whose filter has it).
        #expect(t.conditions["o.p"] == .document(doc(#"{"$exists": true}"#)))
        #expect(t.conditions["o.0"] == .document(doc(#"{"$exists": false}"#)))
        #expect(!relaxed(t.conditions).contains("$type"))
        // Nested sub-diffs are anchored by the deepest `u` field.
        let nested = try #require(try DocumentDiff.operators(for: doc(#"{"so": {"sq": {"u": {"r": 1}}}}"#)))
        #expect(relaxed(nested.conditions) == relaxed(doc(#"{"o.q.r": {"$exists": true}, "o.q.0": {"$exists": false}, "o.0": {"$exists": false}}"#)))
        // A sub-diff without a `u` field cannot prove its field is an object with `$exists`.
        #expect(try DocumentDiff.operators(for: doc(#"{"so": {"d": {"p": false}}}"#)) == nil)
        #expect(try DocumentDiff.operators(for: doc(#"{"so": {"i": {"p": 1}}}"#)) == nil)
        // Field order $set cannot keep, or array diffs: fetch and replace instead.
        #expect(try DocumentDiff.operators(for: doc(#"{"i": {"b": 1, "a": 2}}"#)) == nil)
        #expect(try DocumentDiff.operators(for: doc(#"{"sa": {"a": true, "u1": 9}}"#)) == nil)
        #expect(try DocumentDiff.operators(for: doc(#"{"u": {"a.b": 1}}"#)) == nil)
    }
}
