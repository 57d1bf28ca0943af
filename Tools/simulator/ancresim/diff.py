"""`$v:2` update diffs: computing them like mongod 5.0+ logs them, and applying
them like mongod's applier (ARCHITECTURE.md section 7;
mongo/db/update/document_diff_calculator.cpp / document_diff_applier.cpp).

Diff shape: {d: {f: false}, u: {f: v}, i: {f: v}, s<f>: subdiff}; array diffs
{a: true, l: n, u<idx>: v, s<idx>: subdiff}.
"""
import bson

from .errors import CommandError
from .ordering import same

_SIZE = bson.encode


def _size(v):
    return len(_SIZE({"": v}))


# ---------------------------------------------------------------- computing

def compute_diff(pre, post, size_limit=False):
    """Diff turning document `pre` into `post`; {} when they are identical.
    Modifier updates always log a diff in mongod (its V2 log builder); with
    `size_limit` (pipeline-style updates) None is returned when the diff is
    larger than `post`, meaning "log a full replacement"."""
    d = _doc_diff(pre, post)
    if d and size_limit and len(_SIZE(d)) > len(_SIZE(post)):
        return None
    return d


def _doc_diff(pre, post):
    dels, upds, ins, subs = {}, {}, {}, {}
    pre_items, post_items = list(pre.items()), list(post.items())
    n = 0
    # Walk the common prefix of same-named fields.
    while n < len(pre_items) and n < len(post_items) and pre_items[n][0] == post_items[n][0]:
        name, a = pre_items[n]
        b = post_items[n][1]
        _sub_helper(name, a, b, upds, subs)
        n += 1
    # After the first mismatch: fields of pre not in post are deleted; all
    # remaining post fields are (re)inserted, which also handles moves.
    rest_post = {k for k, _ in post_items[n:]}
    for k, _ in pre_items[n:]:
        if k not in rest_post:
            dels[k] = False
    for k, v in post_items[n:]:
        ins[k] = v
    out = {}
    if dels:
        out["d"] = dels
    if upds:
        out["u"] = upds
    if ins:
        out["i"] = ins
    for k, v in subs.items():
        out["s" + k] = v
    return out


def _sub_helper(name, a, b, upds, subs):
    if same(a, b):
        return
    if type(a) is dict and type(b) is dict:
        # Like mongod's V2 log builder: nested changes stay nested sub-diffs.
        sd = _doc_diff(a, b)
        if sd:
            subs[name] = sd
        else:
            upds[name] = b
    elif type(a) is list and type(b) is list:
        ad = _array_diff(a, b)
        if ad is not None:
            subs[name] = ad
        else:
            upds[name] = b
    else:
        upds[name] = b


def _array_diff(a, b):
    mods = []
    n = 0
    while n < len(a) and n < len(b):
        x, y = a[n], b[n]
        if not same(x, y):
            u, s = {}, {}
            _sub_helper(str(n), x, y, u, s)
            if u:
                mods.append(("u" + str(n), u[str(n)]))
            else:
                mods.append(("s" + str(n), s[str(n)]))
        n += 1
    while n < len(b):
        mods.append(("u" + str(n), b[n]))
        n += 1
    out = {"a": True}
    if len(a) > len(b):
        out["l"] = len(b)
    out.update(mods)
    return out


# ---------------------------------------------------------------- applying

def _bad(msg):
    return CommandError(4770503, "Location4770503", "invalid $v:2 diff: " + msg)


def _sections(diff):
    """Validate section order d, u, i, s*; return (d, u, i, [(field, sub)])."""
    if not isinstance(diff, dict) or not diff:
        raise _bad("empty diff")
    order = {"d": 0, "u": 1, "i": 2}
    last = -1
    d, u, i, subs = {}, {}, {}, []
    seen = set()
    for key, val in diff.items():
        if key in order:
            rank = order[key]
            if not isinstance(val, dict):
                raise _bad("section %s is not an object" % key)
        elif key.startswith("s") and len(key) > 1:
            rank = 3
        else:
            raise _bad("unknown section %r" % key)
        if rank < last or (rank == last and rank < 3):
            raise _bad("sections out of order")
        last = rank
        names = val.keys() if rank < 3 else [key[1:]]
        for name in names:
            if name in seen:
                raise _bad("field %r named twice" % name)
            seen.add(name)
        if rank == 0:
            d = val
        elif rank == 1:
            u = val
        elif rank == 2:
            i = val
        else:
            if not isinstance(val, dict):
                raise _bad("sub-diff for %r is not an object" % key[1:])
            subs.append((key[1:], val))
    return d, u, i, subs


def apply_diff(doc, diff):
    """Return a new document: `doc` with the document diff applied."""
    d, u, i, subs = _sections(diff)
    subs = dict(subs)
    out = {}
    for name, val in doc.items():
        if name in d or name in i:
            continue  # deleted, or moved to the end by 'i'
        if name in u:
            out[name] = u[name]
        elif name in subs:
            out[name] = _apply_sub(val, subs[name])
        else:
            out[name] = val
    for name, val in u.items():
        if name not in doc:
            out[name] = val
    for name, val in i.items():
        out[name] = val
    return out


def _apply_sub(val, sub):
    is_array_diff = sub.get("a") is True
    if is_array_diff:
        if type(val) is not list:
            return None
        return _apply_array(val, sub)
    if not isinstance(val, dict):
        return None
    return apply_diff(val, sub)


def _apply_array(arr, diff):
    arr = list(arr)
    first = True
    for key, val in diff.items():
        if first:
            first = False
            if key != "a":
                raise _bad("array diff must start with a:true")
            continue
        if key == "l":
            if not isinstance(val, int) or val < 0:
                raise _bad("bad array length")
            if len(arr) > val:
                del arr[val:]
            else:
                arr.extend([None] * (val - len(arr)))
            continue
        kind, idx = key[:1], key[1:]
        if kind not in ("u", "s") or not idx.isdigit():
            raise _bad("bad array diff field %r" % key)
        idx = int(idx)
        if idx >= len(arr):
            arr.extend([None] * (idx + 1 - len(arr)))
            if kind == "s":
                continue  # sub-diff past the end gives null
        if kind == "u":
            arr[idx] = val
        else:
            if not isinstance(val, dict):
                raise _bad("array sub-diff is not an object")
            arr[idx] = _apply_sub(arr[idx], val)
    return arr
