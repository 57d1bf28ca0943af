"""Tailable awaitData cursors on the oplog, and fault injection."""
import socket
import struct
import threading
import time

import bson
import pytest
import pymongo
from bson import Int64, Timestamp
from pymongo.errors import AutoReconnect, OperationFailure, NotPrimaryError


def last_ts(c):
    return c.local.oplog.rs.find_one(sort=[("$natural", -1)])["ts"]


def tail(c, ts, **kw):
    r = c.local.command("find", "oplog.rs", filter={"ts": {"$gte": ts}}, tailable=True,
                        awaitData=True, readConcern={"level": "majority"}, oplogReplay=True, **kw)
    return r["cursor"]


def more(c, cid, ms=300, **kw):
    return c.local.command("getMore", Int64(cid), collection="oplog.rs", maxTimeMS=ms, **kw)["cursor"]


def test_tailable_await(sim):
    c = sim.client()
    c.t.c.insert_one({"_id": 0})
    ts = last_ts(c)
    cur = tail(c, ts)
    assert cur["firstBatch"][0]["ts"] == ts and cur["id"] != 0
    t0 = time.monotonic()
    b = more(c, cur["id"], 400)
    waited = time.monotonic() - t0
    assert b["nextBatch"] == [] and b["id"] == cur["id"] and 0.3 < waited < 2.0
    # a write during the wait wakes the getMore up early
    writer = sim.client()
    threading.Timer(0.2, lambda: writer.t.c.insert_one({"_id": 1})).start()
    t0 = time.monotonic()
    b = more(c, cur["id"], 5000)
    assert time.monotonic() - t0 < 2.0
    assert [e["o"]["_id"] for e in b["nextBatch"]] == [1]
    # $gt skips the given entry
    cur2 = c.local.command("find", "oplog.rs", filter={"ts": {"$gt": ts}}, tailable=True, awaitData=True)["cursor"]
    assert cur2["firstBatch"][0]["o"]["_id"] == 1
    # other connections are not blocked by a waiting getMore
    th = threading.Thread(target=lambda: more(c, cur["id"], 1500))
    th.start()
    t0 = time.monotonic()
    sim.client().admin.command("ping")
    assert time.monotonic() - t0 < 1.0
    th.join()


def test_pymongo_tailable_cursor(sim):
    c = sim.client()
    c.t.c.insert_one({"_id": 0})
    ts = last_ts(c)
    cur = c.local.oplog.rs.find({"ts": {"$gte": ts}}, cursor_type=pymongo.CursorType.TAILABLE_AWAIT).max_await_time_ms(200)
    assert next(cur)["ts"] == ts
    c.t.c.insert_many([{"_id": i} for i in range(1, 4)])
    got = [next(cur)["o"]["_id"] for _ in range(3)]
    assert got == [1, 2, 3] and cur.alive


def test_capped_position_lost(sim):
    c = sim.client()
    c.t.c.insert_many([{"_id": i} for i in range(10)])
    cur = tail(c, Timestamp(0, 0), batchSize=3)
    c.admin.command("simTruncateOplog", 1, keep=2)
    with pytest.raises(OperationFailure) as e:
        more(c, cur["id"])
    assert e.value.code == 136 and e.value.details["codeName"] == "CappedPositionLost"
    with pytest.raises(OperationFailure) as e:
        more(c, cur["id"])
    assert e.value.code == 43  # the cursor is gone
    assert c.local.oplog.rs.count_documents({}) == 2
    ts = last_ts(c)
    c.t.c.insert_one({"_id": 99})
    c.admin.command("simTruncateOplog", 1, before=ts)
    assert [e["ts"] for e in c.local.oplog.rs.find()][0] == ts


def test_oplog_size_cap(make_sim):
    s = make_sim("--oplog-size-mb", "0.05")
    c = s.client()
    c.t.c.insert_many([{"_id": i, "pad": "x" * 200} for i in range(1000)])
    n = c.local.oplog.rs.count_documents({})
    assert 50 < n < 400
    first = c.local.oplog.rs.find_one()
    assert first["o"]["_id"] > 500


def test_step_down(sim):
    c = sim.client()
    c.t.c.insert_one({"_id": 0})
    t1 = c.local.oplog.rs.find_one(sort=[("$natural", -1)])["t"]
    cur = tail(c, last_ts(c))
    direct = sim.client(direct=True, retryWrites=False, retryReads=False)
    t0 = time.monotonic()
    direct.admin.command("simStepDown", 1, seconds=2.0)
    hello = direct.admin.command("hello")
    assert hello["isWritablePrimary"] is False and hello["secondary"] is True and "primary" not in hello
    with pytest.raises(NotPrimaryError) as e:
        direct.t.c.insert_one({"_id": 1})
    assert e.value.details["code"] == 10107
    with pytest.raises(NotPrimaryError) as e:
        more(direct, cur["id"])
    assert e.value.details["code"] == 11602
    assert e.value.details["codeName"] == "InterruptedDueToReplStateChange"
    time.sleep(max(0, 2.3 - (time.monotonic() - t0)))
    assert direct.admin.command("hello")["isWritablePrimary"] is True
    c.t.c.insert_one({"_id": 2})  # the replica-set client finds the primary again
    last = c.local.oplog.rs.find_one(sort=[("$natural", -1)])
    assert last["t"] == t1 + 1
    assert c.local.oplog.rs.find_one({"o.msg": "new primary"})["t"] == t1 + 1


def test_drop_connections(sim):
    c = sim.client(retryReads=False, retryWrites=False)
    c.admin.command("ping")
    raw = socket.create_connection(("127.0.0.1", sim.port))
    raw.settimeout(5)
    time.sleep(0.1)
    other = sim.client(direct=True)
    r = other.admin.command("simDropConnections", 1)
    assert r["dropped"] >= 2
    assert raw.recv(10) == b""  # closed by the server
    raw.close()
    # Clients reconnect: with retries off, the first command may still meet a pooled
    # socket the server closed (AutoReconnect); the next one reconnects.
    for client in (c, other):
        try:
            client.admin.command("ping")
        except AutoReconnect:
            pass
        assert client.admin.command("ping")["ok"] == 1.0


def test_delay_and_malformed(sim):
    c = sim.client(direct=True)
    c.admin.command("simDelay", 1, ms=200)
    t0 = time.monotonic()
    c.admin.command("ping")
    assert time.monotonic() - t0 >= 0.19
    c.admin.command("simDelay", 1, ms=0)
    # malformed reply, on a raw socket so we see the bytes
    s = socket.create_connection(("127.0.0.1", sim.port))
    c.admin.command("simMalformedReply", 1)
    body = bson.encode({"ping": 1, "$db": "admin"})
    msg = struct.pack("<iiiiI", 21 + len(body), 1, 0, 2013, 0) + b"\x00" + body
    s.sendall(msg)
    data = s.recv(100)
    length = struct.unpack("<i", data[:4])[0]
    assert length != len(data)
    # armed for a named command on any connection, other commands pass
    c.admin.command({"simMalformedReply": 1, "command": "count"})
    assert c.admin.command("ping")["ok"] == 1.0
    victim = sim.client(direct=True, socketTimeoutMS=1000, retryReads=False)
    with pytest.raises(Exception):
        victim.t.command("count", "x")
    assert c.admin.command("ping")["ok"] == 1.0
    s.close()


def test_drop_kills_cursors_and_sample_and_bounds(sim):
    c = sim.client(direct=True)
    c.t.c.insert_many([{"_id": i} for i in range(50)] + [{"_id": "s%d" % i} for i in range(5)])
    cur = c.t.c.find().sort("_id", 1).batch_size(5)
    next(cur)
    c.t.c.drop()
    with pytest.raises(OperationFailure) as e:
        list(cur)
    assert e.value.code == 175
    c.t.c.insert_many([{"_id": i} for i in range(50)] + [{"_id": "s%d" % i} for i in range(5)])
    got = c.t.command("aggregate", "c", pipeline=[{"$sample": {"size": 10}}, {"$project": {"_id": 1}}],
                      cursor={})["cursor"]["firstBatch"]
    assert len(got) == 10 and len({repr(d["_id"]) for d in got}) == 10
    r = c.t.command("find", "c", sort={"_id": 1}, hint={"_id": 1}, min={"_id": 45}, max={"_id": "s2"})
    assert [d["_id"] for d in r["cursor"]["firstBatch"]] == [45, 46, 47, 48, 49, "s0", "s1"]


def test_drop_mid_cursor(sim):
    c = sim.client(retryReads=False)
    c.t.c.insert_many([{"_id": i} for i in range(20)])
    cur = c.t.c.find().batch_size(5)
    next(cur)
    c.admin.command("simDropMidCursor", 1)
    with pytest.raises(AutoReconnect):
        list(cur)
    assert c.t.c.count_documents({}) == 20


def test_awaitable_hello(sim):
    c = sim.client(direct=True)
    h = c.admin.command("hello")
    t0 = time.monotonic()
    h2 = c.admin.command("hello", topologyVersion=h["topologyVersion"], maxAwaitTimeMS=300)
    assert 0.25 < time.monotonic() - t0 < 2
    other = sim.client(direct=True)
    threading.Timer(0.2, lambda: other.admin.command("simStepDown", 1, seconds=0.3)).start()
    t0 = time.monotonic()
    h3 = c.admin.command("hello", topologyVersion=h2["topologyVersion"], maxAwaitTimeMS=5000)
    assert time.monotonic() - t0 < 2
    assert h3["topologyVersion"]["counter"] > h2["topologyVersion"]["counter"]
