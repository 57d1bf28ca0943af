#!/usr/bin/env python3
"""Writes a mongodump directory whose oplog.bson is large and holds one large
transaction, for the replay memory benchmark (issue #5, `replay-memory.sh`).

  python3 Benchmarks/generate_oplog.py --out DIR --size-mb 1024 --txn-mb 100

DIR/bench/items.bson (+ metadata): --items base documents of about 1 KB, _id 0..n-1.
DIR/bench/events, DIR/bench/ledger: empty collections (metadata only).
DIR/oplog.bson: MongoDB 6.0 entries (ts, t, v, wall, ui as mongod writes them), about
--size-mb MiB in all:
  - plain entries: $v:2 updates of items (a new ~900-byte note and a revision), inserts
    of ~1 KB events, deletes of the oldest live events (the live set stays bounded,
    so the restore target's memory does too);
  - halfway through, one committed transaction of about --txn-mb MiB of inserts into
    ledger, logged as MongoDB logs a large transaction: a chain of applyOps entries of
    at most --link-mb MiB with `partialTxn: true`, the last one with `count`, all with
    the same lsid/txnNumber and linked by prevOpTime (see
    ../shared/fixtures/mongo-tools/common/txn/testdata/oplog_entries.json, "large,
    unprepared"); plain entries of other sessions are interleaved between its links.

Prints JSON: entry counts, bytes, the transaction's links and bytes, and the dbHash
(md5 of the documents' BSON in _id order) and count each collection must have after
the whole oplog is applied to the dump. Output depends only on the arguments.
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import uuid

import bson
from bson import Binary, Int64, Timestamp

WORDS = ("patient reports mild pain after treatment follow up scheduled blood pressure normal "
         "allergy penicillin prescription renewed x-ray results pending call back tomorrow "
         "résultats en attente rappel demain ordonnance renouvelée").split()


def texts(rng, n, length):
    out = []
    for _ in range(n):
        words = []
        size = 0
        while size < length:
            w = rng.choice(WORDS)
            words.append(w)
            size += len(w) + 1
        out.append(" ".join(words)[:length])
    return out


def metadata(name, ui):
    meta = {"options": {}, "indexes": [{"v": {"$numberInt": "2"}, "key": {"_id": {"$numberInt": "1"}}, "name": "_id_"}],
            "uuid": ui.hex(), "collectionName": name, "type": "collection"}
    return json.dumps(meta, separators=(",", ":"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--size-mb", type=float, default=1024, help="oplog.bson size, MiB")
    p.add_argument("--txn-mb", type=float, default=100, help="the transaction's operations, MiB")
    p.add_argument("--link-mb", type=float, default=15, help="largest applyOps entry of the chain, MiB (≤ 16)")
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.link_mb > 16:
        p.error("--link-mb: MongoDB logs entries of at most 16 MiB")

    rng = random.Random(args.seed)
    db = "bench"
    uis = {name: uuid.UUID(int=rng.getrandbits(128), version=4).bytes for name in ("items", "events", "ledger")}
    ui_bin = {name: Binary(u, 4) for name, u in uis.items()}
    notes = texts(rng, 256, 900)
    bodies = texts(rng, 256, 950)
    os.makedirs(os.path.join(args.out, db), exist_ok=True)

    # Base collection and the two empty ones.
    items = {}
    with open(os.path.join(args.out, db, "items.bson"), "wb") as f:
        for i in range(args.items):
            doc = {"_id": i, "sku": "SKU-%06d" % i, "note": notes[i % len(notes)], "rev": 0,
                   "price": rng.randint(100, 100000) / 100}
            items[i] = doc
            f.write(bson.encode(doc))
    for name in ("events", "ledger"):
        open(os.path.join(args.out, db, name + ".bson"), "wb").close()
    for name in ("items", "events", "ledger"):
        with open(os.path.join(args.out, db, name + ".metadata.json"), "w") as f:
            f.write(metadata(name, uis[name]))

    target = int(args.size_mb * 1024 * 1024)
    txn_target = int(args.txn_mb * 1024 * 1024)
    link_limit = int(args.link_mb * 1024 * 1024)
    seconds = 1_700_000_000
    inc = 0
    wall_ms = seconds * 1000
    t = Int64(1)
    v = Int64(2)

    def next_ts():
        nonlocal seconds, inc, wall_ms
        inc += 1
        if inc > 5000:  # about 5,000 entries per second of source time
            seconds += 1
            inc = 1
        wall_ms = seconds * 1000 + inc // 5
        return Timestamp(seconds, inc)

    def wall():
        return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=wall_ms)

    events = {}         # live events: _id -> doc, in insertion (= _id) order
    next_event = 0
    oldest_event = 0
    ledger_md5 = hashlib.md5()
    counts = {"insert": 0, "update": 0, "delete": 0, "txnLinks": 0, "txnOps": 0}
    written = 0
    out = open(os.path.join(args.out, "oplog.bson"), "wb")

    def write(entry):
        nonlocal written
        raw = bson.encode(entry)
        out.write(raw)
        written += len(raw)
        return len(raw)

    def plain():
        nonlocal next_event, oldest_event
        r = rng.random()
        if r < 0.4:
            i = rng.randrange(args.items)
            doc = items[i]
            doc["note"] = notes[rng.randrange(len(notes))]
            doc["rev"] += 1
            # Fields updated in place, as mongod logs a $set of existing fields.
            write({"op": "u", "ns": db + ".items", "ui": ui_bin["items"],
                   "o": {"$v": 2, "diff": {"u": {"note": doc["note"], "rev": doc["rev"]}}},
                   "o2": {"_id": i}, "ts": next_ts(), "t": t, "v": v, "wall": wall()})
            counts["update"] += 1
        elif r < 0.7 or oldest_event == next_event:
            doc = {"_id": next_event, "kind": rng.choice(["visit", "call", "lab", "billing"]),
                   "at": wall(), "body": bodies[rng.randrange(len(bodies))], "n": Int64(next_event)}
            events[next_event] = doc
            next_event += 1
            write({"op": "i", "ns": db + ".events", "ui": ui_bin["events"], "o": doc, "o2": {"_id": doc["_id"]},
                   "ts": next_ts(), "t": t, "v": v, "wall": wall()})
            counts["insert"] += 1
        else:
            del events[oldest_event]
            write({"op": "d", "ns": db + ".events", "ui": ui_bin["events"], "o": {"_id": oldest_event},
                   "ts": next_ts(), "t": t, "v": v, "wall": wall()})
            oldest_event += 1
            counts["delete"] += 1

    # Plain entries up to half of what the transaction leaves, then the transaction with
    # plain entries between its links, then plain entries to the size.
    while written < (target - txn_target) // 2:
        plain()
    lsid = {"id": Binary(uuid.UUID(int=rng.getrandbits(128), version=4).bytes, 4),
            "uid": Binary(hashlib.sha256(b"").digest(), 0)}
    txn_number = Int64(7)
    prev = {"ts": Timestamp(0, 0), "t": Int64(-1)}
    ledger_id = 0
    txn_bytes = 0
    total_ops = 0
    while txn_bytes < txn_target:
        ops = []
        link_bytes = 200
        while link_bytes < link_limit - 2048 and txn_bytes < txn_target:
            doc = {"_id": ledger_id, "account": "ACC-%05d" % rng.randrange(10000),
                   "amount": rng.randint(-500000, 500000) / 100, "memo": bodies[rng.randrange(len(bodies))]}
            ledger_md5.update(bson.encode(doc))
            ledger_id += 1
            op = {"op": "i", "ns": db + ".ledger", "o": doc, "ui": ui_bin["ledger"]}
            size = len(bson.encode(op)) + 8
            ops.append(op)
            link_bytes += size
            txn_bytes += size
        total_ops += len(ops)
        last = txn_bytes >= txn_target
        o = {"applyOps": ops, "count": Int64(total_ops)} if last else {"applyOps": ops, "partialTxn": True}
        ts = next_ts()
        write({"lsid": lsid, "txnNumber": txn_number, "op": "c", "ns": "admin.$cmd", "o": o,
               "ts": ts, "t": t, "v": v, "wall": wall(), "prevOpTime": prev})
        prev = {"ts": ts, "t": t}
        counts["txnLinks"] += 1
        if not last:
            for _ in range(2000):
                plain()
    counts["txnOps"] = total_ops
    while written < target:
        plain()
    out.close()

    def digest(docs):
        h = hashlib.md5()
        for k in sorted(docs):
            h.update(bson.encode(docs[k]))
        return h.hexdigest()

    print(json.dumps({
        "oplogBytes": written, "entries": counts["insert"] + counts["update"] + counts["delete"] + counts["txnLinks"],
        "counts": counts, "transactionBytes": txn_bytes,
        "expected": {
            "items": {"count": len(items), "md5": digest(items)},
            "events": {"count": len(events), "md5": digest(events)},
            "ledger": {"count": ledger_id, "md5": ledger_md5.hexdigest()},
        },
    }, indent=1))


if __name__ == "__main__":
    main()
