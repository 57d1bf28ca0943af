"""TCP server: one thread per connection, fault injection, periodic no-ops."""
import itertools
import sys
import traceback
import socket
import struct
import threading
import time

import bson
from bson import Timestamp

from . import wire
from .commands import Engine
from .errors import CommandError, DuplicateKey
from .wire import CODEC


_STATE_CHANGE_CODES = {10107, 11602, 13435, 11600, 189, 91, 13436}


class Connection:
    _ids = itertools.count(1)

    def __init__(self, server, sock, addr):
        self.server = server
        self.sock = sock
        self.id = next(self._ids)
        self.peer = "%s:%d" % addr[:2]
        self.closing = False

    def abort(self):
        """Close the socket under the client's feet."""
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def serve(self):
        srv = self.server
        f = self.sock.makefile("rb", buffering=256 * 1024)
        try:
            while not self.closing:
                msg = wire.read_message(f)
                if msg is None:
                    break
                try:
                    req = wire.parse(*msg)
                except (wire.ProtocolError, bson.errors.BSONError, ValueError, struct.error):
                    break
                reply = srv.handle(self, req)
                if self.closing:
                    break
                if reply is None or req.more_to_come:
                    continue
                if srv.delay_ms:
                    time.sleep(srv.delay_ms / 1000.0)
                if srv.consume_malformed(self, req):
                    reply = wire.malformed_reply(req)
                self.sock.sendall(reply)
        except (OSError, ConnectionError):
            pass
        finally:
            self.closing = True
            with srv.engine.lock:
                srv.conns.discard(self)
                srv.engine.topo_cond.notify_all()
                srv.engine.cond.notify_all()
            try:
                self.sock.close()
            except OSError:
                pass


class Server:
    def __init__(self, host="127.0.0.1", port=0, set_name="rs0", oplog_size_mb=64,
                 standalone=False, txn_chunk_ops=1000, noop_interval=10.0):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)
        self.host, self.port = self.listener.getsockname()[:2]
        self.engine = Engine(self.host, self.port, set_name, oplog_size_mb, standalone,
                             txn_chunk_ops, noop_interval)
        self.conns = set()
        self.delay_ms = 0
        # simMalformedReply: (connection that armed it, command name or None)
        self.malformed = None
        self.drop_mid_cursor = False
        self.stopped = threading.Event()

    # ------------------------------------------------------------ faults

    def consume_malformed(self, conn, req):
        """True once for the reply simMalformedReply armed: the next reply to the named
        command on any connection, or without a name, the next reply to a connection
        other than the one that armed it."""
        if self.malformed is None:
            return False
        with self.engine.lock:
            if self.malformed is None:
                return False
            armed_by, command = self.malformed
            name = next(iter(req.body), None) if req.body else None
            hit = (name == command) if command is not None else (armed_by is not conn)
            if hit:
                self.malformed = None
            return hit

    def consume_drop_mid_cursor(self):
        if self.drop_mid_cursor:
            self.drop_mid_cursor = False
            return True
        return False

    def _sim_command(self, conn, cmd):
        name = next(iter(cmd))
        eng = self.engine
        if name == "simStepDown":
            if eng.standalone:
                raise CommandError(76, "NoReplicationEnabled", "not running with --replSet")
            eng.step_down(float(cmd.get("seconds", 10)))
            return {"ok": 1.0}
        if name == "simTruncateOplog":
            if eng.oplog is None:
                raise CommandError(76, "NoReplicationEnabled", "no oplog")
            with eng.lock:
                if "keep" in cmd:
                    eng.oplog.truncate_keep(int(cmd["keep"]))
                elif isinstance(cmd.get("before"), Timestamp):
                    eng.oplog.truncate_before(cmd["before"])
                else:
                    raise CommandError(2, "BadValue", "simTruncateOplog needs keep: N or before: Timestamp")
                eng.cond.notify_all()
                return {"count": eng.oplog.count(), "ok": 1.0}
        if name == "simDropConnections":
            with eng.lock:
                others = [c for c in self.conns if c is not conn]
            for c in others:
                c.abort()
            return {"dropped": len(others), "ok": 1.0}
        if name == "simDelay":
            self.delay_ms = max(0.0, float(cmd.get("ms", 0)))  # fractions: 0.2 ms is a LAN
            return {"ok": 1.0}
        if name == "simMalformedReply":
            command = cmd.get("command")
            if command is not None and not isinstance(command, str):
                raise CommandError(2, "BadValue", "simMalformedReply: command must be a command name")
            self.malformed = (conn, command)
            return {"ok": 1.0}
        if name == "simDropMidCursor":
            self.drop_mid_cursor = True
            return {"ok": 1.0}
        return None

    # ------------------------------------------------------------ requests

    def handle(self, conn, req):
        cmd = req.body
        eng = self.engine
        try:
            if not cmd:
                raise CommandError(59, "CommandNotFound", "no such command: ''")
            reply = self._sim_command(conn, cmd) if next(iter(cmd)).startswith("sim") else None
            if reply is None:
                reply = eng.run(cmd, conn)
            if reply is None:
                return None  # connection dropped on purpose
        except CommandError as e:
            reply = e.to_doc()
        except DuplicateKey as e:
            reply = {"ok": 0.0, "errmsg": e.errmsg(), "code": 11000, "codeName": "DuplicateKey"}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            traceback.print_exc(file=sys.stderr)
            reply = {"ok": 0.0, "errmsg": "bad command: %s: %r" % (type(e).__name__, e),
                     "code": 2, "codeName": "BadValue"}
        with eng.lock:
            if reply.get("ok") == 0.0 and reply.get("code") in _STATE_CHANGE_CODES:
                # Like mongod: lets drivers discard stale state-change errors.
                reply["topologyVersion"] = {"processId": eng.process_id,
                                            "counter": bson.Int64(eng.topo_counter)}
            eng.decorate(reply)
            body = bson.encode(reply, codec_options=CODEC)
        return wire.encode_reply(req, body)

    # ------------------------------------------------------------ loops

    def serve_forever(self):
        threading.Thread(target=self._noop_loop, daemon=True).start()
        self.listener.settimeout(0.5)
        while not self.stopped.is_set():
            try:
                sock, addr = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            conn = Connection(self, sock, addr)
            with self.engine.lock:
                self.conns.add(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def _noop_loop(self):
        eng = self.engine
        if eng.oplog is None or eng.noop_interval <= 0:
            return
        while not self.stopped.wait(min(1.0, eng.noop_interval / 4)):
            with eng.lock:
                if eng.primary and time.monotonic() - eng.oplog.last_write >= eng.noop_interval:
                    eng.write_noop("periodic noop")

    def stop(self):
        self.stopped.set()
        try:
            self.listener.close()
        except OSError:
            pass
        for c in list(self.conns):
            c.abort()
