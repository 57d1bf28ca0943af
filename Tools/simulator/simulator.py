#!/usr/bin/env python3
"""Ancre's replica-set simulator: a one-node MongoDB 6.0 replica set in memory.

Prints `listening on HOST:PORT` once it accepts connections; runs until
SIGTERM/SIGINT. See README.md beside this file.
"""
import argparse
import gc
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ancresim.server import Server  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--set-name", default="rs0")
    p.add_argument("--oplog-size-mb", type=float, default=64)
    p.add_argument("--standalone", action="store_true",
                   help="no replica set, no oplog")
    p.add_argument("--txn-chunk-ops", type=int, default=1000,
                   help="ops per applyOps entry before a transaction is logged as a partialTxn chain")
    p.add_argument("--noop-interval", type=float, default=10.0,
                   help="seconds of idle time between periodic no-op entries (0 disables)")
    args = p.parse_args(argv)
    # The store is millions of long-lived dicts and every request decodes thousands
    # more: at the default threshold (700) young-generation collections took about
    # 40% of the time to decode and apply an applyOps batch. Nothing here relies on
    # prompt cycle collection.
    gc.set_threshold(100_000, 50, 100)

    srv = Server(args.host, args.port, args.set_name, args.oplog_size_mb, args.standalone,
                 args.txn_chunk_ops, args.noop_interval)

    def stop(signum, frame):
        srv.stop()
        # Everything is in memory: exit at once rather than wait for the accept loop's
        # timeout and the interpreter's teardown (tests start and stop many servers).
        sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sys.stdout.write("listening on %s:%d\n" % (srv.host, srv.port))
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
