"""Query matching, sorting, projection and update operators (the common subset)."""
import copy
import re

from bson import Int64, Regex, Decimal128

from .errors import CommandError, bad_value, failed_to_parse
from .ordering import sortkey, same, R_NULL

_MISSING = object()


# ---------------------------------------------------------------- paths

def get_values(doc, path):
    """Values reachable at dotted `path`, traversing arrays like mongod does.
    Returns a list; empty when the path is missing."""
    parts = path.split(".")
    cur = [doc]
    for i, part in enumerate(parts):
        nxt = []
        for v in cur:
            if isinstance(v, dict):
                if part in v:
                    nxt.append(v[part])
            elif isinstance(v, list):
                if part.isdigit() and int(part) < len(v):
                    nxt.append(v[int(part)])
                for el in v:
                    if isinstance(el, dict) and part in el:
                        nxt.append(el[part])
        cur = nxt
        if not cur:
            break
    return cur


def get_path(doc, path, default=_MISSING):
    """Single value at dotted path (no array fan-out), or default."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return default
    return cur


# ---------------------------------------------------------------- matching

def _expand(values):
    # A comparison matches an array field if it matches the array itself or any element.
    out = []
    for v in values:
        out.append(v)
        if isinstance(v, list):
            out.extend(v)
    return out


def _regex_match(pattern, v):
    if not isinstance(v, str):
        return False
    if isinstance(pattern, Regex):
        pattern = pattern.try_compile()
    elif isinstance(pattern, str):
        pattern = re.compile(pattern)
    return pattern.search(v) is not None


def _eq(values, target):
    tk = sortkey(target)
    if tk[0] == R_NULL:
        # {f: null} matches missing fields and explicit nulls.
        return not values or any(v is None for v in _expand(values))
    if isinstance(target, (Regex, re.Pattern)):
        return any(_regex_match(target, v) for v in _expand(values))
    return any(sortkey(v) == tk for v in _expand(values))


def _cmp(values, target, op):
    tk = sortkey(target)
    for v in _expand(values):
        vk = sortkey(v)
        if vk[0] != tk[0]:
            continue  # type bracketing: only same canonical type compares
        if op == "$gt" and vk > tk or op == "$gte" and vk >= tk or \
                op == "$lt" and vk < tk or op == "$lte" and vk <= tk:
            return True
    return False


def _op_match(values, op, arg, doc, path):
    if op == "$eq":
        return _eq(values, arg)
    if op == "$ne":
        return not _eq(values, arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _cmp(values, arg, op)
    if op == "$in":
        if not isinstance(arg, list):
            raise bad_value("$in needs an array")
        return any(_eq(values, a) for a in arg)
    if op == "$nin":
        if not isinstance(arg, list):
            raise bad_value("$nin needs an array")
        return not any(_eq(values, a) for a in arg)
    if op == "$exists":
        return bool(values) == bool(arg)
    if op == "$not":
        return not _field_match(values, arg, doc, path)
    if op == "$regex":
        return any(_regex_match(arg, v) for v in _expand(values))
    if op == "$options":
        return True
    if op == "$size":
        return any(isinstance(v, list) and len(v) == arg for v in values)
    if op == "$all":
        return all(_eq(values, a) for a in arg)
    if op == "$elemMatch":
        for v in values:
            if isinstance(v, list):
                for el in v:
                    if isinstance(el, dict) and matches(el, arg):
                        return True
                    if not isinstance(el, dict) and _field_match([el], arg, doc, path):
                        return True
        return False
    if op == "$type":
        names = arg if isinstance(arg, list) else [arg]
        return any(_type_is(v, n) for v in _expand(values) for n in names)
    if op == "$mod":
        d, r = arg
        return any(isinstance(v, (int, float)) and not isinstance(v, bool) and int(v) % d == r
                   for v in _expand(values))
    raise CommandError(2, "BadValue", "unknown operator: " + op)


_TYPE_NAMES = {"double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "objectId": 7,
               "bool": 8, "date": 9, "null": 10, "regex": 11, "int": 16, "timestamp": 17,
               "long": 18, "decimal": 19}


def _type_is(v, name):
    import bson, datetime
    code = _TYPE_NAMES.get(name, name)
    if name == "number":
        return isinstance(v, (int, float, Decimal128)) and not isinstance(v, bool)
    t = {1: float, 2: str, 3: dict, 4: list, 7: bson.ObjectId, 8: bool, 9: datetime.datetime,
         17: bson.Timestamp, 18: Int64, 19: Decimal128}.get(code)
    if code == 10:
        return v is None
    if code == 16:
        return type(v) is int
    if code == 5:
        return isinstance(v, bytes)
    return t is not None and type(v) is t


def _is_operator_doc(v):
    return isinstance(v, dict) and v and next(iter(v)).startswith("$")


def _field_match(values, cond, doc, path):
    if _is_operator_doc(cond):
        return all(_op_match(values, op, arg, doc, path) for op, arg in cond.items())
    return _eq(values, cond)


def matches(doc, flt):
    """True when `doc` matches query `flt`."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches(doc, f) for f in cond):
                return False
        elif key == "$or":
            if not any(matches(doc, f) for f in cond):
                return False
        elif key == "$nor":
            if any(matches(doc, f) for f in cond):
                return False
        elif key in ("$comment", "$where"):
            continue
        elif key == "$expr":
            raise CommandError(2, "BadValue", "$expr is not supported by the simulator")
        elif key.startswith("$"):
            raise CommandError(2, "BadValue", "unknown top level operator: " + key)
        else:
            if not _field_match(get_values(doc, key), cond, doc, key):
                return False
    return True


# ---------------------------------------------------------------- sorting

def sort_docs(docs, spec):
    """Sort documents by a sort spec {field: 1|-1, ...} (stable, multi-key)."""
    for field, direction in reversed(list(spec.items())):
        if isinstance(direction, dict):
            continue  # {$meta: ...}: ignored
        desc = direction < 0

        def key(d, field=field, desc=desc):
            vals = get_values(d, field)
            if not vals:
                return (R_NULL,)
            v = vals[0] if len(vals) == 1 else None
            if len(vals) == 1 and not isinstance(v, list):
                return sortkey(v)
            flat = []
            for x in vals:
                flat.extend(x if isinstance(x, list) else [x])
            if not flat:
                return (R_NULL - 1,)  # empty array sorts before null
            keys = [sortkey(x) for x in flat]
            return max(keys) if desc else min(keys)
        docs.sort(key=key, reverse=desc)
    return docs


# ---------------------------------------------------------------- projection

def project(doc, proj):
    if not proj:
        return doc
    include = None
    for k, v in proj.items():
        if k == "_id":
            continue
        if isinstance(v, dict):
            continue  # $slice/$elemMatch etc. not supported: ignored
        include = bool(v) if not isinstance(v, str) else True
        break
    id_on = bool(proj.get("_id", 1))
    if include is None:
        include = False if not id_on else None
    if include:
        out = {}
        if id_on and "_id" in doc:
            out["_id"] = doc["_id"]
        for path, v in proj.items():
            if path == "_id" or not v:
                continue
            _copy_path(doc, out, path.split("."))
        return out
    out = copy.deepcopy(doc)
    for path, v in proj.items():
        if path == "_id":
            if not id_on:
                out.pop("_id", None)
            continue
        if not v:
            _unset(out, path.split("."))
    return out


def _copy_path(src, dst, parts):
    if not isinstance(src, dict) or parts[0] not in src:
        return
    v = src[parts[0]]
    if len(parts) == 1:
        dst[parts[0]] = v
    elif isinstance(v, dict):
        sub = dst.setdefault(parts[0], {})
        _copy_path(v, sub, parts[1:])
    elif isinstance(v, list):
        arr = dst.setdefault(parts[0], [])
        if not arr:
            for el in v:
                if isinstance(el, dict):
                    d = {}
                    _copy_path(el, d, parts[1:])
                    arr.append(d)


def _unset(doc, parts):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            return
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)
    elif isinstance(cur, list):
        for el in cur:
            if isinstance(el, dict):
                el.pop(parts[-1], None)


# ---------------------------------------------------------------- updates

UPDATE_OPS = ("$set", "$unset", "$inc", "$mul", "$push", "$pull", "$addToSet", "$rename",
              "$setOnInsert", "$min", "$max", "$currentDate", "$pop", "$pullAll")


def is_operator_update(u):
    return isinstance(u, dict) and u and next(iter(u)).startswith("$")


def _container(doc, parts, create):
    """The dict/list holding the last path part, creating dicts when asked."""
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            if not p.isdigit():
                raise CommandError(28, "PathNotViable", "Cannot create field '%s' in array" % p)
            i = int(p)
            if i >= len(cur):
                if not create:
                    return None
                cur.extend([None] * (i + 1 - len(cur)))
            if cur[i] is None and create:
                cur[i] = {}
            cur = cur[i]
        elif isinstance(cur, dict):
            if p not in cur:
                if not create:
                    return None
                cur[p] = {}
            cur = cur[p]
        else:
            if not create:
                return None
            raise CommandError(28, "PathNotViable", "Cannot create field '%s' in element %r" % (p, cur))
    return cur


def _get(c, k):
    if isinstance(c, dict):
        return c.get(k, _MISSING)
    if isinstance(c, list) and k.isdigit() and int(k) < len(c):
        return c[int(k)]
    return _MISSING


def _put(c, k, v):
    if isinstance(c, dict):
        c[k] = v
    elif isinstance(c, list):
        if not k.isdigit():
            raise CommandError(28, "PathNotViable", "Cannot create field '%s' in array" % k)
        i = int(k)
        if i >= len(c):
            c.extend([None] * (i + 1 - len(c)))
        c[i] = v
    else:
        raise CommandError(28, "PathNotViable", "Cannot create field '%s'" % k)


def _num_add(a, b, mul=False):
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        x = a.to_decimal() if isinstance(a, Decimal128) else a
        y = b.to_decimal() if isinstance(b, Decimal128) else b
        return Decimal128(x * y if mul else x + y)
    r = a * b if mul else a + b
    if isinstance(a, float) or isinstance(b, float):
        return float(r)
    if isinstance(a, Int64) or isinstance(b, Int64) or not (-2**31 <= r < 2**31):
        return Int64(r)
    return int(r)


def _is_num(v):
    return isinstance(v, (int, float, Decimal128)) and not isinstance(v, bool)


def apply_update(doc, update, is_insert=False, now=None):
    """Apply an operator update to a copy of `doc`; returns the new document.
    mongod applies paths in field-name order (its update tree is a std::map), so
    new fields appear sorted; we do the same."""
    new = copy.deepcopy(doc)
    import datetime
    for op, args in update.items():
        if op not in UPDATE_OPS:
            raise failed_to_parse("Unknown modifier: %s. Expected a valid update modifier or "
                                  "pipeline-style update specified as an array" % op)
        if not isinstance(args, dict):
            raise failed_to_parse("Modifiers operate on fields but we found type %s instead"
                                  % type(args).__name__)
    ops = []
    for op, args in update.items():
        if op == "$setOnInsert" and not is_insert:
            continue
        for path, arg in args.items():
            if path == "_id" and op not in ("$setOnInsert",) and not is_insert:
                if op == "$set" and "_id" in doc and same(doc["_id"], arg):
                    continue
                raise CommandError(66, "ImmutableField",
                                   "Performing an update on the path '_id' would modify the immutable field '_id'")
            ops.append((path, op, arg))
    ops.sort(key=lambda t: t[0].split("."))
    for path, op, arg in ops:
        parts = path.split(".")
        if op in ("$set", "$setOnInsert"):
            _put(_container(new, parts, True), parts[-1], copy.deepcopy(arg))
        elif op == "$unset":
            c = _container(new, parts, False)
            if isinstance(c, dict):
                c.pop(parts[-1], None)
            elif isinstance(c, list) and parts[-1].isdigit() and int(parts[-1]) < len(c):
                c[int(parts[-1])] = None
        elif op in ("$inc", "$mul"):
            if not _is_num(arg):
                raise CommandError(14, "TypeMismatch", "Cannot %s with non-numeric argument" % op[1:])
            c = _container(new, parts, True)
            cur = _get(c, parts[-1])
            if cur is _MISSING:
                _put(c, parts[-1], arg if op == "$inc" else _num_add(arg, 0, True))
            elif not _is_num(cur):
                raise CommandError(14, "TypeMismatch",
                                   "Cannot apply %s to a value of non-numeric type" % op)
            else:
                _put(c, parts[-1], _num_add(cur, arg, op == "$mul"))
        elif op in ("$min", "$max"):
            c = _container(new, parts, True)
            cur = _get(c, parts[-1])
            if cur is _MISSING or (sortkey(arg) < sortkey(cur) if op == "$min" else sortkey(arg) > sortkey(cur)):
                _put(c, parts[-1], arg)
        elif op == "$currentDate":
            now = now or datetime.datetime.utcnow().replace(microsecond=datetime.datetime.utcnow().microsecond // 1000 * 1000)
            _put(_container(new, parts, True), parts[-1], now)
        elif op in ("$push", "$addToSet"):
            c = _container(new, parts, True)
            cur = _get(c, parts[-1])
            if cur is _MISSING:
                cur = []
                _put(c, parts[-1], cur)
            elif not isinstance(cur, list):
                raise CommandError(2, "BadValue", "The field '%s' must be an array" % path)
            each = arg["$each"] if isinstance(arg, dict) and "$each" in arg else [arg]
            for v in each:
                if op == "$addToSet" and any(sortkey(x) == sortkey(v) for x in cur):
                    continue
                cur.append(copy.deepcopy(v))
            if isinstance(arg, dict) and "$slice" in arg:
                s = arg["$slice"]
                cur[:] = cur[:s] if s >= 0 else cur[s:]
        elif op in ("$pull", "$pullAll"):
            c = _container(new, parts, False)
            cur = _get(c, parts[-1]) if c is not None else _MISSING
            if isinstance(cur, list):
                if op == "$pullAll":
                    keys = {sortkey(x) for x in arg}
                    cur[:] = [x for x in cur if sortkey(x) not in keys]
                elif isinstance(arg, dict) and not _is_operator_doc(arg):
                    cur[:] = [x for x in cur if not (isinstance(x, dict) and matches(x, arg))]
                elif _is_operator_doc(arg):
                    cur[:] = [x for x in cur if not _field_match([x], arg, None, "")]
                else:
                    cur[:] = [x for x in cur if sortkey(x) != sortkey(arg)]
        elif op == "$pop":
            c = _container(new, parts, False)
            cur = _get(c, parts[-1]) if c is not None else _MISSING
            if isinstance(cur, list) and cur:
                cur.pop(0 if arg < 0 else -1)
        elif op == "$rename":
            c = _container(new, parts, False)
            cur = _get(c, parts[-1]) if c is not None else _MISSING
            if cur is not _MISSING:
                del c[parts[-1]]
                tparts = arg.split(".")
                _put(_container(new, tparts, True), tparts[-1], cur)
    return new


def upsert_seed(flt):
    """The document an upsert starts from: the equality fields of the filter."""
    doc = {}
    for k, v in flt.items():
        if k.startswith("$"):
            if k == "$and":
                for sub in v:
                    doc.update(upsert_seed(sub))
            continue
        if isinstance(v, dict) and _is_operator_doc(v):
            if "$eq" in v:
                v = v["$eq"]
            else:
                continue
        parts = k.split(".")
        _put(_container(doc, parts, True), parts[-1], copy.deepcopy(v))
    return doc
