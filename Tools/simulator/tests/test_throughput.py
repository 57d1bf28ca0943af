"""Rough throughput: bulk inserts and oplog reads (asserted loosely, printed)."""
import time

from bson import Timestamp
from bson.raw_bson import RawBSONDocument
from bson.codec_options import CodecOptions


def test_throughput(make_sim, capsys):
    s = make_sim("--oplog-size-mb", "256")
    c = s.client(retryWrites=False)
    coll = c.perf.docs
    docs = [{"_id": i, "name": "patient %d" % i, "age": i % 90, "tags": ["x", "y"],
             "addr": {"city": "Lyon", "zip": "69000"}} for i in range(30000)]
    t0 = time.perf_counter()
    for i in range(0, 30000, 1000):
        coll.insert_many(docs[i:i + 1000], ordered=False)
    ins_rate = 30000 / (time.perf_counter() - t0)
    raw = c.get_database("local", codec_options=CodecOptions(document_class=RawBSONDocument))
    t0 = time.perf_counter()
    n = 0
    cur = raw.oplog.rs.find({"ts": {"$gte": Timestamp(0, 0)}}).batch_size(100000)
    for _ in cur:
        n += 1
    n2 = 0
    for _ in raw.oplog.rs.find({"ts": {"$gte": Timestamp(0, 0)}}).batch_size(100000):
        n2 += 1
    read_rate = (n + n2) / (time.perf_counter() - t0)
    with capsys.disabled():
        print("\n[throughput] inserts: %.0f docs/s, oplog reads: %.0f entries/s (%d entries)"
              % (ins_rate, read_rate, n + n2))
    assert n >= 30000
    assert ins_rate > 5000
    assert read_rate > 15000
