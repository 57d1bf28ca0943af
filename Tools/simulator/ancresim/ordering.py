"""MongoDB's canonical BSON ordering, as Python sort keys.

`sortkey(v)` maps a decoded BSON value to a tuple that compares the way mongod
compares values (canonical type rank first, then a type-specific value). The
tuple is also hashable and equal for values mongod considers equal (1 == 1.0 ==
Int64(1)), so it doubles as the `_id` key of a collection.
"""
import datetime
import math
import re

from bson import (Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey,
                  ObjectId, Regex, Timestamp)
from bson.datetime_ms import DatetimeMS

# Canonical type ranks (mongo/bson/bsontypes.h canonicalizeBSONType).
R_MINKEY, R_NULL, R_NUMBER, R_STRING, R_OBJECT, R_ARRAY = -1, 5, 10, 15, 20, 25
R_BINARY, R_OID, R_BOOL, R_DATE, R_TIMESTAMP, R_REGEX = 30, 35, 40, 45, 47, 50
R_DBPOINTER, R_CODE, R_CODEWS, R_MAXKEY = 55, 60, 65, 127

_EPOCH = datetime.datetime(1970, 1, 1)
_NAN = (R_NUMBER, 0, 0)  # NaN sorts below every other number


def date_ms(v):
    """Milliseconds since the epoch for datetime / DatetimeMS."""
    if isinstance(v, DatetimeMS):
        return int(v)
    if v.tzinfo is not None:
        v = v.replace(tzinfo=None) - v.utcoffset()
    d = v - _EPOCH
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


def sortkey(v):
    # Order of checks matters: bool is an int, Code is a str, Binary is bytes.
    t = type(v)
    if t is str:
        return (R_STRING, v)
    if t is int or t is Int64:
        return (R_NUMBER, 1, v)
    if t is float:
        return _NAN if v != v else (R_NUMBER, 1, v)
    if t is ObjectId:
        return (R_OID, v.binary)
    if t is dict or isinstance(v, dict):
        return (R_OBJECT, tuple(_elem(k, x) for k, x in v.items()))
    if t is list:
        return (R_ARRAY, tuple(sortkey(x) for x in v))
    if v is None:
        return (R_NULL,)
    if t is bool:
        return (R_BOOL, v)
    if t is datetime.datetime or t is DatetimeMS:
        return (R_DATE, date_ms(v))
    if t is Timestamp:
        return (R_TIMESTAMP, v.time, v.inc)
    if t is Decimal128:
        d = v.to_decimal()
        if d.is_nan():
            return _NAN
        if d.is_infinite():
            return (R_NUMBER, 1, math.inf if d > 0 else -math.inf)
        return (R_NUMBER, 1, d)
    if isinstance(v, bytes):  # Binary or plain bytes (subtype 0)
        sub = v.subtype if isinstance(v, Binary) else 0
        return (R_BINARY, len(v), sub, bytes(v))
    if isinstance(v, Code):
        if v.scope is not None:
            return (R_CODEWS, str(v), sortkey(dict(v.scope)))
        return (R_CODE, str(v))
    if isinstance(v, (Regex, re.Pattern)):
        if isinstance(v, re.Pattern):
            v = Regex.from_native(v)
        pat = v.pattern if isinstance(v.pattern, str) else v.pattern.decode()
        return (R_REGEX, pat, int(v.flags) if not isinstance(v.flags, str) else v.flags)
    if isinstance(v, MinKey):
        return (R_MINKEY,)
    if isinstance(v, MaxKey):
        return (R_MAXKEY,)
    if isinstance(v, DBRef):
        return sortkey(v.as_doc())
    if isinstance(v, int):
        return (R_NUMBER, 1, int(v))
    if isinstance(v, str):
        return (R_STRING, str(v))
    if isinstance(v, (list, tuple)):
        return (R_ARRAY, tuple(sortkey(x) for x in v))
    import uuid
    if isinstance(v, uuid.UUID):
        return (R_BINARY, 16, 4, v.bytes)
    raise TypeError("unsupported BSON value %r" % (v,))


def _elem(name, x):
    # BSONObj::woCompare: element type rank, then field name, then value.
    k = sortkey(x)
    return (k[0], name, k)


def compare(a, b):
    """-1/0/1 in canonical BSON order."""
    ka, kb = sortkey(a), sortkey(b)
    return (ka > kb) - (ka < kb)


def same(a, b):
    """Binary equality of two BSON values: same type, same value, same field order."""
    if a is b:
        # An update shares the fields it leaves alone with the old document.
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if ka != kb or va is not vb and not same(va, vb):
                return False
        return True
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, Binary):
        return a.subtype == b.subtype and bytes(a) == bytes(b)
    return a == b
