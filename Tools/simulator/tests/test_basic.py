"""Handshake, CRUD, operators, ordering, listings and error codes through pymongo."""
import datetime

import pytest
import pymongo
from bson import (Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp)
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure


def test_handshake_replica_set(sim):
    c = sim.client()
    assert c.admin.command("ping")["ok"] == 1.0
    hello = c.admin.command("hello")
    assert hello["setName"] == "rs0" and hello["isWritablePrimary"] is True
    assert hello["hosts"] == [sim.addr] and hello["primary"] == sim.addr and hello["me"] == sim.addr
    assert hello["maxWireVersion"] == 17 and "topologyVersion" in hello and "electionId" in hello
    assert "lastWrite" in hello and "$clusterTime" in hello
    assert c.topology_description.topology_type_name == "ReplicaSetWithPrimary"
    assert c.server_info()["version"] == "6.0.0"


def test_handshake_direct(sim):
    c = sim.client(direct=True)
    assert c.admin.command("ping")["ok"] == 1.0
    c.t.c.insert_one({"a": 1})
    assert c.t.c.count_documents({}) == 1


def test_standalone(make_sim):
    s = make_sim("--standalone")
    c = s.client()
    hello = c.admin.command("hello")
    assert "setName" not in hello
    c.t.c.insert_one({"a": 1})
    assert "local" not in c.list_database_names()
    assert c.local.oplog.rs.find_one() is None


def test_crud_and_operators(client):
    c = client.clinic.patients
    c.insert_many([{"_id": i, "name": "p%d" % i, "age": 20 + i, "tags": ["a"], "addr": {"city": "X"}}
                   for i in range(10)])
    assert c.count_documents({"age": {"$gte": 25}}) == 5
    assert [d["_id"] for d in c.find({"age": {"$in": [21, 23]}})] == [1, 3]
    assert c.find_one({"addr.city": "X", "_id": {"$gt": 8}})["_id"] == 9
    assert c.count_documents({"$or": [{"_id": 1}, {"_id": 2}], "tags": "a"}) == 2
    assert c.count_documents({"missing": {"$exists": False}, "age": {"$ne": 20, "$lt": 23}}) == 2
    assert c.count_documents({"_id": {"$nin": [1, 2]}, "$and": [{"age": {"$lte": 29}}]}) == 8
    r = c.update_one({"_id": 1}, {"$set": {"addr.zip": "1000", "z": 1}, "$inc": {"age": 5},
                                  "$push": {"tags": "b"}, "$unset": {"name": ""}})
    assert r.modified_count == 1
    assert c.find_one({"_id": 1}) == {"_id": 1, "age": 26, "tags": ["a", "b"],
                                      "addr": {"city": "X", "zip": "1000"}, "z": 1}
    c.update_one({"_id": 1}, {"$pull": {"tags": "a"}, "$addToSet": {"more": {"$each": [1, 1, 2]}},
                              "$rename": {"z": "zz"}})
    assert c.find_one({"_id": 1}, {"tags": 1, "more": 1, "zz": 1}) == \
        {"_id": 1, "tags": ["b"], "more": [1, 2], "zz": 1}
    r = c.update_many({"age": {"$lt": 25}}, {"$set": {"young": True}})
    assert r.matched_count == 4 and r.modified_count == 4
    r = c.update_one({"_id": 100}, {"$set": {"x": 1}, "$setOnInsert": {"created": True}}, upsert=True)
    assert r.upserted_id == 100 and c.find_one({"_id": 100}) == {"_id": 100, "created": True, "x": 1}
    c.replace_one({"_id": 2}, {"replaced": True})
    assert c.find_one({"_id": 2}) == {"_id": 2, "replaced": True}
    assert c.delete_many({"young": True}).deleted_count == 3
    assert c.delete_one({"_id": {"$gte": 0}}).deleted_count == 1
    got = list(c.find({}, {"_id": 1}).sort("_id", -1).skip(1).limit(3))
    assert [d["_id"] for d in got] == [9, 8, 7]
    assert [d["age"] for d in c.find({"_id": {"$lt": 10}}).sort([("age", -1)]).limit(2)] == [29, 28]
    doc = c.find_one_and_update({"_id": 9}, {"$inc": {"age": 1}},
                                return_document=pymongo.ReturnDocument.AFTER)
    assert doc["age"] == 30
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"_id": 9})
    with pytest.raises(BulkWriteError) as e:
        c.insert_many([{"_id": 50}, {"_id": 9}, {"_id": 51}])
    assert e.value.details["writeErrors"][0]["code"] == 11000 and e.value.details["nInserted"] == 1


def test_batches_and_getmore(client):
    c = client.t.big
    c.insert_many([{"_id": i} for i in range(1000)])
    assert [d["_id"] for d in c.find().sort("_id", 1).batch_size(7)] == list(range(1000))
    assert len(list(c.find().limit(150))) == 150
    assert c.estimated_document_count() == 1000


def test_canonical_id_order(client):
    c = client.t.order
    oid = ObjectId()
    ids = [MaxKey(), Regex("a", "i"), Timestamp(5, 1), datetime.datetime(2020, 1, 1), True, False,
           oid, Binary(b"\x01\x02", 0), Binary(b"\x01", 4), [1, 2] if False else {"a": 1}, {"a": 0, "b": 1},
           "b", "a", Decimal128("2.5"), 3, Int64(2), 1.5, -1, None, MinKey()]
    c.insert_many([{"_id": i} for i in ids])
    got = [d["_id"] for d in c.find().sort("_id", 1)]
    expected = [MinKey(), None, -1, 1.5, Int64(2), Decimal128("2.5"), 3, "a", "b", {"a": 0, "b": 1},
                {"a": 1}, Binary(b"\x01", 4), b"\x01\x02", oid, False, True,
                datetime.datetime(2020, 1, 1), Timestamp(5, 1), Regex("a", 2), MaxKey()]
    assert [repr(x) for x in got] == [repr(x) for x in expected]
    assert [repr(d["_id"]) for d in c.find().sort("_id", -1)] == [repr(x) for x in reversed(expected)]
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"_id": 3.0})  # numerically equal to 3


def test_list_collections_and_indexes(client):
    db = client.meta
    db.create_collection("plain")
    db.create_collection("capped", capped=True, size=1000, max=10)
    db.create_collection("valid", validator={"$jsonSchema": {"bsonType": "object"}}, validationLevel="moderate")
    db.create_collection("view1", viewOn="plain", pipeline=[{"$match": {"a": 1}}])
    db.plain.create_index([("a", 1), ("b", -1)], unique=True, name="ab")
    db.plain.create_index("t", expireAfterSeconds=60, sparse=True)
    db.plain.create_index("p", partialFilterExpression={"p": {"$exists": True}})
    infos = {i["name"]: i for i in db.list_collections()}
    assert infos["plain"]["type"] == "collection" and infos["plain"]["info"]["uuid"].subtype == 4
    assert infos["plain"]["idIndex"] == {"v": 2, "key": {"_id": 1}, "name": "_id_"}
    assert infos["capped"]["options"] == {"capped": True, "size": 1024, "max": 10}
    assert infos["valid"]["options"]["validationLevel"] == "moderate"
    assert infos["view1"]["type"] == "view" and infos["view1"]["options"]["viewOn"] == "plain"
    assert infos["view1"]["info"]["readOnly"] is True
    assert db.list_collection_names(filter={"name": "plain"}) == ["plain"]
    idx = {i["name"]: i for i in db.plain.list_indexes()}
    assert idx["ab"] == {"v": 2, "key": {"a": 1, "b": -1}, "name": "ab", "unique": True}
    assert idx["t_1"]["expireAfterSeconds"] == 60 and idx["t_1"]["sparse"] is True
    assert "partialFilterExpression" in idx["p_1"]
    db.plain.insert_one({"a": 1, "b": 1})
    with pytest.raises(DuplicateKeyError):
        db.plain.insert_one({"a": 1, "b": 1})
    db.plain.insert_one({"a": 1})
    assert [d["_id"] for d in db.view1.find()] == [db.plain.find_one({"b": 1})["_id"], db.plain.find_one({"b": {"$exists": False}})["_id"]]
    db.command("collMod", "plain", index={"name": "t_1", "expireAfterSeconds": 120})
    assert {i["name"]: i for i in db.plain.list_indexes()}["t_1"]["expireAfterSeconds"] == 120
    db.plain.drop_index("ab")
    assert "ab" not in {i["name"] for i in db.plain.list_indexes()}
    dbs = {d["name"]: d for d in client.list_databases()}
    assert "meta" in dbs and "sizeOnDisk" in dbs["meta"]
    assert "meta" in client.list_database_names()


def test_rename_and_drop(client):
    client.a.c1.insert_many([{"_id": 1}, {"_id": 2}])
    client.a.c1.create_index("x")
    client.admin.command("renameCollection", "a.c1", to="a.c2")
    assert client.a.list_collection_names() == ["c2"]
    client.b.c3.insert_one({"_id": 9})
    with pytest.raises(OperationFailure) as e:
        client.admin.command("renameCollection", "a.c2", to="b.c3")
    assert e.value.code == 48
    client.admin.command("renameCollection", "a.c2", to="b.c3", dropTarget=True)
    assert sorted(d["_id"] for d in client.b.c3.find()) == [1, 2]
    assert "x_1" in {i["name"] for i in client.b.c3.list_indexes()}
    assert "a" not in client.list_database_names()
    with pytest.raises(OperationFailure) as e:
        client.b.command("drop", "nope")
    assert e.value.code == 26
    client.drop_database("b")
    assert "b" not in client.list_database_names()


def test_errors(client):
    with pytest.raises(OperationFailure) as e:
        client.admin.command("frobnicate")
    assert e.value.code == 59 and e.value.details["codeName"] == "CommandNotFound"
    assert e.value.details["errmsg"] == "no such command: 'frobnicate'"
    client.t.create_collection("x")
    with pytest.raises(OperationFailure) as e:
        client.t.command("create", "x")
    assert e.value.code == 48
    with pytest.raises(OperationFailure) as e:
        client.t.command("listIndexes", "nope")
    assert e.value.code == 26
    with pytest.raises(OperationFailure) as e:
        client.t.command("getMore", Int64(12345), collection="x")
    assert e.value.code == 43
    with pytest.raises(OperationFailure) as e:
        client.t.command("create", "bad$name")
    assert e.value.code == 73


def test_transactions(client):
    c = client.t.txn
    c.insert_one({"_id": 0, "v": 0})
    with client.start_session() as s:
        with s.start_transaction():
            c.insert_one({"_id": 1}, session=s)
            c.update_one({"_id": 0}, {"$set": {"v": 1}}, session=s)
    assert c.find_one({"_id": 0})["v"] == 1 and c.find_one({"_id": 1})
    with client.start_session() as s:
        s.start_transaction()
        c.insert_one({"_id": 2}, session=s)
        c.delete_one({"_id": 0}, session=s)
        c.update_one({"_id": 1}, {"$set": {"w": 1}}, session=s)
        s.abort_transaction()
    assert c.find_one({"_id": 2}) is None and c.find_one({"_id": 0}) and c.find_one({"_id": 1}) == {"_id": 1}


def test_open_transaction_writes_are_invisible_outside_it(client):
    # mongod's snapshot isolation: a backup reading during a transaction that later aborts
    # must not capture its writes (no oplog entry would ever undo them).
    c = client.t.iso
    c.insert_many([{"_id": 0, "v": 0}, {"_id": 5, "v": 5}])
    before = client.t.command("dbHash")["collections"]["iso"]
    with client.start_session() as s:
        s.start_transaction()
        c.insert_one({"_id": 1}, session=s)
        c.update_one({"_id": 0}, {"$set": {"v": 1}}, session=s)
        c.delete_one({"_id": 5}, session=s)
        # inside: its own writes
        assert sorted(d["_id"] for d in c.find({}, session=s)) == [0, 1]
        assert c.find_one({"_id": 0}, session=s)["v"] == 1
        # outside: the committed state, by every read path
        assert list(c.find({}, sort=[("_id", 1)])) == [{"_id": 0, "v": 0}, {"_id": 5, "v": 5}]
        assert c.find_one({"_id": 1}) is None and c.find_one({"_id": 5}) == {"_id": 5, "v": 5}
        assert list(c.find(sort=[("_id", 1)]).min([("_id", 1)]).hint([("_id", 1)])) == [{"_id": 5, "v": 5}]
        assert sorted(d["_id"] for d in c.find({"v": {"$gte": 0}})) == [0, 5]
        assert c.count_documents({}) == 2 and c.estimated_document_count() == 2
        assert [d["n"] for d in c.aggregate([{"$count": "n"}])] == [2]
        assert client.t.command("dbHash")["collections"]["iso"] == before
        s.commit_transaction()
    assert sorted(d["_id"] for d in c.find()) == [0, 1]
    assert client.t.command("dbHash")["collections"]["iso"] != before


def test_db_hash_semantics(client):
    import bson, hashlib
    docs = [{"_id": 2, "a": 1}, {"_id": 1, "b": "x"}]
    client.h.c.insert_many(docs)
    r = client.h.command("dbHash")
    expected = hashlib.md5(b"".join(bson.encode(d) for d in sorted(docs, key=lambda d: d["_id"]))).hexdigest()
    assert r["collections"] == {"c": expected}
    assert r["md5"] == hashlib.md5(expected.encode()).hexdigest()
    client.h.create_collection("empty")
    assert client.h.command("dbHash")["collections"]["empty"] == "d41d8cd98f00b204e9800998ecf8427e"


def test_wire_details(sim):
    import socket, struct, bson
    # unacknowledged write (moreToCome): no reply, but applied
    c = sim.client(w=0)
    c.t.w0.insert_one({"_id": 1})
    acked = sim.client()
    import time
    for _ in range(50):
        if acked.t.w0.find_one({"_id": 1}):
            break
        time.sleep(0.02)
    assert acked.t.w0.find_one({"_id": 1}) == {"_id": 1}
    # OP_MSG with the checksum flag (CRC not verified) and a kind-1 document sequence
    s = socket.create_connection(("127.0.0.1", sim.port))
    body = bson.encode({"insert": "seq", "$db": "t"})
    docs = b"".join(bson.encode({"_id": i}) for i in range(3))
    seq = struct.pack("<i", 4 + len(b"documents\x00") + len(docs)) + b"documents\x00" + docs
    payload = struct.pack("<I", 1) + b"\x00" + body + b"\x01" + seq + b"\x00\x00\x00\x00"
    s.sendall(struct.pack("<iiii", 16 + len(payload), 7, 0, 2013) + payload)
    hdr = s.recv(16, socket.MSG_WAITALL)
    length, _, resp_to, op = struct.unpack("<iiii", hdr)
    rest = s.recv(length - 16, socket.MSG_WAITALL)
    assert resp_to == 7 and op == 2013
    assert bson.decode(rest[5:])["n"] == 3
    # legacy OP_QUERY isMaster gets an OP_REPLY
    q = bson.encode({"isMaster": 1})
    payload = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + q
    s.sendall(struct.pack("<iiii", 16 + len(payload), 8, 0, 2004) + payload)
    hdr = s.recv(16, socket.MSG_WAITALL)
    length, _, resp_to, op = struct.unpack("<iiii", hdr)
    rest = s.recv(length - 16, socket.MSG_WAITALL)
    assert op == 1 and resp_to == 8
    reply = bson.decode(rest[20:])
    assert reply["ismaster"] is True and reply["setName"] == "rs0"
    s.close()
