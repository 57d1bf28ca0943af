"""The capped `local.oplog.rs`: pre-encoded entries, strictly increasing `ts`.

Entries are kept as (ts key, BSON bytes) in a list with a moving head, so
eviction from the front is O(1) amortised and a position is a plain sequence
number: seq = offset + list index. Cursors hold sequence numbers; a cursor whose
last returned entry has been evicted has lost its position (CappedPositionLost).
"""
import bisect
import datetime
import struct
import time

import bson
from bson import Timestamp

from .wire import CODEC

_encode = bson.encode
_decode = bson.decode
# The BSON elements every entry ends with: ts (timestamp: the key is its uint64 form,
# increment in the low half), t (int64), v: 2 (int64), wall (date, ms since the epoch).
_TAIL = struct.Struct("<4sQ3sq17sq")
_TS, _T = b"\x11ts\x00", b"\x12t\x00"
_V_WALL = b"\x12v\x00" + struct.pack("<q", 2) + b"\x09wall\x00"
_I32 = struct.Struct("<i")


def ts_key(ts):
    return (ts.time << 32) | ts.inc


def key_ts(k):
    return Timestamp(k >> 32, k & 0xFFFFFFFF)


_EPOCH = datetime.datetime(1970, 1, 1)
_MS = datetime.timedelta(milliseconds=1)
_wall = [0, _EPOCH]  # the last millisecond asked for and its datetime


def wall_now():
    # BSON dates have millisecond precision: truncate so stored == logged. Entries
    # logged in the same millisecond share one (immutable) datetime: building it
    # cost more than applying a small insert.
    ms = time.time_ns() // 1_000_000
    if ms != _wall[0]:
        _wall[0], _wall[1] = ms, _EPOCH + ms * _MS
    return _wall[1]


class Oplog:
    def __init__(self, cap_bytes, cond):
        self.cap_bytes = cap_bytes
        self.cond = cond           # Condition on the global lock; notified on append
        self.keys = []             # ts keys, parallel to raws
        self.raws = []             # encoded entries
        self.head = 0              # index of the oldest live entry
        self.offset = 0            # seq of list index 0
        self.bytes = 0
        self.last_key = 0
        self.term = 1
        self.last_write = time.monotonic()
        self.waiting = 0           # threads in wait_for_append

    def wait_for_append(self, timeout):
        """Waits (releasing the lock held by the caller) until an entry is appended,
        the condition is notified for another reason, or `timeout` seconds pass."""
        self.waiting += 1
        try:
            self.cond.wait(timeout)
        finally:
            self.waiting -= 1

    # ------------------------------------------------------------ writing

    def next_ts(self):
        return key_ts(self._next_key())

    def _next_key(self):
        now = int(time.time())
        last_t, last_i = self.last_key >> 32, self.last_key & 0xFFFFFFFF
        if now > last_t:
            k = (now << 32) | 1
        else:
            k = (last_t << 32) | (last_i + 1)
        self.last_key = k
        return k

    def append(self, fields, extra_front=None, extra_back=None):
        """Log one entry. `fields` holds op/ns/ui/o/o2/...; `extra_front`
        (lsid, txnNumber) goes before them, `extra_back` (prevOpTime) after
        wall, mirroring the field order of real 6.0 entries. Returns the entry's
        ts key (`key_ts` gives the Timestamp; its term is `self.term`)."""
        k = self._next_key()
        if extra_front:
            entry = dict(extra_front)
            entry.update(fields)
        else:
            entry = fields
        # ts/t/v/wall are packed straight into the encoded entry: building a
        # Timestamp, an Int64 and a datetime per entry, and a dict to hold them,
        # cost as much as encoding a small document. Same bytes either way.
        body = _encode(entry, codec_options=CODEC)
        tail = _TAIL.pack(_TS, k, _T, self.term, _V_WALL, time.time_ns() // 1_000_000)
        back = _encode(extra_back, codec_options=CODEC)[4:-1] if extra_back else b""
        self._push(k, b"".join((_I32.pack(len(body) + len(tail) + len(back)), memoryview(body)[4:-1],
                                tail, back, b"\x00")))
        return k

    def _push(self, k, raw):
        self.keys.append(k)
        self.raws.append(raw)
        self.bytes += len(raw)
        self.last_write = time.monotonic()
        while self.bytes > self.cap_bytes and len(self.raws) - self.head > 1:
            self._evict_one()
        # Only awaitData getMores wait for appends; notifying no one cost about a
        # microsecond per entry (the caller holds the lock either way).
        if self.waiting:
            self.cond.notify_all()

    def _evict_one(self):
        self.bytes -= len(self.raws[self.head])
        self.raws[self.head] = None
        self.head += 1
        if self.head > 4096 and self.head * 2 > len(self.raws):
            del self.raws[:self.head]
            del self.keys[:self.head]
            self.offset += self.head
            self.head = 0

    def truncate_keep(self, keep):
        while len(self.raws) - self.head > max(keep, 0):
            self._evict_one()

    def truncate_before(self, ts):
        k = ts_key(ts)
        while self.head < len(self.raws) and self.keys[self.head] < k:
            self._evict_one()

    # ------------------------------------------------------------ reading

    @property
    def first_seq(self):
        return self.offset + self.head

    @property
    def end_seq(self):
        """One past the newest entry."""
        return self.offset + len(self.raws)

    def count(self):
        return len(self.raws) - self.head

    def seq_for_key(self, k, strict=False):
        """First seq whose ts key is >= k (> k when strict)."""
        f = bisect.bisect_right if strict else bisect.bisect_left
        return self.offset + f(self.keys, k, self.head)

    def raw(self, seq):
        return self.raws[seq - self.offset]

    def key(self, seq):
        return self.keys[seq - self.offset]

    def doc(self, seq):
        return _decode(self.raws[seq - self.offset], codec_options=CODEC)

    def last_ts(self):
        return key_ts(self.last_key) if self.last_key else Timestamp(0, 0)

    def latest_entry_ts(self):
        if self.count() == 0:
            return None
        return key_ts(self.keys[-1])

    def stats(self):
        return {"count": self.count(), "size": self.bytes, "maxSize": self.cap_bytes}
