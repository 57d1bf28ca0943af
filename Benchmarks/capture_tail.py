#!/usr/bin/env python3
"""Oplog tailer benchmark (issue #4), run by Benchmarks/capture.sh.

    capture_tail.py rpo     --ancre BIN --work DIR --out FILE [--rate 5000 --duration 20 --batch 25]
    capture_tail.py backlog --ancre BIN --work DIR --out FILE [--entries 200000]

Both modes start their own replica-set simulator (Tools/simulator) and their own fresh
repository (created with ANCRE_SCRYPT_N=1024: the passphrase KDF is no part of the
tailer's cost), run `ancre tail` with its defaults (1 s flush interval) and
ANCRE_LOG_LEVEL=info, and read its stderr on a thread that stamps every line with
time.monotonic() as it arrives.

Durability is taken from the tailer's own "oplog durable" line: OplogTailer.seal()
logs it after the segment's blob is saved, the pack and index are flushed and the
timeline file naming the segment is stored (every object fsynced, renamed into place,
directory fsynced), i.e. after the point where a crash can no longer lose the entry.
The line carries the segment's last ts (oplog.ts=S:I); every entry with ts <= that is
durable from the moment the line arrives. The mtimes of the timeline files are used as
a cross-check only (they are set before the fsyncs, so they precede the lines).

rpo: the writer inserts `batch` small documents every batch/rate seconds with pymongo
(w:1), stamping each batch's acknowledgement with time.monotonic() in the same process;
afterwards the oplog is read to map every inserted _id to its entry's ts. Per write,
RPO delay = (arrival of the first durable line whose ts >= the write's ts) - (ack time).
The tailer's CPU time (utime+stime of /proc/PID/stat, all threads) is sampled when the
writer starts and once the last write is durable: CPU / entries made durable meanwhile.
An idle window before the writer gives the tailer's CPU per second with no writes.

backlog: `entries` documents are inserted first (insert_many of 1,000, no tailer), then
`ancre tail --from ts:<oldest entry>` catches up; CPU from its "tailing" line (the
repository is open) until the newest entry is durable, divided by the entries made
durable.
"""
import argparse
import bisect
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import pymongo
from bson.timestamp import Timestamp

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
SIMULATOR = os.path.join(ROOT, "Tools", "simulator", "simulator.py")
TICKS = os.sysconf("SC_CLK_TCK")
TS_RE = re.compile(r"oplog\.ts=(\d+):(\d+)")
ENTRIES_RE = re.compile(r"segment\.entries=(\d+)")
BYTES_RE = re.compile(r"segment\.bytes=(\d+)")


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def start_simulator(work, name, oplog_mb):
    log = open(os.path.join(work, name + ".sim.err"), "w")
    proc = subprocess.Popen([sys.executable, SIMULATOR, "--host", "127.0.0.1", "--port", "0",
                             "--oplog-size-mb", str(oplog_mb)],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit("simulator did not start: %r (see %s.sim.err)" % (line, name))
    return proc, int(m.group(1))


def stop(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Tailer:
    """`ancre tail` with its stderr read on a thread; durable lines stamped on arrival."""

    def __init__(self, ancre, repo, uri, env, logpath, extra=()):
        self.events = []          # (monotonic, (t, i), entries, bytes)
        self.tailing_at = None    # monotonic time of the "tailing" line
        self.tailing_cpu = None   # CPU seconds sampled when it arrived
        self.other = []           # warnings, errors, gaps
        self.cond = threading.Condition()
        self.log = open(logpath, "w")
        self.proc = subprocess.Popen([ancre, "tail", "--uri", uri, "--repo", repo, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stderr:
            now = time.monotonic()
            line = raw.decode("utf-8", "replace")
            if "oplog durable" in line:
                m, e, b = TS_RE.search(line), ENTRIES_RE.search(line), BYTES_RE.search(line)
                with self.cond:
                    self.events.append((now, (int(m.group(1)), int(m.group(2))),
                                        int(e.group(1)) if e else 0, int(b.group(1)) if b else 0))
                    self.cond.notify_all()
            elif line.rstrip().endswith("[ancre] tailing") and self.tailing_at is None:
                try:
                    cpu = cpu_seconds(self.proc.pid)
                except OSError:
                    cpu = None
                with self.cond:
                    self.tailing_at, self.tailing_cpu = now, cpu
                    self.cond.notify_all()
            elif " info " not in line:
                self.other.append(line.strip())
            self.log.write("%.6f %s" % (now, line))
        self.log.flush()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return predicate()
                self.cond.wait(min(left, 0.5))
            return True

    def durable_ts(self):
        return self.events[-1][1] if self.events else (0, 0)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        stop(self.proc)
        self.thread.join(10)
        self.log.close()


def init_repo(ancre, repo, env):
    subprocess.run(["rm", "-rf", repo], check=True)
    env = dict(env, ANCRE_SCRYPT_N="1024")
    r = subprocess.run([ancre, "init", "--repo", repo], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("ancre init failed: %s" % r.stderr)


def make_docs(rng, start, n):
    statuses = ["scheduled", "confirmed", "checked-in", "completed", "cancelled", "no-show"]
    words = ("patient reported mild pain since tuesday follow up in two weeks blood pressure stable "
             "renouveler ordonnance allergie pénicilline douleur thoracique contrôle").split()
    docs = []
    for k in range(start, start + n):
        docs.append({"_id": k, "patient": rng.randrange(100000), "status": rng.choice(statuses),
                     "fee": rng.randrange(2000, 15000) / 100.0, "rev": 1,
                     "note": " ".join(rng.choice(words) for _ in range(rng.randrange(8, 20)))})
    return docs


def pct(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def oplog_edge(client, direction):
    doc = next(client.local["oplog.rs"].find({}, {"ts": 1}).sort("$natural", direction).limit(1), None)
    return (doc["ts"].time, doc["ts"].inc) if doc else None


def timeline_cross_check(repo, events, wall_offset):
    """Seconds from each timeline file's mtime to the arrival of its durable line (k-th by time)."""
    d = os.path.join(repo, "timeline")
    try:
        mtimes = sorted(os.stat(os.path.join(d, f)).st_mtime for f in os.listdir(d))
    except OSError:
        return None
    if len(mtimes) != len(events):
        return {"files": len(mtimes), "lines": len(events), "note": "counts differ; not compared"}
    lags = sorted((e[0] + wall_offset) - m for e, m in zip(events, mtimes))
    return {"files": len(mtimes), "line_after_mtime_p50_s": pct(lags, 50), "line_after_mtime_max_s": lags[-1],
            "line_after_mtime_min_s": lags[0]}


def run_rpo(a):
    env = dict(os.environ, ANCRE_PASSWORD=a.password, ANCRE_LOG_LEVEL="info")
    repo = os.path.join(a.work, "T")
    sim, port = start_simulator(a.work, "rpo", a.oplog_mb)
    result = {"mode": "rpo", "rate_target": a.rate, "duration_target_s": a.duration, "batch": a.batch,
              "loadavg_start": loadavg()}
    tailer = None
    try:
        init_repo(a.ancre, repo, env)
        uri_tail = "mongodb://127.0.0.1:%d/?replicaSet=rs0" % port
        client = pymongo.MongoClient("mongodb://127.0.0.1:%d/?directConnection=true" % port, w=1)
        client.admin.command("ping")
        rng = random.Random(a.seed)
        total = int(a.rate * a.duration)
        total -= total % a.batch
        docs = make_docs(rng, 0, total)
        coll = client.bench.rpo
        wall_offset = time.time() - time.monotonic()
        tailer = Tailer(a.ancre, repo, uri_tail, env, os.path.join(a.work, "rpo.tail.log"))
        if not tailer.wait_for(lambda: tailer.tailing_at is not None, 60):
            raise SystemExit("ancre tail did not start: %s" % "; ".join(tailer.other[-5:]))
        # Idle window: the tailer's CPU with no writes (after its first, startup segment).
        time.sleep(1.5)
        idle_t0, idle_c0 = time.monotonic(), tailer.cpu()
        time.sleep(a.idle)
        idle_t1, idle_c1 = time.monotonic(), tailer.cpu()
        result["idle_cpu_ms_per_s"] = (idle_c1 - idle_c0) / (idle_t1 - idle_t0) * 1000
        result["idle_window_s"] = idle_t1 - idle_t0

        session = client.start_session()
        batches = []   # (first id, n, send, ack)
        interval = a.batch / a.rate
        cpu0, sim_c0 = tailer.cpu(), cpu_seconds(sim.pid)
        start = time.monotonic()
        writer_cpu0 = time.process_time()
        for k in range(total // a.batch):
            due = start + k * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            send = time.monotonic()
            coll.insert_many(docs[k * a.batch:(k + 1) * a.batch], ordered=True, session=session)
            batches.append((k * a.batch, a.batch, send, time.monotonic()))
        end = batches[-1][3]
        result["writer_client_cpu_s"] = time.process_time() - writer_cpu0
        last_write = session.operation_time
        last_write = (last_write.time, last_write.inc)
        result["writes"] = total
        result["write_seconds"] = end - start
        result["rate_achieved"] = total / (end - start)
        ok = tailer.wait_for(lambda: tailer.durable_ts() >= last_write, 60)
        done_t, cpu1, sim_c1 = time.monotonic(), tailer.cpu(), cpu_seconds(sim.pid)
        result["sim_cpu_s"] = sim_c1 - sim_c0
        result["loadavg_end"] = loadavg()
        if not ok:
            result["error"] = "the last write was not durable within 60 s"
        events = list(tailer.events)
        tailer.stop()
        result["tailer_problems"] = tailer.other[-20:]

        # Map every write to its entry's ts.
        ts_of = {}
        for e in client.local["oplog.rs"].find({"ns": "bench.rpo", "op": "i"}, {"ts": 1, "o": 1}):
            ts_of[e["o"]["_id"]] = (e["ts"].time, e["ts"].inc)
        result["writes_found_in_oplog"] = len(ts_of)
        ev_ts = [e[1] for e in events]
        delays, ack_lat, from_send, steady = [], [], [], []
        missing = 0
        for first, n, send, ack in batches:
            ack_lat.append(ack - send)
            for _id in range(first, first + n):
                ts = ts_of.get(_id)
                j = bisect.bisect_left(ev_ts, ts) if ts else len(ev_ts)
                if j == len(ev_ts):
                    missing += 1
                    continue
                delays.append(events[j][0] - ack)
                if ack <= end - 1.5:
                    steady.append(events[j][0] - ack)
                from_send.append(events[j][0] - send)
        delays.sort()
        ack_lat.sort()
        from_send.sort()
        result["writes_not_durable"] = missing
        result["rpo_s"] = {"p50": pct(delays, 50), "p90": pct(delays, 90), "p99": pct(delays, 99),
                           "max": delays[-1] if delays else None, "min": delays[0] if delays else None,
                           "mean": sum(delays) / len(delays) if delays else None, "n": len(delays)}
        steady.sort()
        # Writes acknowledged at least 1.5 s before the writer stopped: their segments were
        # sealed while entries kept arriving (the last segment waits for an idle getMore).
        result["steady_rpo_s"] = {"p50": pct(steady, 50), "p99": pct(steady, 99),
                                  "max": steady[-1] if steady else None, "n": len(steady)}
        result["send_to_durable_s"] = {"p50": pct(from_send, 50), "p99": pct(from_send, 99),
                                       "max": from_send[-1] if from_send else None}
        result["ack_latency_s"] = {"p50": pct(ack_lat, 50), "p99": pct(ack_lat, 99), "max": ack_lat[-1]}
        # CPU: from the writer's start to the last write durable; entries durable meanwhile.
        window = [e for e in events if e[0] > start]
        entries = sum(e[2] for e in window)
        result["tailer_cpu_s"] = cpu1 - cpu0
        result["tailer_entries"] = entries
        result["tailer_window_s"] = done_t - start
        result["tailer_cpu_us_per_entry"] = (cpu1 - cpu0) / entries * 1e6 if entries else None
        result["segments"] = len(window)
        result["segment_entries_mean"] = entries / len(window) if window else None
        result["segment_bytes_mean"] = sum(e[3] for e in window) / len(window) if window else None
        gaps = sorted(window[i][0] - window[i - 1][0] for i in range(1, len(window)))
        result["seal_interval_s"] = {"p50": pct(gaps, 50), "max": gaps[-1] if gaps else None}
        result["timeline_cross_check"] = timeline_cross_check(repo, events, wall_offset)
    finally:
        if tailer is not None and tailer.proc.poll() is None:
            tailer.stop()
        stop(sim)
    return result


def run_backlog(a):
    env = dict(os.environ, ANCRE_PASSWORD=a.password, ANCRE_LOG_LEVEL="info")
    repo = os.path.join(a.work, "TB")
    sim, port = start_simulator(a.work, "backlog", a.oplog_mb)
    result = {"mode": "backlog", "entries_target": a.entries}
    tailer = None
    try:
        init_repo(a.ancre, repo, env)
        client = pymongo.MongoClient("mongodb://127.0.0.1:%d/?directConnection=true" % port, w=1)
        rng = random.Random(a.seed)
        t0 = time.monotonic()
        for first in range(0, a.entries, 1000):
            client.bench.backlog.insert_many(make_docs(rng, first, min(1000, a.entries - first)), ordered=True)
        result["load_seconds"] = time.monotonic() - t0
        oldest, newest = oplog_edge(client, 1), oplog_edge(client, -1)
        result["oplog_entries"] = client.local.command("count", "oplog.rs")["n"]
        result["from"] = "ts:%d:%d" % oldest
        result["to"] = "%d:%d" % newest
        result["loadavg_start"] = loadavg()
        tailer = Tailer(a.ancre, repo, "mongodb://127.0.0.1:%d/?replicaSet=rs0" % port, env,
                        os.path.join(a.work, "backlog.tail.log"), extra=["--from", result["from"]])
        started, sim_c0 = time.monotonic(), cpu_seconds(sim.pid)
        ok = tailer.wait_for(lambda: tailer.durable_ts() >= newest, a.timeout)
        done_t, cpu1, sim_c1 = time.monotonic(), tailer.cpu(), cpu_seconds(sim.pid)
        result["loadavg_end"] = loadavg()
        if not ok:
            result["error"] = "not caught up within %d s" % a.timeout
        events = list(tailer.events)
        tailer.stop()
        result["tailer_problems"] = tailer.other[-20:]
        entries = sum(e[2] for e in events)
        result["tailer_entries"] = entries
        result["segments"] = len(events)
        result["segment_bytes_total"] = sum(e[3] for e in events)
        result["tailer_cpu_total_s"] = cpu1
        result["tailer_cpu_s"] = cpu1 - tailer.tailing_cpu if tailer.tailing_cpu is not None else None
        result["catch_up_seconds"] = done_t - tailer.tailing_at if tailer.tailing_at else None
        result["process_seconds"] = done_t - started
        result["tailer_cpu_us_per_entry"] = (result["tailer_cpu_s"] / entries * 1e6
                                             if entries and result["tailer_cpu_s"] is not None else None)
        result["entries_per_s"] = (entries / result["catch_up_seconds"]
                                   if entries and result["catch_up_seconds"] else None)
        result["sim_cpu_s"] = sim_c1 - sim_c0
    finally:
        if tailer is not None and tailer.proc.poll() is None:
            tailer.stop()
        stop(sim)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["rpo", "backlog"])
    p.add_argument("--ancre", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--password", default="bench")
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--idle", type=float, default=3.0, help="seconds of idle tailing measured before the writer")
    p.add_argument("--entries", type=int, default=200000)
    p.add_argument("--oplog-mb", type=float, default=512)
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    r = run_rpo(a) if a.mode == "rpo" else run_backlog(a)
    with open(a.out, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    json.dump(r, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
