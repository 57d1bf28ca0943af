"""The simulated mongod: state plus command handlers.

All data access happens under one global lock (`Engine.lock`); waits
(awaitData getMore, awaitable hello) use Conditions on that lock, so they
release it while sleeping.
"""
import copy
import datetime
import hashlib
import os
import random
import string
import threading
import time

import bson
from bson import Binary, Int64, ObjectId, Timestamp

from . import query as Q
from .cursors import CursorManager, ListCursor, OplogCursor, FIRST_BATCH_DOCS, cursor_reply
from .diff import apply_diff, compute_diff
from .errors import (CommandError, DuplicateKey, bad_value, invalid_ns, not_primary,
                     ns_exists, ns_not_found)
from .ordering import same, sortkey
from .oplog import Oplog, key_ts, ts_key, wall_now
from .storage import Catalog, Collection, id_index_spec, validate_ns

# lsid.uid is sha256 of the (empty) authenticated user name when auth is off.
_EMPTY_UID = Binary(hashlib.sha256(b"").digest(), 0)
_ZERO_OPTIME = {"ts": Timestamp(0, 0), "t": Int64(-1)}

# Commands allowed inside a multi-document transaction.
_TXN_OK = {"find", "getMore", "insert", "update", "delete", "findAndModify", "findandmodify",
           "count", "aggregate", "distinct", "commitTransaction", "abortTransaction", "killCursors"}
_WRITE_CMDS = {"insert", "update", "delete", "findAndModify", "findandmodify", "create", "drop",
               "dropDatabase", "renameCollection", "collMod", "createIndexes", "dropIndexes",
               "applyOps"}


class Txn:
    def __init__(self, txn_number):
        self.txn_number = txn_number
        self.ops = []    # inner applyOps entries
        self.undo = []   # (collection, key, previous doc or None)
        self.shadowed = []  # (collection, key) whose committed version this txn hides


class Session:
    def __init__(self):
        self.txn_number = None
        self.txn = None          # open Txn
        self.state = None        # "inProgress" / "committed" / "aborted"
        self.retry = None        # (txnNumber, reply) of the last retryable write


class WriteLog:
    """Where one command's writes are logged: a transaction, a retryable write
    (lsid/txnNumber/stmtId/prevOpTime), or plain entries."""

    def __init__(self, eng, lsid=None, txn_number=None, txn=None):
        self.eng = eng
        self.txn = txn
        self.front = None
        if txn is None and lsid is not None and txn_number is not None:
            self.front = {"lsid": eng.full_lsid(lsid), "txnNumber": Int64(txn_number)}
        self.stmt = 0
        self.prev = _ZERO_OPTIME

    def log(self, fields):
        if self.eng.oplog is None or fields["ns"].startswith("local."):
            return
        if self.txn is not None:
            self.txn.ops.append(fields)
            return
        if self.front is None:
            self.eng.oplog.append(fields)
            return
        fields["stmtId"] = self.stmt
        self.stmt += 1
        k = self.eng.oplog.append(fields, self.front, {"prevOpTime": self.prev})
        self.prev = {"ts": key_ts(k), "t": Int64(self.eng.oplog.term)}

    def undo(self, coll, key, old):
        if self.txn is not None:
            self.txn.undo.append((coll, key, old))
            # Readers outside the transaction keep seeing the committed version (snapshot
            # isolation, as in mongod): remember it until commit or abort.
            shadow = self.eng.uncommitted.setdefault(coll, {})
            if key not in shadow:
                shadow[key] = old
                self.txn.shadowed.append((coll, key))


class Engine:
    def __init__(self, host, port, set_name="rs0", oplog_size_mb=64, standalone=False,
                 txn_chunk_ops=1000, noop_interval=10.0):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)       # oplog appends, cursor kills
        self.topo_cond = threading.Condition(self.lock)  # topology changes (awaitable hello)
        self.host = "%s:%d" % (host, port)
        self.set_name = set_name
        self.standalone = standalone
        self.txn_chunk_ops = max(1, txn_chunk_ops)
        self.noop_interval = noop_interval
        self.catalog = Catalog()
        self.oplog = None if standalone else Oplog(int(oplog_size_mb * 1024 * 1024), self.cond)
        self.cursors = CursorManager()
        self.sessions = {}
        # {collection: {key: committed doc or None}} for documents an open transaction wrote.
        self.uncommitted = {}
        self.primary = True
        self.process_id = ObjectId()
        self.topo_counter = 0
        self.started = time.time()
        with self.lock:
            self._init_system_data()

    # ------------------------------------------------------------ state helpers

    def _init_system_data(self):
        admin = self.catalog.db("admin", create=True)
        c = Collection(admin, "system.version")
        c.insert({"_id": "featureCompatibilityVersion", "version": "6.0"})
        self.catalog.add_coll(c)
        if self.oplog is not None:
            self.oplog.append({"op": "n", "ns": "", "o": {"msg": "initiating set"}})

    @property
    def term(self):
        return self.oplog.term if self.oplog else 0

    def election_id(self):
        return ObjectId("7fffffff" + "%016x" % self.term)

    def full_lsid(self, lsid):
        out = {"id": lsid["id"]}
        out["uid"] = lsid.get("uid", _EMPTY_UID)
        return out

    def last_optime(self):
        ts = self.oplog.last_ts()
        return {"ts": ts, "t": Int64(self.term)}

    def decorate(self, reply):
        """Add $clusterTime/operationTime like a replica-set member."""
        if self.oplog is not None:
            ts = self.oplog.last_ts()
            reply["$clusterTime"] = {"clusterTime": ts,
                                     "signature": {"hash": Binary(b"\x00" * 20, 0), "keyId": Int64(0)}}
            reply["operationTime"] = ts
        return reply

    def topology_changed(self):
        self.topo_counter += 1
        self.topo_cond.notify_all()

    def write_noop(self, msg):
        if self.oplog is not None and self.primary:
            self.oplog.append({"op": "n", "ns": "", "o": {"msg": msg}})

    # ------------------------------------------------------------ fault helpers

    def step_down(self, seconds):
        """Primary -> secondary for `seconds`, then primary again with term+1."""
        with self.lock:
            if not self.primary:
                raise CommandError(10107, "NotWritablePrimary", "not primary so can't step down")
            self.primary = False
            self.cursors.kill_oplog_cursors(11602, "InterruptedDueToReplStateChange",
                                            "operation was interrupted because a node stepped down")
            for sess in self.sessions.values():
                if sess.txn is not None:
                    self._abort_txn(sess)
            self.topology_changed()
            self.cond.notify_all()

        def back():
            with self.lock:
                self.oplog.term += 1
                self.primary = True
                self.write_noop("new primary")
                self.topology_changed()
        t = threading.Timer(max(0.0, seconds), back)
        t.daemon = True
        t.start()

    # ------------------------------------------------------------ dispatch

    def run(self, cmd, conn):
        """Run one command (caller holds no lock). Returns a reply dict."""
        name = next(iter(cmd))
        handler = COMMANDS.get(name) or COMMANDS.get(name.lower() if name.lower() in _CASELESS else "")
        db = cmd.get("$db", "admin")
        if handler is None:
            raise CommandError(59, "CommandNotFound", "no such command: '%s'" % name)
        with self.lock:
            sess, txn = self._txn_for(cmd, name)
            if name in _WRITE_CMDS and not self.primary and db != "local":
                err = not_primary()
                if "txnNumber" in cmd and txn is None:
                    err.extra["errorLabels"] = ["RetryableWriteError"]
                raise err
            # Retried retryable write: answer from the session record.
            if txn is None and sess is not None and name in _WRITE_CMDS and "txnNumber" in cmd:
                if sess.retry and sess.retry[0] == cmd["txnNumber"]:
                    return copy.deepcopy(sess.retry[1])
            try:
                reply = handler(self, cmd, db, conn, txn)
            except (CommandError, DuplicateKey):
                if txn is not None and sess.txn is txn:
                    self._abort_txn(sess)
                raise
            if txn is not None and reply.get("writeErrors") and sess.txn is txn:
                self._abort_txn(sess)
            if txn is None and sess is not None and name in _WRITE_CMDS and "txnNumber" in cmd:
                sess.retry = (cmd["txnNumber"], copy.deepcopy(reply))
            return reply

    def _txn_for(self, cmd, name):
        lsid = cmd.get("lsid")
        if not lsid or "id" not in lsid:
            return None, None
        key = bytes(lsid["id"])
        sess = self.sessions.get(key)
        if sess is None:
            sess = self.sessions[key] = Session()
        if cmd.get("autocommit") is not False:
            return sess, None
        tn = cmd.get("txnNumber")
        if tn is None:
            raise bad_value("txnNumber is required with autocommit:false")
        if name not in _TXN_OK:
            raise CommandError(263, "OperationNotSupportedInTransaction",
                               "Cannot run '%s' in a multi-document transaction." % name)
        if cmd.get("startTransaction"):
            if sess.txn_number is not None and tn < sess.txn_number:
                raise CommandError(225, "TransactionTooOld",
                                   "txnNumber %d is less than last txnNumber %d" % (tn, sess.txn_number))
            if sess.txn is not None:
                self._abort_txn(sess)
            sess.txn_number = tn
            sess.txn = Txn(tn)
            sess.state = "inProgress"
            sess.lsid = lsid
            return sess, sess.txn
        if sess.txn_number != tn:
            raise CommandError(251, "NoSuchTransaction",
                               "Transaction with { txnNumber: %d } has been aborted." % tn,
                               errorLabels=["TransientTransactionError"])
        if name in ("commitTransaction", "abortTransaction"):
            return sess, sess.txn
        if sess.txn is None:
            raise CommandError(251, "NoSuchTransaction",
                               "Transaction with { txnNumber: %d } has been aborted." % tn,
                               errorLabels=["TransientTransactionError"])
        return sess, sess.txn

    def _release_shadows(self, txn):
        for coll, key in txn.shadowed:
            shadow = self.uncommitted.get(coll)
            if shadow is not None:
                shadow.pop(key, None)
                if not shadow:
                    del self.uncommitted[coll]

    def committed_docs(self, coll, ordered=False):
        """The documents of `coll` as a reader outside every transaction sees them: an
        open transaction's writes are invisible until it commits."""
        shadow = self.uncommitted.get(coll)
        if not shadow:
            return coll.docs_in_id_order() if ordered else list(coll.docs.values())
        docs = coll.docs
        if ordered:
            out = []
            for k in sorted(set(docs) | set(shadow)):
                d = shadow[k] if k in shadow else docs[k]
                if d is not None:
                    out.append(d)
            return out
        return [d for k, d in docs.items() if k not in shadow] + [d for d in shadow.values() if d is not None]

    def _abort_txn(self, sess):
        txn = sess.txn
        if txn is None:
            return
        self._release_shadows(txn)
        for coll, key, old in reversed(txn.undo):
            if key in coll.docs:
                coll.delete(key)
            if old is not None:
                coll.insert(old)
        sess.txn = None
        sess.state = "aborted"

    def _commit_txn(self, sess):
        txn = sess.txn
        self._release_shadows(txn)
        sess.txn = None
        sess.state = "committed"
        ops = txn.ops
        if not ops or self.oplog is None:
            return
        front = {"lsid": self.full_lsid(sess.lsid), "txnNumber": Int64(txn.txn_number)}
        prev = _ZERO_OPTIME
        n = self.txn_chunk_ops
        chunks = [ops[i:i + n] for i in range(0, len(ops), n)]
        for i, chunk in enumerate(chunks):
            o = {"applyOps": chunk}
            if len(chunks) > 1:
                if i < len(chunks) - 1:
                    o["partialTxn"] = True
                else:
                    o["count"] = len(ops)
            k = self.oplog.append({"op": "c", "ns": "admin.$cmd", "o": o}, front,
                                  {"prevOpTime": prev})
            prev = {"ts": key_ts(k), "t": Int64(self.term)}

    # ------------------------------------------------------------ catalog helpers

    def get_coll(self, db, name):
        return self.catalog.coll(db, name)

    def create_coll(self, db, name, options, wl, ui=None, log=True):
        """Create a collection and log it like mongod: {create, <options>, idIndex}."""
        validate_ns(db, name)
        d = self.catalog.db(db, create=True)
        if name in d.colls or name in d.views():
            raise ns_exists("Collection %s.%s already exists." % (db, name))
        opts = {}
        for k, v in (options or {}).items():
            if k in ("create", "$db", "lsid", "txnNumber", "writeConcern", "$clusterTime",
                     "$readPreference", "autocommit", "startTransaction", "idIndex", "comment",
                     "autoIndexId", "apiVersion", "apiStrict", "apiDeprecationErrors"):
                continue
            if k == "size":
                v = Int64(-(-int(v) // 256) * 256) if options.get("capped") else v
                if isinstance(options.get("size"), int) and not isinstance(options.get("size"), Int64) \
                        and v < 2**31:
                    v = int(v)
            opts[k] = v
        if opts.get("capped") and "size" not in opts:
            raise bad_value("the 'size' field is required when 'capped' is true")
        coll = Collection(d, name, opts, uuid=ui)
        self.catalog.add_coll(coll)
        if log:
            o = {"create": name}
            o.update(opts)
            o["idIndex"] = id_index_spec()
            wl.log({"op": "c", "ns": db + ".$cmd", "ui": coll.uuid, "o": o})
        return coll

    def coll_for_write(self, db, name, wl):
        validate_ns(db, name)
        if name in (self.catalog.db(db).views() if self.catalog.db(db) else {}):
            raise CommandError(166, "CommandNotSupportedOnView", "Namespace %s.%s is a view, not a collection" % (db, name))
        coll = self.get_coll(db, name)
        if coll is None:
            # Implicit creation is its own plain entry, outside any
            # transaction or retryable write.
            coll = self.create_coll(db, name, {}, WriteLog(self))
        return coll

    # ------------------------------------------------------------ document writes

    def insert_doc(self, coll, doc, wl, key=None):
        """`key`: sortkey(doc["_id"]) when the caller has it (the _id is then first)."""
        if key is not None:
            coll.insert(doc, key)
            wl.undo(coll, key, None)
            wl.log({"op": "i", "ns": coll.ns, "ui": coll.uuid, "o": doc, "o2": {"_id": doc["_id"]}})
            return doc
        if "_id" not in doc:
            doc = {"_id": ObjectId(), **doc}
        elif next(iter(doc)) != "_id":
            # mongod moves _id to the front.
            idv = doc["_id"]
            doc = {"_id": idv, **{k: v for k, v in doc.items() if k != "_id"}}
        if isinstance(doc["_id"], list):
            raise CommandError(2, "BadValue", "can't use an array for _id")
        key = coll.insert(doc)
        wl.undo(coll, key, None)
        wl.log({"op": "i", "ns": coll.ns, "ui": coll.uuid, "o": doc, "o2": {"_id": doc["_id"]}})
        return doc

    def update_doc(self, coll, key, old, new, wl, replacement, diff=None):
        """Store `new` over `old`; log a $v:2 diff or a replacement. `diff`: the
        diff that turned `old` into `new` (applyOps logs it as given, as mongod
        does, instead of computing one). Returns True if the document changed."""
        if same(old, new):
            return False
        coll.replace(key, new)
        wl.undo(coll, key, old)
        o2 = {"_id": old["_id"]}
        if replacement:
            o = new
        elif diff is not None:
            o = {"$v": 2, "diff": diff}
        else:
            d = compute_diff(old, new)
            o = new if d is None else {"$v": 2, "diff": d}
        wl.log({"op": "u", "ns": coll.ns, "ui": coll.uuid, "o": o, "o2": o2})
        return True

    def delete_doc(self, coll, key, wl):
        doc = coll.delete(key)
        wl.undo(coll, key, doc)
        wl.log({"op": "d", "ns": coll.ns, "ui": coll.uuid, "o": {"_id": doc["_id"]}})
        return doc

    # ------------------------------------------------------------ reading

    def select(self, coll, flt, sort=None, committed=False):
        """Documents of `coll` matching `flt`, in sort order (default natural); with
        `committed`, as a reader outside every transaction sees them."""
        shadow = self.uncommitted.get(coll) if committed else None
        if flt and len(flt) == 1 and "_id" in flt and not Q._is_operator_doc(flt["_id"]) \
                and not isinstance(flt["_id"], (dict, list)) and sortkey(flt["_id"])[0] != 5:
            key = sortkey(flt["_id"])
            d = shadow[key] if shadow and key in shadow else coll.docs.get(key)
            return [d] if d is not None else []
        if sort and list(sort.keys()) == ["_id"] or sort and list(sort) == ["$natural"]:
            direction = next(iter(sort.values()))
            if shadow:
                docs = self.committed_docs(coll, ordered="_id" in sort)
            else:
                docs = coll.docs_in_id_order() if "_id" in sort else list(coll.docs.values())
            if direction < 0:
                docs.reverse()
            sort = None
        else:
            docs = self.committed_docs(coll) if shadow else list(coll.docs.values())
        if flt:
            docs = [d for d in docs if Q.matches(d, flt)]
        if sort:
            Q.sort_docs(docs, sort)
        return docs


def _resolve(eng, db, name, must_exist=False):
    if not isinstance(name, str):
        raise invalid_ns("collection name has invalid type %s" % type(name).__name__)
    coll = eng.get_coll(db, name)
    if coll is None and must_exist:
        raise ns_not_found("ns does not exist: %s.%s" % (db, name))
    return coll


# ================================================================ handlers

COMMANDS = {}
_CASELESS = {"ismaster", "findandmodify", "buildinfo", "dbhash"}


def command(*names):
    def deco(fn):
        for n in names:
            COMMANDS[n] = fn
        return fn
    return deco


@command("hello", "isMaster", "ismaster")
def cmd_hello(eng, cmd, db, conn, txn):
    tv = cmd.get("topologyVersion")
    wait_ms = cmd.get("maxAwaitTimeMS")
    if tv is not None and wait_ms is not None:
        # Awaitable hello: reply when the topology changes or the time is up.
        if tv.get("processId") == eng.process_id and int(tv.get("counter", -1)) == eng.topo_counter:
            deadline = time.monotonic() + int(wait_ms) / 1000.0
            start = eng.topo_counter
            while eng.topo_counter == start and not conn.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                eng.topo_cond.wait(min(left, 0.5))
    legacy = next(iter(cmd)) != "hello"
    r = {"topologyVersion": {"processId": eng.process_id, "counter": Int64(eng.topo_counter)}}
    if not eng.standalone:
        r["hosts"] = [eng.host]
        r["setName"] = eng.set_name
        r["setVersion"] = 1
    r["ismaster" if legacy else "isWritablePrimary"] = eng.primary
    if not eng.standalone:
        r["secondary"] = not eng.primary
        if eng.primary:
            r["primary"] = eng.host
        r["me"] = eng.host
        if eng.primary:
            r["electionId"] = eng.election_id()
        op = eng.last_optime()
        wd = datetime.datetime.utcfromtimestamp(op["ts"].time) if op["ts"].time else datetime.datetime(1970, 1, 1)
        r["lastWrite"] = {"opTime": op, "lastWriteDate": wd, "majorityOpTime": op, "majorityWriteDate": wd}
    if legacy and cmd.get("helloOk"):
        r["helloOk"] = True
    r.update({"maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48000000,
              "maxWriteBatchSize": 100000, "localTime": wall_now(),
              "logicalSessionTimeoutMinutes": 30, "connectionId": conn.id,
              "minWireVersion": 0, "maxWireVersion": 17, "readOnly": False, "ok": 1.0})
    return r


@command("ping")
def cmd_ping(eng, cmd, db, conn, txn):
    return {"ok": 1.0}


@command("buildInfo", "buildinfo")
def cmd_build_info(eng, cmd, db, conn, txn):
    return {"version": "6.0.0", "gitVersion": "ancre-simulator", "modules": [],
            "allocator": "system", "javascriptEngine": "none", "sysInfo": "deprecated",
            "versionArray": [6, 0, 0, 0], "openssl": {"running": "disabled", "compiled": "disabled"},
            "buildEnvironment": {}, "bits": 64, "debug": False, "maxBsonObjectSize": 16 * 1024 * 1024,
            "storageEngines": ["inMemory"], "ok": 1.0}


@command("getParameter")
def cmd_get_parameter(eng, cmd, db, conn, txn):
    params = {"featureCompatibilityVersion": {"version": "6.0"}, "authenticationMechanisms": [],
              "maxBSONDepth": 100, "transactionLifetimeLimitSeconds": 60}
    r = {}
    if cmd.get("getParameter") == "*":
        r.update(params)
    else:
        for k in cmd:
            if k in params:
                r[k] = params[k]
    r["ok"] = 1.0
    return r


@command("serverStatus")
def cmd_server_status(eng, cmd, db, conn, txn):
    r = {"host": eng.host, "version": "6.0.0", "process": "mongod", "pid": Int64(os.getpid()),
         "uptime": float(int(time.time() - eng.started)), "localTime": wall_now(),
         "connections": {"current": len(conn.server.conns), "available": 1000},
         "storageEngine": {"name": "inMemory"}}
    if not eng.standalone:
        r["repl"] = {"hosts": [eng.host], "setName": eng.set_name, "isWritablePrimary": eng.primary,
                     "secondary": not eng.primary, "me": eng.host}
        r["oplog"] = eng.oplog.stats()
    r["ok"] = 1.0
    return r


@command("replSetGetStatus")
def cmd_repl_status(eng, cmd, db, conn, txn):
    if eng.standalone:
        raise CommandError(76, "NoReplicationEnabled", "not running with --replSet")
    op = eng.last_optime()
    return {"set": eng.set_name, "date": wall_now(), "myState": 1 if eng.primary else 2,
            "term": Int64(eng.term),
            "optimes": {"lastCommittedOpTime": op, "appliedOpTime": op, "durableOpTime": op},
            "members": [{"_id": 0, "name": eng.host, "health": 1.0, "state": 1 if eng.primary else 2,
                         "stateStr": "PRIMARY" if eng.primary else "SECONDARY", "optime": op,
                         "self": True}], "ok": 1.0}


@command("connectionStatus")
def cmd_connection_status(eng, cmd, db, conn, txn):
    return {"authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []}, "ok": 1.0}


@command("whatsmyuri")
def cmd_whatsmyuri(eng, cmd, db, conn, txn):
    return {"you": conn.peer, "ok": 1.0}


@command("startSession")
def cmd_start_session(eng, cmd, db, conn, txn):
    return {"id": {"id": Binary(os.urandom(16), 4)}, "timeoutMinutes": 30, "ok": 1.0}


@command("endSessions", "refreshSessions", "killSessions", "killAllSessions")
def cmd_end_sessions(eng, cmd, db, conn, txn):
    if next(iter(cmd)) == "endSessions":
        for lsid in cmd.get("endSessions") or []:
            sess = eng.sessions.pop(bytes(lsid.get("id", b"")), None)
            if sess is not None and sess.txn is not None:
                eng._abort_txn(sess)
    return {"ok": 1.0}


@command("commitTransaction")
def cmd_commit(eng, cmd, db, conn, txn):
    sess = eng.sessions[bytes(cmd["lsid"]["id"])]
    if txn is None:
        if sess.state == "committed":
            return {"ok": 1.0}  # retried commit
        raise CommandError(251, "NoSuchTransaction", "Transaction has been aborted.",
                           errorLabels=["TransientTransactionError"])
    eng._commit_txn(sess)
    return {"ok": 1.0}


@command("abortTransaction")
def cmd_abort(eng, cmd, db, conn, txn):
    sess = eng.sessions[bytes(cmd["lsid"]["id"])]
    if txn is None:
        raise CommandError(251, "NoSuchTransaction", "Transaction has been aborted.",
                           errorLabels=["TransientTransactionError"])
    eng._abort_txn(sess)
    return {"ok": 1.0}


def _wl(eng, cmd, txn):
    return WriteLog(eng, cmd.get("lsid"), cmd.get("txnNumber"), txn)


# ------------------------------------------------------------ listings

@command("listDatabases")
def cmd_list_databases(eng, cmd, db, conn, txn):
    out = []
    names = sorted(eng.catalog.dbs)
    if eng.oplog is not None and "local" not in names:
        names = sorted(names + ["local"])
    total = 0
    for name in names:
        d = eng.catalog.db(name)
        size = 0
        if d:
            size = sum(len(c.docs) for c in d.colls.values()) * 128 + 8192 * len(d.colls)
        if name == "local" and eng.oplog is not None:
            size += eng.oplog.bytes
        entry = {"name": name, "sizeOnDisk": Int64(size), "empty": size == 0}
        if cmd.get("filter") and not Q.matches(entry, cmd["filter"]):
            continue
        total += size
        out.append({"name": name} if cmd.get("nameOnly") else entry)
    r = {"databases": out}
    if not cmd.get("nameOnly"):
        r["totalSize"] = Int64(total)
        r["totalSizeMb"] = Int64(total // (1024 * 1024))
    r["ok"] = 1.0
    return r


def _coll_entries(eng, db):
    d = eng.catalog.db(db)
    out = []
    if db == "local" and eng.oplog is not None:
        out.append({"name": "oplog.rs", "type": "collection",
                    "options": {"capped": True, "size": Int64(eng.oplog.cap_bytes)},
                    "info": {"readOnly": False, "uuid": _OPLOG_UUID}})
    if d is None:
        return out
    for name in sorted(d.colls):
        c = d.colls[name]
        e = {"name": name, "type": "collection", "options": copy.deepcopy(c.options),
             "info": c.info()}
        if c.index("_id_"):
            e["idIndex"] = id_index_spec()
        out.append(e)
    for name, v in sorted(d.views().items()):
        opts = {"viewOn": v["viewOn"], "pipeline": v.get("pipeline", [])}
        if "collation" in v:
            opts["collation"] = v["collation"]
        out.append({"name": name, "type": "view", "options": opts, "info": {"readOnly": True}})
    return out


_OPLOG_UUID = Binary(os.urandom(16), 4)


@command("listCollections")
def cmd_list_collections(eng, cmd, db, conn, txn):
    entries = _coll_entries(eng, db)
    flt = cmd.get("filter") or {}
    entries = [e for e in entries if Q.matches(e, flt)]
    if cmd.get("nameOnly"):
        entries = [{"name": e["name"], "type": e["type"]} for e in entries]
    return _list_cursor(eng, db + ".$cmd.listCollections", entries, cmd.get("cursor") or {})


def _list_cursor(eng, ns, docs, cursor_opts):
    cur = ListCursor(ns, docs)
    n = cursor_opts.get("batchSize", FIRST_BATCH_DOCS) if cursor_opts else FIRST_BATCH_DOCS
    batch = cur.batch(n if n else 0) if n != 0 else []
    cid = 0 if cur.exhausted() else eng.cursors.register(cur)
    return cursor_reply(cid, ns, batch, True)


@command("listIndexes")
def cmd_list_indexes(eng, cmd, db, conn, txn):
    name = cmd["listIndexes"]
    if db == "local" and name == "oplog.rs" and eng.oplog is not None:
        specs = []
    else:
        coll = _resolve(eng, db, name, must_exist=True)
        specs = copy.deepcopy(coll.indexes)
    return _list_cursor(eng, "%s.%s" % (db, name), specs, cmd.get("cursor") or {})


# ------------------------------------------------------------ find / getMore

def _oplog_find(eng, cmd, db, flt, sort, limit, skip):
    op = eng.oplog
    rest = dict(flt)
    start, end = op.first_seq, None
    cond = rest.pop("ts", None)
    if cond is not None:
        if not Q._is_operator_doc(cond):
            cond = {"$eq": cond}
        for k, v in cond.items():
            if not isinstance(v, Timestamp):
                rest.setdefault("$and", []).append({"ts": {k: v}})
                continue
            key = ts_key(v)
            if k == "$gte":
                start = max(start, op.seq_for_key(key))
            elif k == "$gt":
                start = max(start, op.seq_for_key(key, strict=True))
            elif k == "$lt":
                e = op.seq_for_key(key)
                end = e if end is None else min(end, e)
            elif k == "$lte":
                e = op.seq_for_key(key, strict=True)
                end = e if end is None else min(end, e)
            elif k == "$eq":
                start = max(start, op.seq_for_key(key))
                e = op.seq_for_key(key, strict=True)
                end = e if end is None else min(end, e)
            else:
                rest.setdefault("$and", []).append({"ts": {k: v}})
    tailable = bool(cmd.get("tailable"))
    reverse = False
    if sort:
        k, direction = next(iter(sort.items()))
        if k in ("$natural", "ts") and direction < 0:
            reverse = True
    if reverse:
        # Newest first: materialise (used for "last entry" lookups).
        stop = op.end_seq if end is None else min(end, op.end_seq)
        out = []
        seq = stop - 1
        while seq >= start and (not limit or len(out) < limit + skip):
            if not rest or Q.matches(op.doc(seq), rest):
                out.append(op.raw(seq))
            seq -= 1
        return ListCursor("local.oplog.rs", out[skip:])
    if not tailable and end is None:
        end = op.end_seq  # a plain scan sees the oplog as of now
    cur = OplogCursor(op, "local.oplog.rs", start, end, rest or None, tailable,
                      bool(cmd.get("awaitData")), limit=limit + skip if limit else 0)
    if skip:
        cur.batch(skip)
        cur.returned = 0
        cur.limit = limit
    return cur


def _projector(proj):
    return (lambda d: Q.project(d, proj)) if proj else None


def _check_readable(eng, cmd):
    if eng.primary or eng.standalone:
        return
    rp = cmd.get("$readPreference") or {}
    if rp.get("mode", "primary") == "primary":
        raise CommandError(13435, "NotPrimaryNoSecondaryOk", "not primary and secondaryOk=false")


def _index_bounds(docs, lower, upper):
    """`min` (inclusive) and `max` (exclusive) bounds on the `_id` index: plain
    canonical order, without the type bracketing of `$gte`/`$lt`."""
    if lower is None and upper is None:
        return docs
    for bound in (lower, upper):
        if bound is not None and (not isinstance(bound, dict) or list(bound) != ["_id"]):
            raise CommandError(51174, "Location51174",
                               "min/max must match the hinted index; only {_id: ...} is supported")
    lo = sortkey(lower["_id"]) if lower is not None else None
    hi = sortkey(upper["_id"]) if upper is not None else None
    return [d for d in docs
            if (lo is None or sortkey(d["_id"]) >= lo) and (hi is None or sortkey(d["_id"]) < hi)]


@command("find")
def cmd_find(eng, cmd, db, conn, txn):
    _check_readable(eng, cmd)
    name = cmd["find"]
    flt = cmd.get("filter") or {}
    sort = cmd.get("sort") or None
    limit = abs(int(cmd.get("limit", 0) or 0))
    skip = int(cmd.get("skip", 0) or 0)
    single = cmd.get("singleBatch") or int(cmd.get("limit", 0) or 0) < 0
    bs = cmd.get("batchSize")
    if bs is not None and bs < 0:
        raise bad_value("BatchSize value must be non-negative, but received: %d" % bs)
    ns = "%s.%s" % (db, name)
    if db == "local" and name == "oplog.rs" and eng.oplog is not None:
        cur = _oplog_find(eng, cmd, db, flt, sort, limit, skip)
        cur.projector = _projector(cmd.get("projection"))
    else:
        if cmd.get("tailable"):
            coll = eng.get_coll(db, name)
            if coll is None or not coll.capped:
                raise bad_value("error processing query: %s tailable cursor requested on non capped collection" % ns)
        d = eng.catalog.db(db)
        views = d.views() if d else {}
        if name in views:
            docs = _run_pipeline(eng, db, views[name]["viewOn"],
                                 list(views[name].get("pipeline", [])) + [{"$match": flt}], txn)
            if sort:
                Q.sort_docs(docs, sort)
        else:
            coll = eng.get_coll(db, name)
            docs = eng.select(coll, flt, sort, committed=txn is None) if coll else []
            docs = _index_bounds(docs, cmd.get("min"), cmd.get("max"))
        if skip:
            docs = docs[skip:]
        if limit:
            docs = docs[:limit]
        cur = ListCursor(ns, docs, _projector(cmd.get("projection")))
    n = FIRST_BATCH_DOCS if bs is None else bs
    if limit and (n == 0 or n > limit) and bs is None:
        n = limit
    batch = cur.batch(n) if (n or bs is None) else []
    if single or cur.exhausted():
        cid = 0
    else:
        cid = eng.cursors.register(cur)
    if isinstance(cur, OplogCursor) and cur.tailable and cid == 0 and not single:
        cid = eng.cursors.register(cur)
    return cursor_reply(cid, ns, batch, True)


@command("getMore")
def cmd_get_more(eng, cmd, db, conn, txn):
    cid = int(cmd["getMore"])
    cur = eng.cursors.get(cid)
    ns = "%s.%s" % (db, cmd.get("collection"))
    if cur is None or (cur.ns != ns and not cur.ns.startswith(db + ".$cmd")):
        raise CommandError(43, "CursorNotFound", "cursor id %d not found" % cid)
    if conn.server.consume_drop_mid_cursor():
        conn.abort()
        return None
    n = int(cmd.get("batchSize") or 0)
    try:
        if cur.killed:
            raise CommandError(*cur.killed)
        batch = cur.batch(n)
        if not batch and isinstance(cur, OplogCursor) and cur.tailable and cur.await_data:
            # awaitData: wait for new entries up to maxTimeMS (default 1 s).
            deadline = time.monotonic() + int(cmd.get("maxTimeMS") or 1000) / 1000.0
            while not batch and not cur.killed and not conn.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if eng.oplog.end_seq <= cur.seq:
                    eng.oplog.wait_for_append(left)
                if cur.killed:
                    raise CommandError(*cur.killed)
                if eng.cursors.get(cid) is not cur:
                    raise CommandError(43, "CursorNotFound", "cursor id %d not found" % cid)
                batch = cur.batch(n)
    except CommandError:
        eng.cursors.remove(cid)
        raise
    if cur.exhausted():
        eng.cursors.remove(cid)
        cid = 0
    return cursor_reply(cid, cur.ns, batch, False)


@command("killCursors")
def cmd_kill_cursors(eng, cmd, db, conn, txn):
    killed, missing = [], []
    for cid in cmd.get("cursors") or []:
        cur = eng.cursors.remove(cid)
        if cur is not None:
            cur.killed = (43, "CursorKilled", "cursor killed")
            killed.append(Int64(cid))
        else:
            missing.append(Int64(cid))
    eng.cond.notify_all()
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [],
            "cursorsUnknown": [], "ok": 1.0}


@command("count")
def cmd_count(eng, cmd, db, conn, txn):
    name = cmd["count"]
    if db == "local" and name == "oplog.rs" and eng.oplog is not None:
        if not cmd.get("query"):
            return {"n": eng.oplog.count(), "ok": 1.0}
        docs = [eng.oplog.doc(s) for s in range(eng.oplog.first_seq, eng.oplog.end_seq)]
    else:
        coll = eng.get_coll(db, name)
        docs = (eng.committed_docs(coll) if txn is None else list(coll.docs.values())) if coll else []
    flt = cmd.get("query") or {}
    n = sum(1 for d in docs if Q.matches(d, flt)) if flt else len(docs)
    n = max(0, n - int(cmd.get("skip") or 0))
    if cmd.get("limit"):
        n = min(n, abs(int(cmd["limit"])))
    return {"n": n, "ok": 1.0}


@command("distinct")
def cmd_distinct(eng, cmd, db, conn, txn):
    coll = eng.get_coll(db, cmd["distinct"])
    vals = {}
    for d in (eng.select(coll, cmd.get("query") or {}, committed=txn is None) if coll else []):
        for v in Q._expand(Q.get_values(d, cmd["key"])):
            if not isinstance(v, list):
                vals.setdefault(sortkey(v), v)
    return {"values": [vals[k] for k in sorted(vals)], "ok": 1.0}


def _run_pipeline(eng, db, name, pipeline, txn=None):
    if db == "local" and name == "oplog.rs" and eng.oplog is not None:
        op = eng.oplog
        docs = [op.doc(s) for s in range(op.first_seq, op.end_seq)]
    else:
        coll = eng.get_coll(db, name)
        docs = (eng.committed_docs(coll) if txn is None else list(coll.docs.values())) if coll else []
    for stage in pipeline:
        op, arg = next(iter(stage.items()))
        if op == "$match":
            docs = [d for d in docs if Q.matches(d, arg)]
        elif op == "$sort":
            docs = Q.sort_docs(list(docs), arg)
        elif op == "$limit":
            docs = docs[:int(arg)]
        elif op == "$skip":
            docs = docs[int(arg):]
        elif op == "$project":
            docs = [Q.project(d, arg) for d in docs]
        elif op == "$sample":
            size = int(arg.get("size", 0))
            docs = random.sample(docs, min(size, len(docs))) if size > 0 else []
        elif op == "$count":
            docs = [{arg: len(docs)}] if docs else []
        elif op == "$group":
            docs = _group(docs, arg)
        else:
            raise CommandError(40324, "Location40324", "Unrecognized pipeline stage name: '%s'" % op)
    return docs


def _group(docs, spec):
    def ev(d, e):
        if isinstance(e, str) and e.startswith("$"):
            return Q.get_path(d, e[1:], None)
        return e
    groups = {}
    for d in docs:
        gid = ev(d, spec["_id"])
        g = groups.setdefault(sortkey(gid), {"_id": gid})
        for field, acc in spec.items():
            if field == "_id":
                continue
            (aop, aexpr), = acc.items()
            v = ev(d, aexpr)
            if aop == "$sum":
                g[field] = g.get(field, 0) + (v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0)
            elif aop in ("$max", "$min"):
                cur = g.get(field)
                if cur is None or (sortkey(v) > sortkey(cur)) == (aop == "$max"):
                    g[field] = v
            elif aop == "$first":
                g.setdefault(field, v)
            elif aop == "$last":
                g[field] = v
            elif aop == "$push":
                g.setdefault(field, []).append(v)
            else:
                raise CommandError(15952, "Location15952", "unknown group operator '%s'" % aop)
    return list(groups.values())


@command("aggregate")
def cmd_aggregate(eng, cmd, db, conn, txn):
    _check_readable(eng, cmd)
    name = cmd["aggregate"]
    if not isinstance(name, str):
        raise CommandError(40324, "Location40324", "collection-less aggregate is not supported")
    d = eng.catalog.db(db)
    views = d.views() if d else {}
    pipeline = list(cmd.get("pipeline") or [])
    if name in views:
        pipeline = list(views[name].get("pipeline", [])) + pipeline
        name = views[name]["viewOn"]
    docs = _run_pipeline(eng, db, name, pipeline, txn)
    return _list_cursor(eng, "%s.%s" % (db, cmd["aggregate"]), docs, cmd.get("cursor") or {})


# ------------------------------------------------------------ CRUD writes

def _write_reply(n, errors, extra=None):
    r = {"n": n}
    if extra:
        r.update(extra)
    if errors:
        r["writeErrors"] = errors
    r["ok"] = 1.0
    return r


@command("insert")
def cmd_insert(eng, cmd, db, conn, txn):
    name = cmd["insert"]
    docs = cmd.get("documents") or []
    ordered = cmd.get("ordered", True)
    wl = _wl(eng, cmd, txn)
    coll = eng.coll_for_write(db, name, wl)
    n, errors = 0, []
    for i, doc in enumerate(docs):
        try:
            eng.insert_doc(coll, doc, wl)
            n += 1
        except DuplicateKey as e:
            errors.append(e.write_error(i))
            if ordered:
                break
        except CommandError as e:
            errors.append({"index": i, "code": e.code, "errmsg": e.errmsg})
            if ordered:
                break
    return _write_reply(n, errors)


def _replacement(old, u, owned=False):
    """`u` as a replacement of `old` (`_id` first, kept). Values are deep-copied
    unless the caller `owned` `u` (freshly decoded and used nowhere else): stored
    documents are never mutated in place, so sharing them is safe."""
    if "_id" in u and old is not None and not same(u["_id"], old["_id"]) and \
            sortkey(u["_id"]) != sortkey(old["_id"]):
        raise CommandError(66, "ImmutableField",
                           "After applying the update, the (immutable) field '_id' was found to have been altered")
    new = {"_id": old["_id"] if old is not None else u.get("_id", ObjectId())}
    if owned:
        for k, v in u.items():
            if k != "_id":
                new[k] = v
        return new
    for k, v in u.items():
        if k != "_id":
            new[k] = copy.deepcopy(v)
    return new


def _do_update(eng, coll, q, u, upsert, multi, wl, sort=None):
    """Returns (matched, modified, upserted_id or None, [(old, new)])."""
    if isinstance(u, list):
        raise CommandError(2, "BadValue", "pipeline-style updates are not supported by the simulator")
    replacement = not Q.is_operator_update(u)
    if replacement and multi:
        raise CommandError(9, "FailedToParse", "multi update is not supported for replacement-style update")
    targets = eng.select(coll, q, sort) if coll else []
    if not multi:
        targets = targets[:1]
    matched = modified = 0
    changes = []
    for old in targets:
        key = sortkey(old["_id"])
        new = _replacement(old, u) if replacement else Q.apply_update(old, u)
        matched += 1
        if eng.update_doc(coll, key, old, new, wl, replacement):
            modified += 1
        changes.append((old, new))
    if matched == 0 and upsert:
        seed = Q.upsert_seed(q)
        if replacement:
            new = _replacement(None, dict(u) if "_id" in u or "_id" not in seed else dict(u, _id=seed["_id"]))
        else:
            new = Q.apply_update(seed, u, is_insert=True)
            if "_id" not in new:
                new = {"_id": ObjectId(), **new}
        doc = eng.insert_doc(coll, new, wl)
        changes.append((None, doc))
        return 0, 0, doc["_id"], changes
    return matched, modified, None, changes


@command("update")
def cmd_update(eng, cmd, db, conn, txn):
    name = cmd["update"]
    ordered = cmd.get("ordered", True)
    wl = _wl(eng, cmd, txn)
    coll = eng.get_coll(db, name)
    n = nmod = 0
    upserted, errors = [], []
    for i, spec in enumerate(cmd.get("updates") or []):
        try:
            if coll is None and spec.get("upsert"):
                coll = eng.coll_for_write(db, name, wl)
            if coll is None:
                Q.is_operator_update(spec.get("u"))
                continue
            m, mod, up_id, _ = _do_update(eng, coll, spec.get("q") or {}, spec.get("u") or {},
                                          spec.get("upsert", False), spec.get("multi", False), wl)
            n += m
            nmod += mod
            if up_id is not None:
                n += 1
                upserted.append({"index": i, "_id": up_id})
        except DuplicateKey as e:
            errors.append(e.write_error(i))
            if ordered:
                break
        except CommandError as e:
            errors.append({"index": i, "code": e.code, "codeName": e.code_name, "errmsg": e.errmsg})
            if ordered:
                break
    extra = {"nModified": nmod}
    if upserted:
        extra = {"upserted": upserted, "nModified": nmod}
    return _write_reply(n, errors, extra)


@command("delete")
def cmd_delete(eng, cmd, db, conn, txn):
    name = cmd["delete"]
    wl = _wl(eng, cmd, txn)
    coll = eng.get_coll(db, name)
    n = 0
    for spec in cmd.get("deletes") or []:
        if coll is None:
            continue
        targets = eng.select(coll, spec.get("q") or {})
        if spec.get("limit", 0) == 1:
            targets = targets[:1]
        for d in targets:
            eng.delete_doc(coll, sortkey(d["_id"]), wl)
            n += 1
    return _write_reply(n, [])


@command("findAndModify", "findandmodify")
def cmd_find_and_modify(eng, cmd, db, conn, txn):
    name = cmd[next(iter(cmd))]
    wl = _wl(eng, cmd, txn)
    q = cmd.get("query") or {}
    sort = cmd.get("sort") or None
    coll = eng.get_coll(db, name)
    fields = cmd.get("fields")
    if cmd.get("remove"):
        targets = eng.select(coll, q, sort)[:1] if coll else []
        for d in targets:
            eng.delete_doc(coll, sortkey(d["_id"]), wl)
        value = Q.project(targets[0], fields) if targets else None
        return {"lastErrorObject": {"n": len(targets)}, "value": value, "ok": 1.0}
    if coll is None:
        if not cmd.get("upsert"):
            return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None, "ok": 1.0}
        coll = eng.coll_for_write(db, name, wl)
    try:
        m, mod, up_id, changes = _do_update(eng, coll, q, cmd.get("update") or {},
                                            cmd.get("upsert", False), False, wl, sort)
    except DuplicateKey as e:
        raise CommandError(11000, "DuplicateKey", e.errmsg(), keyPattern=e.key_pattern,
                           keyValue=e.key_value)
    value = None
    if changes:
        old, new = changes[0]
        value = new if cmd.get("new") else old
        value = Q.project(value, fields) if value is not None else None
    leo = {"n": 1 if changes else 0, "updatedExisting": bool(m)}
    if up_id is not None:
        leo["upserted"] = up_id
    return {"lastErrorObject": leo, "value": value, "ok": 1.0}


# ------------------------------------------------------------ DDL

@command("create")
def cmd_create(eng, cmd, db, conn, txn):
    name = cmd["create"]
    validate_ns(db, name)
    wl = _wl(eng, cmd, txn)
    if "viewOn" in cmd:
        d = eng.catalog.db(db, create=True)
        if name in d.colls or name in d.views():
            raise ns_exists("Collection %s.%s already exists." % (db, name))
        sv = d.colls.get("system.views") or eng.create_coll(db, "system.views", {}, wl)
        view = {"_id": "%s.%s" % (db, name), "viewOn": cmd["viewOn"], "pipeline": cmd.get("pipeline", [])}
        if "collation" in cmd:
            view["collation"] = cmd["collation"]
        eng.insert_doc(sv, view, wl)
        return {"ok": 1.0}
    eng.create_coll(db, name, cmd, wl)
    return {"ok": 1.0}


def _drop_coll(eng, coll, wl):
    n = len(coll.docs)
    eng.catalog.remove_coll(coll)
    eng.cursors.kill_ns_cursors(coll.ns, 175, "QueryPlanKilled",
                                "PlanExecutor error during find command :: caused by :: collection dropped")
    wl.log({"op": "c", "ns": coll.db.name + ".$cmd", "ui": coll.uuid, "o": {"drop": coll.name},
            "o2": {"numRecords": n}})
    return n


@command("drop")
def cmd_drop(eng, cmd, db, conn, txn):
    name = cmd["drop"]
    wl = _wl(eng, cmd, txn)
    coll = eng.get_coll(db, name)
    if coll is None:
        d = eng.catalog.db(db)
        views = d.views() if d else {}
        if name in views:
            sv = d.colls["system.views"]
            eng.delete_doc(sv, sortkey("%s.%s" % (db, name)), wl)
            return {"ns": "%s.%s" % (db, name), "ok": 1.0}
        raise ns_not_found("ns not found")
    _drop_coll(eng, coll, wl)
    return {"nIndexesWas": len(coll.indexes), "ns": coll.ns, "ok": 1.0}


@command("dropDatabase")
def cmd_drop_database(eng, cmd, db, conn, txn):
    if db in ("local",):
        raise CommandError(20, "IllegalOperation", "Cannot drop '%s' database while replication is active" % db)
    d = eng.catalog.db(db)
    if d is None:
        return {"ok": 1.0}
    wl = _wl(eng, cmd, txn)
    # mongod drops (and logs) each collection, then logs dropDatabase.
    for name in sorted(d.colls, key=lambda n: (n.startswith("system."), n)):
        _drop_coll(eng, d.colls[name], wl)
    eng.catalog.dbs.pop(db, None)
    wl.log({"op": "c", "ns": db + ".$cmd", "o": {"dropDatabase": 1}})
    return {"dropped": db, "ok": 1.0}


def _split_ns(ns):
    if not isinstance(ns, str) or "." not in ns:
        raise invalid_ns("Invalid namespace specified '%s'" % ns)
    return ns.split(".", 1)


@command("renameCollection")
def cmd_rename(eng, cmd, db, conn, txn):
    if db != "admin":
        raise CommandError(13, "Unauthorized", "renameCollection may only be run against the admin database.")
    src_db, src = _split_ns(cmd["renameCollection"])
    dst_db, dst = _split_ns(cmd.get("to"))
    validate_ns(dst_db, dst)
    wl = _wl(eng, cmd, txn)
    coll = eng.get_coll(src_db, src)
    if coll is None:
        raise ns_not_found("Source collection %s.%s does not exist" % (src_db, src))
    if (src_db, src) == (dst_db, dst):
        raise CommandError(20, "IllegalOperation", "Can't rename a collection to itself")
    target = eng.get_coll(dst_db, dst)
    if target is not None and not cmd.get("dropTarget"):
        raise ns_exists("target namespace exists")
    if src_db == dst_db:
        o = {"renameCollection": coll.ns, "to": "%s.%s" % (dst_db, dst), "stayTemp": bool(cmd.get("stayTemp", False))}
        if target is not None:
            eng.catalog.remove_coll(target)
            o["dropTarget"] = target.uuid
        eng.catalog.remove_coll(coll)
        eng.cursors.kill_ns_cursors(coll.ns, 175, "QueryPlanKilled",
                                    "PlanExecutor error during find command :: caused by :: collection renamed")
        coll.name = dst
        coll.db = eng.catalog.db(dst_db, create=True)
        eng.catalog.add_coll(coll)
        wl.log({"op": "c", "ns": src_db + ".$cmd", "ui": coll.uuid, "o": o})
        return {"ok": 1.0}
    # Across databases mongod copies into a temporary collection of the target
    # database, renames it over the target, then drops the source.
    tmp = "tmp%s.renameCollection" % "".join(random.choice(string.ascii_letters + string.digits)
                                              for _ in range(5))
    tmp_coll = eng.create_coll(dst_db, tmp, coll.options, wl)
    for doc in list(coll.docs.values()):
        eng.insert_doc(tmp_coll, copy.deepcopy(doc), wl)
    for spec in coll.indexes:
        if spec["name"] != "_id_":
            s = copy.deepcopy(spec)
            tmp_coll.add_index(s)
            o = {"createIndexes": tmp}
            o.update(s)
            wl.log({"op": "c", "ns": dst_db + ".$cmd", "ui": tmp_coll.uuid, "o": o})
    o = {"renameCollection": tmp_coll.ns, "to": "%s.%s" % (dst_db, dst), "stayTemp": False}
    if target is not None:
        eng.catalog.remove_coll(target)
        o["dropTarget"] = target.uuid
    eng.catalog.remove_coll(tmp_coll)
    tmp_coll.name = dst
    eng.catalog.add_coll(tmp_coll)
    wl.log({"op": "c", "ns": dst_db + ".$cmd", "ui": tmp_coll.uuid, "o": o})
    _drop_coll(eng, coll, wl)
    return {"ok": 1.0}


@command("collMod")
def cmd_coll_mod(eng, cmd, db, conn, txn):
    name = cmd["collMod"]
    wl = _wl(eng, cmd, txn)
    d = eng.catalog.db(db)
    views = d.views() if d else {}
    if name in views:
        sv = d.colls["system.views"]
        old = views[name]
        new = dict(old)
        for k in ("viewOn", "pipeline"):
            if k in cmd:
                new[k] = cmd[k]
        eng.update_doc(sv, sortkey(old["_id"]), old, new, wl, replacement=True)
        return {"ok": 1.0}
    coll = _resolve(eng, db, name, must_exist=True)
    o = {"collMod": name}
    o2 = {"collectionOptions_old": {"uuid": coll.uuid}}
    reply = {}
    for k in ("validator", "validationLevel", "validationAction", "expireAfterSeconds",
              "changeStreamPreAndPostImages"):
        if k in cmd:
            if k in coll.options:
                o2["collectionOptions_old"][k] = coll.options[k]
            coll.options[k] = cmd[k]
            o[k] = cmd[k]
    if "index" in cmd:
        ispec = cmd["index"]
        spec = None
        if "name" in ispec:
            spec = coll.index(ispec["name"])
        elif "keyPattern" in ispec:
            spec = next((s for s in coll.indexes if same(s["key"], ispec["keyPattern"])), None)
        if spec is None:
            raise CommandError(27, "IndexNotFound", "cannot find index %s for ns %s.%s" % (ispec, db, name))
        oi = {"name": spec["name"]}
        for k in ("hidden", "expireAfterSeconds", "prepareUnique", "unique"):
            if k in ispec:
                new = Int64(ispec[k]) if k == "expireAfterSeconds" else ispec[k]
                old = spec.get(k, False if k != "expireAfterSeconds" else None)
                if k == "expireAfterSeconds" and k not in spec:
                    raise CommandError(2, "BadValue", "no expireAfterSeconds field to update")
                if k == "hidden" and spec["name"] == "_id_":
                    raise bad_value("can't hide _id index")
                oi[k] = new
                if old is not None:
                    o2[k + "_old"] = Int64(old) if k == "expireAfterSeconds" else old
                    reply[k + "_old"] = o2[k + "_old"]
                reply[k + "_new"] = new
                spec[k] = new if k != "expireAfterSeconds" else Int64(new)
                if k == "hidden" and not new:
                    spec.pop("hidden", None)
        o["index"] = oi
    wl.log({"op": "c", "ns": db + ".$cmd", "ui": coll.uuid, "o": o, "o2": o2})
    reply["ok"] = 1.0
    return reply


def _normalize_index(spec):
    if "key" not in spec or "name" not in spec:
        raise CommandError(9, "FailedToParse", "Index spec must have 'key' and 'name': %s" % spec)
    out = {"v": 2, "key": spec["key"], "name": spec["name"]}
    for k, v in spec.items():
        if k not in ("v", "key", "name", "ns", "background"):
            out[k] = v
    return out


@command("createIndexes")
def cmd_create_indexes(eng, cmd, db, conn, txn):
    name = cmd["createIndexes"]
    wl = _wl(eng, cmd, txn)
    created = eng.get_coll(db, name) is None
    coll = eng.coll_for_write(db, name, wl)
    before = len(coll.indexes)
    new_specs = []
    for raw in cmd.get("indexes") or []:
        spec = _normalize_index(raw)
        existing = coll.index(spec["name"])
        if existing is not None:
            if not same(existing["key"], spec["key"]):
                raise CommandError(86, "IndexKeySpecsConflict",
                                   "An existing index has the same name as the requested index.")
            continue
        if any(same(s["key"], spec["key"]) for s in coll.indexes):
            raise CommandError(85, "IndexOptionsConflict",
                               "Index already exists with a different name")
        new_specs.append(spec)
    empty = not coll.docs
    try:
        for spec in new_specs:
            coll.add_index(spec)
    except DuplicateKey as e:
        for spec in new_specs:
            coll.drop_index(spec["name"])
        raise CommandError(11000, "DuplicateKey", e.errmsg(), keyPattern=e.key_pattern, keyValue=e.key_value)
    if new_specs:
        ns = db + ".$cmd"
        if empty:
            # Empty collections: one createIndexes entry per index (4.4+).
            for spec in new_specs:
                o = {"createIndexes": name}
                o.update(spec)
                wl.log({"op": "c", "ns": ns, "ui": coll.uuid, "o": o})
        else:
            # Non-empty: a two-phase index build.
            build = Binary(os.urandom(16), 4)
            for kind in ("startIndexBuild", "commitIndexBuild"):
                wl.log({"op": "c", "ns": ns, "ui": coll.uuid,
                        "o": {kind: name, "indexBuildUUID": build, "indexes": copy.deepcopy(new_specs)}})
    r = {"numIndexesBefore": before, "numIndexesAfter": len(coll.indexes)}
    if created:
        r["createdCollectionAutomatically"] = True
    elif not new_specs:
        r["note"] = "all indexes already exist"
    r["ok"] = 1.0
    return r


@command("dropIndexes", "deleteIndexes")
def cmd_drop_indexes(eng, cmd, db, conn, txn):
    name = cmd[next(iter(cmd))]
    wl = _wl(eng, cmd, txn)
    coll = _resolve(eng, db, name, must_exist=True)
    which = cmd.get("index")
    was = len(coll.indexes)
    if which == "*":
        names = [s["name"] for s in coll.indexes if s["name"] != "_id_"]
    elif isinstance(which, list):
        names = which
    elif isinstance(which, dict):
        spec = next((s for s in coll.indexes if same(s["key"], which)), None)
        if spec is None:
            raise CommandError(27, "IndexNotFound", "can't find index with key: %s" % which)
        names = [spec["name"]]
    else:
        names = [which]
    for n in names:
        if n == "_id_":
            raise CommandError(72, "InvalidOptions", "cannot drop _id index")
        if coll.index(n) is None:
            raise CommandError(27, "IndexNotFound", "index not found with name [%s]" % n)
    for n in names:
        spec = coll.index(n)
        coll.drop_index(n)
        wl.log({"op": "c", "ns": db + ".$cmd", "ui": coll.uuid, "o": {"dropIndexes": name, "index": n},
                "o2": spec})
    return {"nIndexesWas": was, "ok": 1.0}


@command("dbHash", "dbhash")
def cmd_db_hash(eng, cmd, db, conn, txn):
    d = eng.catalog.db(db)
    wanted = cmd.get("collections")
    hashes, uuids, capped = {}, {}, []
    if d is not None:
        for name in sorted(d.colls):
            if wanted and name not in wanted:
                continue
            if name == "system.profile":
                continue
            c = d.colls[name]
            hashes[name] = c.db_hash(eng.committed_docs(c, ordered=True) if c.index("_id_") and eng.uncommitted.get(c) else None)
            uuids[name] = c.uuid
            if c.capped:
                capped.append(name)
    md5 = hashlib.md5()
    for name in sorted(hashes):
        md5.update(hashes[name].encode())
    return {"host": eng.host, "collections": hashes, "capped": capped, "uuids": uuids,
            "md5": md5.hexdigest(), "timeMillis": 0, "fromCache": [], "ok": 1.0}


@command("collStats")
def cmd_coll_stats(eng, cmd, db, conn, txn):
    name = cmd["collStats"]
    if db == "local" and name == "oplog.rs" and eng.oplog is not None:
        s = eng.oplog.stats()
        return {"ns": "local.oplog.rs", "count": s["count"], "size": s["size"], "capped": True,
                "maxSize": s["maxSize"], "ok": 1.0}
    coll = _resolve(eng, db, name, must_exist=True)
    docs = eng.committed_docs(coll)
    size = sum(len(bson.encode(d)) for d in docs)
    return {"ns": coll.ns, "count": len(docs), "size": size, "capped": coll.capped,
            "nindexes": len(coll.indexes), "ok": 1.0}


@command("dbStats")
def cmd_db_stats(eng, cmd, db, conn, txn):
    d = eng.catalog.db(db)
    colls = d.colls.values() if d else []
    return {"db": db, "collections": len(colls), "objects": sum(len(c.docs) for c in colls), "ok": 1.0}


# ------------------------------------------------------------ applyOps

@command("applyOps")
def cmd_apply_ops(eng, cmd, db, conn, txn):
    if db != "admin":
        raise CommandError(13, "Unauthorized", "applyOps may only be run against the admin database.")
    ops = cmd["applyOps"]
    if not isinstance(ops, list):
        raise bad_value("applyOps must be an array")
    wl = _wl(eng, cmd, txn)
    results = []
    for i, op in enumerate(ops):
        try:
            _apply_one(eng, op, wl, conn)
        except DuplicateKey as e:
            raise CommandError(11000, "DuplicateKey", e.errmsg(), applied=i, results=results + [False])
        except CommandError as e:
            e.extra.setdefault("applied", i)
            e.extra.setdefault("results", results + [False])
            raise
        results.append(True)
    return {"applied": len(ops), "results": results, "ok": 1.0}


def _op_coll(eng, op, create):
    ns = op.get("ns")
    if not isinstance(ns, str) or "." not in ns:
        raise invalid_ns("invalid ns: %r" % (ns,))
    db, name = ns.split(".", 1)
    ui = op.get("ui")
    if ui is not None:
        coll = eng.catalog.by_ui(ui)
        if coll is None:
            raise ns_not_found("Failed to apply operation due to missing collection (%s): %s"
                               % (bson.binary.Binary(ui, 4).as_uuid() if len(ui) == 16 else ui, op))
        return coll
    coll = eng.get_coll(db, name)
    if coll is None and create:
        coll = eng.create_coll(db, name, {}, WriteLog(eng))
    if coll is None:
        raise ns_not_found("Failed to apply operation: namespace %s does not exist" % ns)
    return coll


def _apply_one(eng, op, wl, conn):
    kind = op.get("op")
    if kind == "n":
        return
    if kind == "i":
        coll = _op_coll(eng, op, True)
        doc = op["o"]
        key = sortkey(doc.get("_id"))
        old = coll.docs.get(key)
        # The op was decoded for this request alone: store it without copying.
        if old is not None:
            # applyOps defaults to alwaysUpsert: an insert of an existing _id replaces.
            eng.update_doc(coll, key, old, _replacement(old, doc, owned=True), wl, True)
        elif "_id" in doc and next(iter(doc)) == "_id" and not isinstance(doc["_id"], list):
            eng.insert_doc(coll, doc, wl, key)
        else:
            eng.insert_doc(coll, doc, wl)
        return
    if kind == "u":
        coll = _op_coll(eng, op, True)
        o, o2 = op.get("o") or {}, op.get("o2") or {}
        if "_id" not in o2:
            raise bad_value("update op needs o2._id: %s" % op)
        key = sortkey(o2["_id"])
        old = coll.docs.get(key)
        diff = None
        if o.get("$v") == 2 and "diff" in o:
            base = old if old is not None else {"_id": o2["_id"]}
            diff = o["diff"]
            new = apply_diff(base, diff)
            replacement = False
        elif Q.is_operator_update(o):
            new = Q.apply_update(old if old is not None else dict(o2), {k: v for k, v in o.items() if k != "$v"},
                                 is_insert=old is None)
            replacement = False
        else:
            new = _replacement(old if old is not None else {"_id": o2["_id"]}, o, owned=True)
            replacement = True
        if old is None:
            if op.get("b") is False:
                return
            eng.insert_doc(coll, new, wl)
        else:
            eng.update_doc(coll, key, old, new, wl, replacement, diff)
        return
    if kind == "d":
        coll = _op_coll(eng, op, False)
        key = sortkey((op.get("o") or {}).get("_id"))
        if key in coll.docs:
            eng.delete_doc(coll, key, wl)
        return
    if kind == "c":
        _apply_command(eng, op, wl, conn)
        return
    raise bad_value("invalid op type %r" % (kind,))


def _apply_command(eng, op, wl, conn):
    o = op.get("o") or {}
    db = op.get("ns", "").split(".", 1)[0]
    name = next(iter(o))
    if name == "applyOps":
        for sub in o["applyOps"]:
            _apply_one(eng, sub, wl, conn)
        return
    if name == "create":
        if "viewOn" in o:
            cmd_create(eng, dict(o, **{"$db": db}), db, conn, None)
            return
        opts = {k: v for k, v in o.items() if k not in ("create", "idIndex")}
        ui = op.get("ui")
        if ui is not None and eng.catalog.by_ui(ui) is not None:
            raise ns_exists("collection with uuid already exists")
        eng.create_coll(db, o["create"], opts, wl, ui=ui)
        return
    if name in ("startIndexBuild", "abortIndexBuild"):
        return
    if name in ("commitIndexBuild", "createIndexes"):
        coll = _op_coll(eng, dict(op, ns="%s.%s" % (db, o[name])), True)
        specs = o["indexes"] if name == "commitIndexBuild" else \
            [{k: v for k, v in o.items() if k != "createIndexes"}]
        cmd_create_indexes(eng, {"createIndexes": coll.name, "indexes": specs}, coll.db.name, conn, None)
        return
    if name == "drop":
        coll = eng.catalog.by_ui(op["ui"]) if op.get("ui") is not None else eng.get_coll(db, o["drop"])
        if coll is None:
            raise ns_not_found("ns not found")
        _drop_coll(eng, coll, wl)
        return
    if name == "renameCollection":
        cmd = {"renameCollection": o["renameCollection"], "to": o["to"],
               "dropTarget": bool(o.get("dropTarget")), "stayTemp": o.get("stayTemp", False)}
        cmd_rename(eng, cmd, "admin", conn, None)
        return
    handlers = {"dropDatabase": cmd_drop_database, "collMod": cmd_coll_mod,
                "dropIndexes": cmd_drop_indexes, "deleteIndexes": cmd_drop_indexes}
    if name in handlers:
        c = {k: v for k, v in o.items()}
        if name == "collMod" and isinstance(c.get("index"), dict):
            c["index"] = {k: v for k, v in c["index"].items()}
        handlers[name](eng, c, db, conn, None)
        return
    raise bad_value("applyOps: unsupported command %r" % name)
