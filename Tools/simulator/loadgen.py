#!/usr/bin/env python3
"""Clinic-like load generator with a restore oracle.

Drives a MongoDB-compatible server (the simulator, or a real mongod) through
pymongo with inserts, scattered and skewed updates, replacements, deletes,
multi-document transactions (committed, aborted, large) and occasional DDL.
Every --oracle-every seconds it pauses, reads the newest oplog `ts` and the
per-collection dbHash of every database it uses, and appends one JSON line:

  {"ts": [seconds, increment], "hashes": {"db": {"coll": md5}}, "counts": {"db": {"coll": n}}}

A restore to that ts is correct when the target's dbHash equals `hashes`.
"""
import argparse
import datetime
import json
import random
import sys
import time

import pymongo
from bson import Binary, Decimal128, Int64, ObjectId
from pymongo.errors import PyMongoError

FIRST = ["Ana", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Gül", "Hiro", "Inès", "José", "Kofi", "Léa"]
LAST = ["Martin", "Bernard", "Dubois", "Nguyen", "Okafor", "Rossi", "Schmidt", "Tanaka", "Yılmaz"]
WORDS = ("patient reports mild pain after treatment follow up scheduled blood pressure normal "
         "allergy penicillin prescription renewed x-ray results pending call back tomorrow").split()
BASE_COLLS = ["patients", "appointments", "messages"]


class Load:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.client = pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=10000)
        self.dbs = ["clinic%d" % i for i in range(args.dbs)]
        self.colls = {db: list(BASE_COLLS[:args.collections]) +
                      ["extra%d" % i for i in range(max(0, args.collections - len(BASE_COLLS)))]
                      for db in self.dbs}
        self.ids = {}        # (db, coll) -> list of live _ids
        self.seq = 0
        self.stats = {}
        self.ddl_n = 0

    # ------------------------------------------------------------ documents

    def text(self, n):
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def new_id(self, kind):
        self.seq += 1
        r = self.rng.random()
        if r < 0.7:
            return ObjectId()
        if r < 0.85:
            return self.seq                        # int32
        if r < 0.95:
            return "%s-%06d" % (kind[:3], self.seq)  # string
        return {"site": self.rng.randint(1, 3), "n": self.seq}  # compound

    def make_doc(self, coll):
        r = self.rng
        now = datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=r.randint(0, 10**8),
                                                                  milliseconds=r.randint(0, 999))
        if coll.startswith("patients"):
            d = {"name": {"first": r.choice(FIRST), "last": r.choice(LAST)},
                 "born": now - datetime.timedelta(days=r.randint(0, 30000)),
                 "ssn": "%013d" % r.randint(0, 10**13),
                 "weightKg": round(r.uniform(3, 150), 1),
                 "visits": r.randint(0, 50),
                 "balance": Decimal128("%d.%02d" % (r.randint(0, 9999), r.randint(0, 99))),
                 "allergies": r.sample(["penicillin", "latex", "nuts", "pollen"], r.randint(0, 3)),
                 "contacts": [{"kind": "phone", "v": "+33 6 %08d" % r.randint(0, 10**8)}],
                 "active": r.random() < 0.9}
            if r.random() < 0.3:
                d["notes"] = self.text(r.randint(5, 60))
            if r.random() < 0.1:
                d["photo"] = Binary(bytes(r.getrandbits(8) for _ in range(r.randint(16, 256))), 0)
        elif coll.startswith("appointments"):
            d = {"patient": ObjectId(), "at": now, "durationMin": r.choice([15, 30, 45, 60]),
                 "room": r.randint(1, 20), "status": r.choice(["booked", "done", "cancelled"]),
                 "fee": Int64(r.randint(2000, 20000)), "codes": [r.randint(100, 999) for _ in range(r.randint(0, 4))]}
        else:
            d = {"from": r.choice(FIRST), "to": r.choice(FIRST), "sent": now,
                 "subject": self.text(r.randint(2, 6)), "body": self.text(r.randint(10, 200)),
                 "read": False, "attachments": [{"name": "f%d.pdf" % i, "size": r.randint(1, 10**6)}
                                                for i in range(r.randint(0, 2))]}
        return d

    # ------------------------------------------------------------ choosing targets

    def pick_ns(self):
        db = self.rng.choice(self.dbs)
        return db, self.rng.choice(self.colls[db])

    def pick_id(self, key):
        ids = self.ids.get(key)
        if not ids:
            return None
        if self.rng.random() < 0.6:
            # skewed: recent documents are hot
            k = min(len(ids) - 1, int(self.rng.paretovariate(1.2)) - 1)
            return ids[-1 - k]
        return self.rng.choice(ids)

    def count(self, what):
        self.stats[what] = self.stats.get(what, 0) + 1

    # ------------------------------------------------------------ operations

    def op_insert(self, session=None):
        db, coll = self.pick_ns()
        n = self.rng.choice([1, 1, 1, 2, 5, 20])
        docs = []
        for _ in range(n):
            d = self.make_doc(coll)
            d = {"_id": self.new_id(coll), **d}
            docs.append(d)
        self.client[db][coll].insert_many(docs, session=session)
        self.ids.setdefault((db, coll), []).extend(d["_id"] for d in docs)
        self.count("insert")

    def op_update(self, session=None):
        db, coll = self.pick_ns()
        _id = self.pick_id((db, coll))
        if _id is None:
            return self.op_insert(session)
        r = self.rng.random()
        c = self.client[db][coll]
        if r < 0.3:
            u = {"$set": {"status" if coll.startswith("app") else "updatedBy": self.rng.choice(FIRST),
                          "meta.rev": self.rng.randint(1, 100)}}
        elif r < 0.5:
            u = {"$inc": {"visits": 1, "counters.hits": self.rng.randint(1, 5)}}
        elif r < 0.65:
            u = {"$push": {"log": {"at": datetime.datetime(2024, 5, 1), "msg": self.text(4)}}}
        elif r < 0.75:
            u = {"$unset": {"notes": "", "meta.rev": ""}}
        elif r < 0.82:
            u = {"$addToSet": {"tags": self.rng.choice(["vip", "new", "late", "remind"])}}
        elif r < 0.88:
            u = {"$pull": {"allergies": self.rng.choice(["penicillin", "latex", "nuts", "pollen"])}}
        else:
            c.replace_one({"_id": _id}, self.make_doc(coll), session=session)
            self.count("replace")
            return
        if self.rng.random() < 0.05:
            # multi-update over a small range
            c.update_many({"active": False}, {"$set": {"archived": True}}, session=session)
            self.count("update_many")
            return
        c.update_one({"_id": _id}, u, session=session)
        self.count("update")

    def op_delete(self, session=None):
        db, coll = self.pick_ns()
        ids = self.ids.get((db, coll))
        if not ids:
            return
        _id = ids.pop(self.rng.randrange(len(ids)))
        self.client[db][coll].delete_one({"_id": _id}, session=session)
        self.count("delete")

    def op_txn(self, large=False):
        n = self.args.large_txn_ops if large else self.rng.randint(2, 12)
        abort = not large and self.rng.random() < 0.25
        saved = {k: list(v) for k, v in self.ids.items()}
        with self.client.start_session() as s:
            s.start_transaction()
            try:
                for _ in range(n):
                    r = self.rng.random()
                    if r < 0.5 or large:
                        self.op_insert(s)
                    elif r < 0.85:
                        self.op_update(s)
                    else:
                        self.op_delete(s)
                if abort:
                    s.abort_transaction()
                    self.ids = saved
                    self.count("txn_aborted")
                else:
                    s.commit_transaction()
                    self.count("txn_large" if large else "txn_committed")
            except PyMongoError:
                if s.in_transaction:
                    s.abort_transaction()
                self.ids = saved
                self.count("txn_failed")

    def op_ddl(self):
        r = self.rng.random()
        db = self.rng.choice(self.dbs)
        d = self.client[db]
        self.ddl_n += 1
        if r < 0.25:
            name = "tmp%d" % self.ddl_n
            d.create_collection(name, **({"capped": True, "size": 65536} if self.rng.random() < 0.3 else {}))
            d[name].insert_many([{"_id": i, "v": self.text(3)} for i in range(self.rng.randint(0, 20))])
            if self.rng.random() < 0.5:
                d[name].drop()
            self.count("ddl_create")
        elif r < 0.5:
            coll = self.rng.choice(self.colls[db])
            field = self.rng.choice(["visits", "status", "sent", "room", "name.last"])
            d[coll].create_index([(field, self.rng.choice([1, -1]))])
            self.count("ddl_index")
        elif r < 0.7:
            coll = self.rng.choice(self.colls[db])
            new = "%s_%d" % (coll.split("_")[0], self.ddl_n)
            if coll in d.list_collection_names():
                self.client.admin.command("renameCollection", "%s.%s" % (db, coll), to="%s.%s" % (db, new))
                self.colls[db][self.colls[db].index(coll)] = new
                self.ids[(db, new)] = self.ids.pop((db, coll), [])
                self.count("ddl_rename")
        elif r < 0.85:
            coll = self.rng.choice(self.colls[db])
            if coll in d.list_collection_names():
                d.command("collMod", coll, validator={"$jsonSchema": {"bsonType": "object"}},
                          validationLevel="moderate")
                self.count("ddl_collmod")
        else:
            coll = self.rng.choice(self.colls[db])
            idx = [i["name"] for i in d[coll].list_indexes() if i["name"] != "_id_"]
            if idx:
                d[coll].drop_index(self.rng.choice(idx))
                self.count("ddl_dropindex")

    def step(self):
        r = self.rng.random()
        if r < 0.40:
            self.op_insert()
        elif r < 0.75:
            self.op_update()
        elif r < 0.85:
            self.op_delete()
        elif r < 0.95:
            self.op_txn()
        elif r < 0.951:
            self.op_txn(large=True)
        elif r < 0.96:
            self.op_ddl()
        else:
            self.op_update()

    # ------------------------------------------------------------ oracle

    def oracle(self):
        last = self.client.local.oplog.rs.find_one(sort=[("$natural", -1)])
        hashes, counts = {}, {}
        for db in sorted(set(self.dbs)):
            h = self.client[db].command("dbHash")
            hashes[db] = h["collections"]
            counts[db] = {c: self.client[db][c].estimated_document_count() for c in h["collections"]}
        return {"ts": [last["ts"].time, last["ts"].inc], "hashes": hashes, "counts": counts}

    def run(self):
        a = self.args
        out = open(a.oracle, "a") if a.oracle else None
        start = time.monotonic()
        next_oracle = start + a.oracle_every
        interval = 1.0 / a.rate if a.rate > 0 else 0
        next_op = start
        ops = 0
        last_oracle_ops = 0
        while time.monotonic() - start < a.duration and (not a.max_ops or ops < a.max_ops):
            now = time.monotonic()
            if out and (now >= next_oracle if not a.oracle_ops else ops and ops % a.oracle_ops == 0 and ops != last_oracle_ops):
                last_oracle_ops = ops
                out.write(json.dumps(self.oracle()) + "\n")
                out.flush()
                next_oracle = now + a.oracle_every
            if interval and now < next_op:
                time.sleep(min(next_op - now, max(0.0, next_oracle - now)))
                continue
            try:
                self.step()
            except PyMongoError as e:
                self.count("error:" + type(e).__name__)
            ops += 1
            next_op += interval
        if out:
            out.write(json.dumps(self.oracle()) + "\n")
            out.close()
        elapsed = time.monotonic() - start
        print("loadgen: %d ops in %.1fs (%.0f/s) %s" % (ops, elapsed, ops / elapsed,
                                                     json.dumps(self.stats, sort_keys=True)), file=sys.stderr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uri", required=True)
    p.add_argument("--rate", type=float, default=500, help="operations per second (0: as fast as possible)")
    p.add_argument("--duration", type=float, default=10, help="seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--oracle", help="JSON-lines file to append oracle records to")
    p.add_argument("--oracle-every", type=float, default=1.0, help="seconds between oracle records")
    p.add_argument("--oracle-ops", type=int, default=0,
                   help="record the oracle every N operations instead of every --oracle-every seconds "
                        "(a count that does not depend on the machine's speed)")
    p.add_argument("--max-ops", type=int, default=0, help="stop after N operations (0: run for --duration)")
    p.add_argument("--dbs", type=int, default=2)
    p.add_argument("--collections", type=int, default=3)
    p.add_argument("--large-txn-ops", type=int, default=1200,
                   help="operations in a large transaction (logged as a partialTxn chain)")
    Load(p.parse_args(argv)).run()


if __name__ == "__main__":
    main()
