"""Oplog entries compared with real mongod entries (field names, order, types)."""
import glob
import os

import bson
from bson import Int64, Timestamp, json_util
from bson.codec_options import CodecOptions
from bson.binary import UuidRepresentation

from conftest import fixtures_dir

OPTS = CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED)


def real_entries():
    """Every real oplog entry of the fixtures, as decoded documents."""
    root = fixtures_dir()
    out = []
    for f in glob.glob(os.path.join(root, "mongorestore/testdata/**/*.bson"), recursive=True):
        if os.path.basename(f) == "oplog.bson" or "/oplogs/" in f:
            with open(f, "rb") as fh:
                out.extend(bson.decode_file_iter(fh, codec_options=OPTS))
    with open(os.path.join(root, "mongorestore/testdata/oplogs/oplog.json")) as fh:
        out.extend(json_util.loads(line, json_options=json_util.JSONOptions(
            uuid_representation=UuidRepresentation.UNSPECIFIED)) for line in fh if line.strip())
    return [e for e in out if "h" not in e and "op" in e]  # drop pre-4.2 entries (with the "h" hash)


def kind(e):
    if e["op"] == "c":
        k = next(iter(e["o"]))
        if k == "applyOps":
            return "applyOps" + ("+lsid" if "lsid" in e else "")
        return k
    return e["op"] + ("+lsid" if "lsid" in e else "")


def shape(v, depth=0):
    """Field names, order and BSON types (not values)."""
    if isinstance(v, dict):
        if depth >= 2:
            return "object"
        return [(k, shape(x, depth + 1)) for k, x in v.items()]
    if isinstance(v, bytes):
        return "binary%d" % getattr(v, "subtype", 0)
    return type(v).__name__


def normalise(entry):
    # 4.4/5.0 entries put wall before v; 6.0+ writes ts, t, v, wall.
    e = dict(entry)
    if "wall" in e and "v" in e:
        keys = list(e)
        if keys.index("wall") < keys.index("v"):
            w = e.pop("wall")
            out = {}
            for k, x in e.items():
                out[k] = x
                if k == "v":
                    out["wall"] = w
            e = out
    if isinstance(e.get("t"), int) and not isinstance(e["t"], Int64):
        e["t"] = Int64(e["t"])
    if isinstance(e.get("v"), int) and not isinstance(e["v"], Int64):
        e["v"] = Int64(e["v"])
    e.pop("multiOpType", None)
    return e


def top_shape(e):
    """Top-level shape plus the command's own field names."""
    e = normalise(e)
    s = [(k, "object" if isinstance(x, dict) else shape(x)) for k, x in e.items()]
    o = e.get("o", {})
    return s, [k for k in o] if e["op"] == "c" else None


def sim_entries(client):
    return list(client.local.oplog.rs.find())


def test_shapes_match_real(make_sim):
    reals = {}
    for e in real_entries():
        reals.setdefault(kind(e), []).append(e)
    s = make_sim()
    c = s.client(retryWrites=False)
    db = c.mongodump_test_db
    db.create_collection("coll1", validator={"$jsonSchema": {"bsonType": "object"}})
    db.coll1.insert_one({"_id": 1, "a": 1})
    db.coll1.create_index("f", expireAfterSeconds=1000)           # non-empty: start/commit
    db.create_collection("empty")
    db.empty.create_index("f")                                    # empty: createIndexes
    db.command("collMod", "coll1", index={"name": "f_1", "expireAfterSeconds": 3600})
    db.command("collMod", "coll1", index={"name": "f_1", "hidden": True})
    db.coll1.drop_index("f_1")
    db.coll1.drop()
    c.drop_database("mongodump_test_db")
    rc = s.client()                                               # retryable writes on
    rc.test.foo.insert_one({"_id": 1})
    got = {}
    for e in sim_entries(c):
        got.setdefault(kind(e), []).append(e)
    compared = []
    for k in ("create", "startIndexBuild", "commitIndexBuild", "createIndexes", "collMod", "dropIndexes",
              "drop", "dropDatabase", "i+lsid"):
        assert k in got, "simulator logged no %s" % k
        if k not in reals:
            continue
        real_shapes = [top_shape(e) for e in reals[k]]
        mine = top_shape(got[k][0])
        if k == "collMod":
            real_shapes = [(rs[0], rs[1]) for rs in real_shapes]
        assert mine in real_shapes, "%s:\n sim  %s\n real %s" % (k, mine, real_shapes[0])
        compared.append(k)
    # Inner shapes of a few commands, compared exactly.
    ib = {"startIndexBuild": None, "commitIndexBuild": None}
    for k in ib:
        mine = shape(got[k][0]["o"])
        assert mine[0][0] == k and [f for f, _ in mine] == ["%s" % k, "indexBuildUUID", "indexes"]
        real = shape(reals[k][0]["o"])
        assert [(f, t) for f, t in mine if f != k] == [(f, t) for f, t in real if f != k]
    assert shape(got["drop"][0]["o2"]) == shape(reals["drop"][0]["o2"])
    assert shape(got["dropIndexes"][0]["o"]) == shape(reals["dropIndexes"][0]["o"])
    assert [f for f, _ in shape(got["create"][0]["o"])][-1] == "idIndex"
    assert shape(got["create"][0]["o"]["idIndex"]) == shape(reals["create"][0]["o"]["idIndex"])
    hidden = [e for e in got["collMod"] if "hidden" in e["o"]["index"]][0]
    real_hidden = [e for e in reals["collMod"] if "hidden" in e["o"]["index"]][0]
    assert shape(hidden["o"]) == shape(real_hidden["o"]) and shape(hidden["o2"]) == shape(real_hidden["o2"])
    ttl = [e for e in got["collMod"] if "expireAfterSeconds" in e["o"]["index"]][0]
    real_ttl = [e for e in reals["collMod"] if "expireAfterSeconds" in e["o"]["index"]][0]
    assert shape(ttl["o"]) == shape(real_ttl["o"]) and shape(ttl["o2"]) == shape(real_ttl["o2"])
    assert shape(got["i+lsid"][0]["lsid"]) == shape(reals["i+lsid"][0]["lsid"])
    assert len(compared) >= 8, compared


def test_update_and_delete_shapes(client):
    c = client.t.u
    c.insert_one({"_id": 1, "a": 1, "arr": [1, 2, 3], "sub": {"x": 1, "y": 2}, "gone": True})
    c.update_one({"_id": 1}, {"$set": {"a": 2, "sub.x": 5, "new": "n"}, "$push": {"arr": 4},
                              "$unset": {"gone": 1}})
    c.replace_one({"_id": 1}, {"r": 1})
    c.delete_one({"_id": 1})
    es = list(client.local.oplog.rs.find({"ns": "t.u"}))
    ins, upd, rep, dele = es
    top = ["lsid", "txnNumber", "op", "ns", "ui", "o", "o2", "stmtId", "ts", "t", "v", "wall", "prevOpTime"]
    assert list(ins) == top and list(upd) == top and list(rep) == top
    assert list(dele) == [k for k in top if k != "o2"]
    assert upd["o"] == {"$v": 2, "diff": {"d": {"gone": False}, "u": {"a": 2}, "i": {"new": "n"},
                                          "sarr": {"a": True, "u3": 4}, "ssub": {"u": {"x": 5}}}}
    assert upd["o2"] == {"_id": 1}
    assert rep["o"] == {"_id": 1, "r": 1}
    assert dele["o"] == {"_id": 1}
    for e in es:
        assert isinstance(e["t"], Int64) and isinstance(e["v"], Int64) and e["v"] == 2
        assert isinstance(e["ts"], Timestamp) and e["ui"].subtype == 4
    tss = [(e["ts"].time, e["ts"].inc) for e in client.local.oplog.rs.find()]
    assert tss == sorted(set(tss))


def test_transaction_entries(make_sim):
    s = make_sim("--txn-chunk-ops", "2")
    c = s.client()
    coll = c.txntest.d
    coll.insert_one({"_id": -1})
    with c.start_session() as ses:
        with ses.start_transaction():
            coll.insert_one({"_id": 0}, session=ses)
            coll.update_one({"_id": -1}, {"$set": {"x": 1}}, session=ses)
    with c.start_session() as ses:
        with ses.start_transaction():
            coll.insert_many([{"_id": i, "x": i} for i in range(1, 6)], session=ses)
    ops = list(c.local.oplog.rs.find({"ns": "admin.$cmd"}))
    assert len(ops) == 1 + 3
    small, chain = ops[0], ops[1:]
    real = json_util.loads(open(os.path.join(fixtures_dir(), "common/txn/testdata/oplog_entries.json")).read(),
                           json_options=json_util.JSONOptions(uuid_representation=UuidRepresentation.UNSPECIFIED))
    real_small = real["small, unprepared"]["ops"][0]
    real_chain = real["large, unprepared"]["ops"]
    # Real 6.0 field order (mongorestore's vectored_insert.bson, a real server):
    order = ["lsid", "txnNumber", "op", "ns", "o", "ts", "t", "v", "wall", "prevOpTime"]
    assert list(small) == order and set(small) >= set(real_small)
    vectored = [e for e in real_entries() if kind(e) == "applyOps+lsid"]
    assert vectored and all(list(normalise(e)) == order for e in vectored)
    assert list(small["o"]) == list(real_small["o"]) == ["applyOps"]
    inner = small["o"]["applyOps"]
    assert [op["op"] for op in inner] == ["i", "u"]
    assert list(inner[1]) == ["op", "ns", "ui", "o", "o2"]
    assert small["prevOpTime"] == {"ts": Timestamp(0, 0), "t": -1}
    assert [list(e["o"]) for e in chain] == [list(e["o"]) for e in real_chain]
    assert [e["o"].get("partialTxn") for e in chain] == [True, True, None]
    assert chain[-1]["o"]["count"] == 5 and type(chain[-1]["o"]["count"]) is type(real_chain[-1]["o"]["count"])
    assert chain[1]["prevOpTime"]["ts"] == chain[0]["ts"] and chain[2]["prevOpTime"]["ts"] == chain[1]["ts"]
    assert all(e["lsid"]["id"] == chain[0]["lsid"]["id"] and e["txnNumber"] == chain[0]["txnNumber"] for e in chain)
    # aborted transactions leave nothing
    with c.start_session() as ses:
        ses.start_transaction()
        coll.insert_one({"_id": 99}, session=ses)
        ses.abort_transaction()
    assert len(list(c.local.oplog.rs.find({"ns": "admin.$cmd"}))) == 4


def test_noops(make_sim):
    import time
    s = make_sim("--noop-interval", "0.3")
    c = s.client()
    time.sleep(1.0)
    noops = list(c.local.oplog.rs.find({"op": "n", "o.msg": "periodic noop"}))
    assert noops and list(noops[0]) == ["op", "ns", "o", "ts", "t", "v", "wall"]
    real = [e for e in real_entries() if e["op"] == "n" and "t" in e and isinstance(e["t"], Int64)]
    assert top_shape(noops[0]) in [top_shape(e) for e in real]
