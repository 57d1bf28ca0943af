"""applyOps: replaying server A's oplog into an empty server B gives equal dbHashes."""
import pytest
from pymongo.errors import OperationFailure


def workload(c):
    db = c.clinic
    db.patients.insert_many([{"_id": i, "name": "p%d" % i, "tags": ["a", "b"], "n": {"x": i}} for i in range(50)])
    db.patients.update_many({"_id": {"$lt": 20}}, {"$set": {"n.y": 1}, "$push": {"tags": "c"}})
    db.patients.update_one({"_id": 3}, {"$unset": {"name": 1}, "$inc": {"n.x": 5}})
    db.patients.update_one({"_id": 4}, {"$pull": {"tags": "a"}})
    db.patients.replace_one({"_id": 5}, {"replaced": True})
    db.patients.delete_many({"_id": {"$gte": 45}})
    db.patients.create_index("name")
    db.create_collection("empty")
    db.empty.create_index("k", unique=True)
    db.command("collMod", "patients", validator={"name": {"$exists": True}}, validationLevel="off")
    with c.start_session() as s:
        with s.start_transaction():
            db.appts.insert_many([{"_id": i, "p": i} for i in range(5)], session=s)
            db.patients.update_one({"_id": 6}, {"$set": {"appt": 1}}, session=s)
            db.patients.delete_one({"_id": 7}, session=s)
    c.admin.command("renameCollection", "clinic.appts", to="clinic.appointments")
    c.other.x.insert_many([{"_id": i} for i in range(5)])
    c.admin.command("renameCollection", "other.x", to="clinic.moved")
    c.gone.y.insert_one({"_id": 1})
    c.drop_database("gone")
    db.patients.drop_index("name_1")
    db.create_collection("temp")
    db.temp.drop()


@pytest.mark.parametrize("chunk", ["1000", "2"])
def test_round_trip(make_sim, chunk):
    a = make_sim("--txn-chunk-ops", chunk).client()
    b = make_sim().client()
    workload(a)
    entries = list(a.local.oplog.rs.find({"op": {"$ne": "n"}}))
    assert len(entries) > 60
    for e in entries:
        b.admin.command("applyOps", [e])
    for name in ("clinic", "other", "gone"):
        ha, hb = a[name].command("dbHash"), b[name].command("dbHash")
        assert ha["collections"] == hb["collections"], name
        assert ha["md5"] == hb["md5"] and ha["uuids"] == hb["uuids"]
    assert sorted(a.list_database_names()) == sorted(b.list_database_names())
    ia = {i["name"]: i for i in a.clinic.patients.list_indexes()}
    ib = {i["name"]: i for i in b.clinic.patients.list_indexes()}
    assert ia == ib
    assert "k_1" in {i["name"] for i in b.clinic.empty.list_indexes()}
    assert b.clinic.patients.find_one({"_id": 3}) == a.clinic.patients.find_one({"_id": 3})
    assert len(list(b.local.oplog.rs.find({"op": {"$ne": "n"}}))) >= 60


def test_apply_ops_forms(client):
    client.t.create_collection("c")
    ui = client.t.command("listCollections", filter={"name": "c"})["cursor"]["firstBatch"][0]["info"]["uuid"]
    ops = [
        {"op": "i", "ns": "t.c", "o": {"_id": 1, "a": 1, "b": [1, 2, 3]}},
        {"op": "u", "ns": "t.c", "ui": ui, "o": {"$v": 2, "diff": {"u": {"a": 2}, "sb": {"a": True, "l": 1}}},
         "o2": {"_id": 1}},
        {"op": "u", "ns": "t.c", "o": {"$set": {"z": 1}}, "o2": {"_id": 1}},
        {"op": "i", "ns": "t.c", "o": {"_id": 2, "x": 1}},
        {"op": "u", "ns": "t.c", "o": {"_id": 2, "y": 2}, "o2": {"_id": 2}},
        {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [{"op": "d", "ns": "t.c", "o": {"_id": 2}}]}},
        {"op": "n", "ns": "", "o": {"msg": "hi"}},
    ]
    r = client.admin.command("applyOps", ops)
    assert r["applied"] == 7
    assert list(client.t.c.find()) == [{"_id": 1, "a": 2, "b": [1], "z": 1}]
    with pytest.raises(OperationFailure) as e:
        client.admin.command("applyOps", [{"op": "i", "ns": "t.c", "ui": __import__("bson").Binary(b"x" * 16, 4),
                                           "o": {"_id": 5}}])
    assert e.value.code == 26
