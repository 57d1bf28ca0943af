"""$v:2 diff application (ARCHITECTURE.md section 7) and computation."""
import pytest

from ancresim.diff import apply_diff, compute_diff
from ancresim.errors import CommandError

APPLY_CASES = [
    # (name, document, diff, expected)
    ("delete", {"_id": 1, "a": 1, "b": 2}, {"d": {"a": False}}, {"_id": 1, "b": 2}),
    ("delete missing is no-op", {"_id": 1}, {"d": {"zz": False}}, {"_id": 1}),
    ("update in place", {"_id": 1, "a": 1, "b": 2}, {"u": {"a": 9}}, {"_id": 1, "a": 9, "b": 2}),
    ("update missing appends", {"_id": 1, "a": 1}, {"u": {"z": 1}}, {"_id": 1, "a": 1, "z": 1}),
    ("insert moves existing to end", {"_id": 1, "a": 1, "b": 2}, {"i": {"a": 3}},
     {"_id": 1, "b": 2, "a": 3}),
    ("appended: missing u first, then i", {"_id": 1},
     {"u": {"x": 1}, "i": {"y": 2}}, {"_id": 1, "x": 1, "y": 2}),
    ("i in diff order", {"_id": 1}, {"i": {"b": 1, "a": 2}}, {"_id": 1, "b": 1, "a": 2}),
    ("sub-diff", {"_id": 1, "o": {"p": 1, "q": 2}}, {"so": {"u": {"p": 5}}},
     {"_id": 1, "o": {"p": 5, "q": 2}}),
    ("sub-diff on missing field is no-op", {"_id": 1}, {"so": {"u": {"p": 5}}}, {"_id": 1}),
    ("sub-diff on scalar gives null in place", {"_id": 1, "o": 5, "z": 1}, {"so": {"u": {"p": 5}}},
     {"_id": 1, "o": None, "z": 1}),
    ("object diff on array gives null", {"_id": 1, "o": [1]}, {"so": {"u": {"p": 5}}},
     {"_id": 1, "o": None}),
    ("array diff on object gives null", {"_id": 1, "o": {"a": 1}}, {"so": {"a": True, "u0": 1}},
     {"_id": 1, "o": None}),
    ("array update", {"_id": 1, "a": [1, 2, 3]}, {"sa": {"a": True, "u1": 9}},
     {"_id": 1, "a": [1, 9, 3]}),
    ("array u past end pads with nulls", {"_id": 1, "a": [1]}, {"sa": {"a": True, "u3": 4}},
     {"_id": 1, "a": [1, None, None, 4]}),
    ("array s past end gives null", {"_id": 1, "a": [1]}, {"sa": {"a": True, "s2": {"u": {"x": 1}}}},
     {"_id": 1, "a": [1, None, None]}),
    ("array s on wrong kind gives null", {"_id": 1, "a": [1, 2]},
     {"sa": {"a": True, "s1": {"u": {"x": 1}}}}, {"_id": 1, "a": [1, None]}),
    ("array s on element", {"_id": 1, "a": [{"x": 1}, {"x": 2}]},
     {"sa": {"a": True, "s1": {"u": {"x": 5}}}}, {"_id": 1, "a": [{"x": 1}, {"x": 5}]}),
    ("array l truncates", {"_id": 1, "a": [1, 2, 3, 4]}, {"sa": {"a": True, "l": 2}},
     {"_id": 1, "a": [1, 2]}),
    ("array l pads", {"_id": 1, "a": [1]}, {"sa": {"a": True, "l": 3}}, {"_id": 1, "a": [1, None, None]}),
    ("array without l keeps trailing", {"_id": 1, "a": [1, 2, 3]}, {"sa": {"a": True, "u0": 0}},
     {"_id": 1, "a": [0, 2, 3]}),
    ("nested arrays", {"_id": 1, "a": [[1, 2], [3]]}, {"sa": {"a": True, "s0": {"a": True, "u1": 7}}},
     {"_id": 1, "a": [[1, 7], [3]]}),
    ("all sections", {"_id": 1, "a": 1, "b": 2, "c": {"d": 1}, "e": 5},
     {"d": {"a": False}, "u": {"b": 3}, "i": {"e": 6, "f": 7}, "sc": {"i": {"x": 1}}},
     {"_id": 1, "b": 3, "c": {"d": 1, "x": 1}, "e": 6, "f": 7}),
]


@pytest.mark.parametrize("name,doc,diff,expected", APPLY_CASES, ids=[c[0] for c in APPLY_CASES])
def test_apply(name, doc, diff, expected):
    out = apply_diff(doc, diff)
    assert out == expected
    assert list(out) == list(expected), "field order must match"


BAD = [
    ("empty diff", {}),
    ("sections out of order", {"u": {"a": 1}, "d": {"b": False}}),
    ("field named twice", {"d": {"a": False}, "u": {"a": 1}}),
    ("field in u and s", {"u": {"a": 1}, "sa": {"u": {"x": 1}}}),
    ("s before i", {"sa": {"u": {"x": 1}}, "i": {"b": 1}}),
    ("unknown section", {"x": {"a": 1}}),
]


@pytest.mark.parametrize("name,diff", BAD, ids=[b[0] for b in BAD])
def test_invalid(name, diff):
    with pytest.raises(CommandError):
        apply_diff({"_id": 1, "a": {"x": 1}, "b": 1}, diff)


ROUND_TRIPS = [
    ({"_id": 1, "a": 1}, {"_id": 1, "a": 2}),
    ({"_id": 1, "a": 1, "b": 2}, {"_id": 1, "b": 2, "a": 1}),          # reorder
    ({"_id": 1, "a": 1, "b": 2}, {"_id": 1, "b": 2}),                  # delete
    ({"_id": 1, "a": {"x": 1, "y": [1, 2, 3]}}, {"_id": 1, "a": {"x": 1, "y": [1, 5]}}),
    ({"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2, 3, 4]}),
    ({"_id": 1, "a": 1}, {"_id": 1, "a": 1.0}),                         # type change
    ({"_id": 1, "a": [{"k": 1}, {"k": 2}]}, {"_id": 1, "a": [{"k": 1}, {"k": 3, "z": 1}]}),
    ({"_id": 1, "a": "long string " * 20, "b": 1}, {"_id": 1, "a": "long string " * 20, "b": 2, "c": 3}),
]


@pytest.mark.parametrize("pre,post", ROUND_TRIPS)
def test_compute_then_apply(pre, post):
    d = compute_diff(pre, post)
    assert d
    out = apply_diff(pre, d)
    assert out == post and list(out) == list(post)
    assert repr(out) == repr(post)


def test_identical_is_empty():
    assert compute_diff({"_id": 1, "a": [1]}, {"_id": 1, "a": [1]}) == {}
