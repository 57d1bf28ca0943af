"""Server-side cursors: materialised result lists and live oplog scans."""
import random

import bson
from bson import Int64
from bson.raw_bson import RawBSONDocument

from .errors import CommandError
from .query import matches
from .wire import CODEC

MAX_BATCH_BYTES = 16 * 1024 * 1024
FIRST_BATCH_DOCS = 101


def _raw(b):
    return RawBSONDocument(b)


class ListCursor:
    """Results computed up front (documents, encoded lazily per batch)."""
    tailable = False

    def __init__(self, ns, docs, projector=None):
        self.id = 0
        self.ns = ns
        self.docs = docs
        self.pos = 0
        self.projector = projector
        self.killed = None

    def batch(self, n, max_bytes=MAX_BATCH_BYTES):
        out, size = [], 0
        docs, proj = self.docs, self.projector
        while self.pos < len(docs) and (n <= 0 or len(out) < n):
            d = docs[self.pos]
            b = d if isinstance(d, bytes) else bson.encode(proj(d) if proj else d, codec_options=CODEC)
            if out and size + len(b) > max_bytes:
                break
            out.append(_raw(b))
            size += len(b)
            self.pos += 1
        return out

    def exhausted(self):
        return self.pos >= len(self.docs)


class OplogCursor:
    """A scan of local.oplog.rs by sequence number; tailable or not."""

    def __init__(self, oplog, ns, start_seq, end_seq, rest_filter, tailable, await_data, limit=0):
        self.id = 0
        self.oplog = oplog
        self.ns = ns
        self.seq = start_seq
        self.end_seq = end_seq      # None: open-ended (tailable, follows appends)
        self.rest = rest_filter     # non-ts part of the filter, or None
        self.tailable = tailable
        self.await_data = await_data
        self.limit = limit
        self.returned = 0
        self.last_seq = None        # last returned entry; lost if evicted
        self.killed = None          # (code, codeName, errmsg) once interrupted

    def check_position(self):
        op = self.oplog
        if self.last_seq is not None and self.last_seq < op.first_seq:
            raise CommandError(136, "CappedPositionLost",
                               "CollectionScan died due to position in capped collection being deleted")
        if self.seq < op.first_seq:
            self.seq = op.first_seq

    def batch(self, n, max_bytes=MAX_BATCH_BYTES):
        self.check_position()
        op = self.oplog
        end = op.end_seq if self.end_seq is None else min(self.end_seq, op.end_seq)
        raws, base = op.raws, op.offset
        out, size = [], 0
        seq, rest = self.seq, self.rest
        lim = self.limit - self.returned if self.limit else 0
        while seq < end and (n <= 0 or len(out) < n) and (not lim or len(out) < lim):
            b = raws[seq - base]
            if rest is not None and not matches(bson.decode(b, codec_options=CODEC), rest):
                seq += 1
                continue
            if out and size + len(b) > max_bytes:
                break
            out.append(_raw(b))
            size += len(b)
            self.last_seq = seq
            seq += 1
        self.seq = seq
        self.returned += len(out)
        return out

    def exhausted(self):
        if self.tailable:
            return False
        if self.limit and self.returned >= self.limit:
            return True
        end = self.oplog.end_seq if self.end_seq is None else min(self.end_seq, self.oplog.end_seq)
        return self.seq >= end


class CursorManager:
    def __init__(self):
        self.cursors = {}

    def register(self, cur):
        while True:
            cid = random.getrandbits(62) + 1
            if cid not in self.cursors:
                break
        cur.id = cid
        self.cursors[cid] = cur
        return cid

    def get(self, cid):
        return self.cursors.get(int(cid))

    def remove(self, cid):
        return self.cursors.pop(int(cid), None)

    def kill_ns_cursors(self, ns, code, code_name, msg):
        """Kill the collection cursors on `ns`, as mongod does when it drops or renames
        the collection: their next getMore fails with `code`."""
        for cur in self.cursors.values():
            if isinstance(cur, ListCursor) and cur.ns == ns:
                cur.killed = (code, code_name, msg)

    def kill_oplog_cursors(self, code, code_name, msg):
        for cur in self.cursors.values():
            if isinstance(cur, OplogCursor):
                cur.killed = (code, code_name, msg)


def cursor_reply(cur_id, ns, batch, first):
    return {"cursor": {"firstBatch" if first else "nextBatch": batch, "id": Int64(cur_id), "ns": ns},
            "ok": 1.0}
