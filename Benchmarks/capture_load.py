#!/usr/bin/env python3
"""Loads a mongodump directory into a server with pymongo, or reads it back (capture.sh).

    capture_load.py load --uri URI --dump DIR     # insert_many of 1,000 raw documents, then the indexes
    capture_load.py scan --uri URI --dump DIR     # read every collection of the dump sorted by _id

`load` creates each collection with the options of its .metadata.json, inserts the
documents of its .bson file in file order as RawBSONDocument (no decode/re-encode in
the client) in insert_many batches of 1,000, then creates the secondary indexes, as
mongorestore does. `scan` is the reference for how fast the server can hand the same
documents to one pymongo client: a find sorted by _id per collection, raw documents.
Both print one JSON object (documents, bytes, seconds).
"""
import argparse
import json
import os
import sys
import time

import pymongo
from bson import decode_file_iter, json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

RAW = CodecOptions(document_class=RawBSONDocument)


def namespaces(dump):
    for db in sorted(os.listdir(dump)):
        d = os.path.join(dump, db)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(".bson") and not name.startswith("oplog"):
                coll = name[:-5]
                meta = os.path.join(d, coll + ".metadata.json")
                yield db, coll, os.path.join(d, name), meta if os.path.exists(meta) else None


def load(client, dump, batch):
    docs = nbytes = 0
    t0 = time.monotonic()
    for db, coll, path, meta_path in namespaces(dump):
        meta = json_util.loads(open(meta_path).read()) if meta_path else {}
        options = meta.get("options") or {}
        client[db].create_collection(coll, **options)
        c = client[db].get_collection(coll, codec_options=RAW)
        pending = []
        with open(path, "rb") as f:
            for doc in decode_file_iter(f, RAW):
                pending.append(doc)
                nbytes += len(doc.raw)
                if len(pending) >= batch:
                    c.insert_many(pending, ordered=True)
                    docs += len(pending)
                    pending = []
        if pending:
            c.insert_many(pending, ordered=True)
            docs += len(pending)
        specs = [i for i in meta.get("indexes") or [] if i.get("name") != "_id_"]
        if specs:
            client[db].command("createIndexes", coll, indexes=[{k: v for k, v in s.items() if k != "ns"} for s in specs])
    return {"documents": docs, "bytes": nbytes, "seconds": time.monotonic() - t0}


def scan(client, dump):
    docs = nbytes = 0
    t0 = time.monotonic()
    for db, coll, _, _ in namespaces(dump):
        c = client[db].get_collection(coll, codec_options=RAW)
        for doc in c.find({}, sort=[("_id", 1)], batch_size=10000):
            docs += 1
            nbytes += len(doc.raw)
    return {"documents": docs, "bytes": nbytes, "seconds": time.monotonic() - t0}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["load", "scan"])
    p.add_argument("--uri", required=True)
    p.add_argument("--dump", required=True)
    p.add_argument("--batch", type=int, default=1000)
    a = p.parse_args()
    client = pymongo.MongoClient(a.uri)
    r = load(client, a.dump, a.batch) if a.mode == "load" else scan(client, a.dump)
    json.dump(r, sys.stdout)
    print()


if __name__ == "__main__":
    main()
