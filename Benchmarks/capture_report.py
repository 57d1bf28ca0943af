#!/usr/bin/env python3
"""The report of Benchmarks/capture.sh: a Markdown table on stdout and the result JSON.

    capture_report.py MEASUREMENTS.tsv LOGS_DIR DUMPS_DIR OUT.json
"""
import datetime
import json
import os
import platform
import sys

mpath, logs, dumps, out = sys.argv[1:5]
m = {}
for line in open(mpath, encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    m[k] = v


def num(k):
    try:
        return float(m.get(k))
    except (TypeError, ValueError):
        return None


def div(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def load_json(name, base=logs):
    p = os.path.join(base, name)
    if not os.path.exists(p) or not os.path.getsize(p):
        return None
    try:
        return json.load(open(p, encoding="utf-8"))
    except ValueError:
        return None


rpo = load_json("rpo.json")
backlog = load_json("backlog.json")
load = load_json("load.json")
scan = load_json("scan.json")
backup = load_json("ancre_backup.out")
imp = load_json("ancre_import.out")
gen = load_json("D.json", dumps)

r = {}
if rpo:
    q = rpo.get("rpo_s") or {}
    r["rpo_p50_s"], r["rpo_p99_s"], r["rpo_max_s"] = q.get("p50"), q.get("p99"), q.get("max")
    r["rate_achieved"] = rpo.get("rate_achieved")
    r["steady_cpu_us_per_entry"] = rpo.get("tailer_cpu_us_per_entry")
    r["idle_cpu_ms_per_s"] = rpo.get("idle_cpu_ms_per_s")
if backlog:
    r["backlog_cpu_us_per_entry"] = backlog.get("tailer_cpu_us_per_entry")
    r["backlog_entries_per_s"] = backlog.get("entries_per_s")
B = num("dump.bson_bytes")
r["backup_mb_s"] = div(div(B, 1e6), num("ancre_backup.seconds"))
r["import_mb_s"] = div(div(B, 1e6), num("ancre_import.seconds"))
docs = (backup or {}).get("documents") or (load or {}).get("documents")
r["documents"] = docs
r["backup_docs_s"] = div(docs, num("ancre_backup.seconds"))
r["import_docs_s"] = div((imp or {}).get("documents"), num("ancre_import.seconds"))
r["backup_vs_import"] = div(r["backup_mb_s"], r["import_mb_s"])
r["scan_mb_s"] = div(div((scan or {}).get("bytes"), 1e6), (scan or {}).get("seconds"))
r["scan_docs_s"] = div((scan or {}).get("documents"), (scan or {}).get("seconds"))
r["backup_sim_cpu_share"] = div(num("ancre_backup.sim_cpu_s"), num("ancre_backup.seconds"))
r["backup_ancre_cpu_share"] = div(num("ancre_backup.cpu_s"), num("ancre_backup.seconds"))
r["backup_documents_match"] = (backup or {}).get("documents") == (load or {}).get("documents") if backup and load else None

targets = [  # (key, label, op, target)
    ("rpo_p99_s", "RPO p99 at 5,000 writes/s, 1 s flush (s)", "<=", 1.5),
    ("steady_cpu_us_per_entry", "tailer CPU per entry, 5,000 writes/s (µs)", "<=", 5.0),
    ("backlog_cpu_us_per_entry", "tailer CPU per entry, backlog catch-up (µs)", "<=", 5.0),
]
verdicts = {k: (None if r.get(k) is None else (r[k] >= t if op == ">=" else r[k] <= t)) for k, _, op, t in targets}


def f(v, digits=2, unit=""):
    return "n/a" if v is None else f"{v:,.{digits}f}{unit}"


def mark(k):
    v = verdicts.get(k)
    return "" if v is None else (" ✅" if v else " ❌")


print()
print("### Capture benchmark")
print()
if rpo:
    q = rpo.get("rpo_s") or {}
    print(f"**RPO** ({rpo.get('writes', 0):,} inserts in batches of {rpo.get('batch')}, target {rpo.get('rate_target'):,.0f}/s, "
          f"achieved {f(rpo.get('rate_achieved'), 0)}/s over {f(rpo.get('write_seconds'), 1)} s; "
          f"load average {rpo.get('loadavg_start')} → {rpo.get('loadavg_end')}):")
    print()
    print("| | p50 | p99 | max |")
    print("|---|---|---|---|")
    print(f"| ack → durable (RPO) | {f(q.get('p50'), 3, ' s')} | {f(q.get('p99'), 3, ' s')}{mark('rpo_p99_s')} | {f(q.get('max'), 3, ' s')} |")
    st = rpo.get("steady_rpo_s") or {}
    if st:
        print(f"| same, writes acked ≥ 1.5 s before the writer stopped | {f(st.get('p50'), 3, ' s')} | {f(st.get('p99'), 3, ' s')} | {f(st.get('max'), 3, ' s')} |")
    a = rpo.get("ack_latency_s") or {}
    print(f"| insert_many round trip (send → ack) | {f(a.get('p50'), 4, ' s')} | {f(a.get('p99'), 4, ' s')} | {f(a.get('max'), 4, ' s')} |")
    print()
    print(f"Segments: {rpo.get('segments')} sealed during the run, {f(rpo.get('segment_entries_mean'), 0)} entries and "
          f"{f(div(rpo.get('segment_bytes_mean'), 1e6), 2)} MB each on average; writes not durable: {rpo.get('writes_not_durable')}. "
          "Peers' documented defaults (not measured here): Percona Backup for MongoDB slices the oplog every 10 minutes, "
          "WAL-G uploads every 60 s.")
    print()
print("| target | measured | goal |")
print("|---|---|---|")
for k, label, op, t in targets:
    print(f"| {label} | {f(r.get(k), 3 if 'rpo' in k else 2)}{mark(k)} | {op} {t:g} |")
print()
if rpo or backlog:
    print("| tailer CPU | CPU s | entries | µs/entry | wall s | load average |")
    print("|---|---|---|---|---|---|")
    if rpo:
        print(f"| steady, {f(rpo.get('rate_achieved'), 0)} writes/s | {f(rpo.get('tailer_cpu_s'))} | {rpo.get('tailer_entries', 0):,} | "
              f"{f(rpo.get('tailer_cpu_us_per_entry'))} | {f(rpo.get('tailer_window_s'), 1)} | {rpo.get('loadavg_start')} → {rpo.get('loadavg_end')} |")
        print(f"| idle (no writes) | {f(div(rpo.get('idle_cpu_ms_per_s'), 1000), 3)}/s | | | {f(rpo.get('idle_window_s'), 1)} | |")
    if backlog:
        print(f"| backlog catch-up (`--from` oldest) | {f(backlog.get('tailer_cpu_s'))} | {backlog.get('tailer_entries', 0):,} | "
              f"{f(backlog.get('tailer_cpu_us_per_entry'))} | {f(backlog.get('catch_up_seconds'), 1)} "
              f"({f(backlog.get('entries_per_s'), 0)} entries/s incl. the last 1 s flush wait) | {backlog.get('loadavg_start')} → {backlog.get('loadavg_end')} |")
    print()
if "ancre_backup.seconds" in m or "ancre_import.seconds" in m:
    print(f"**Snapshot** of a {f(div(B, 1e6), 1)} MB dump ({docs if docs is None else f'{docs:,}'} documents), each into a fresh repository"
          f"{' (ANCRE_SCRYPT_N=1024)' if m.get('ancre.low_kdf') == '1' else ''}; load average {m.get('snapshot.loadavg_start')} → {m.get('snapshot.loadavg_end')}:")
    print()
    print("| | wall | MB/s | documents/s | CPU (ancre) | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(f"| `ancre backup` from the simulator | {f(num('ancre_backup.seconds'), 1, ' s')} | {f(r['backup_mb_s'], 1)} | {f(r['backup_docs_s'], 0)} | "
          f"{f(num('ancre_backup.cpu_s'), 1, ' s')} | {f(div(num('ancre_backup.rss_kib'), 1024), 0, ' MiB')} |")
    print(f"| `ancre import` of the dump directory | {f(num('ancre_import.seconds'), 1, ' s')} | {f(r['import_mb_s'], 1)} | {f(r['import_docs_s'], 0)} | "
          f"{f(num('ancre_import.cpu_s'), 1, ' s')} | {f(div(num('ancre_import.rss_kib'), 1024), 0, ' MiB')} |")
    print(f"| pymongo scan of the simulator (reference) | {f((scan or {}).get('seconds'), 1, ' s')} | {f(r['scan_mb_s'], 1)} | {f(r['scan_docs_s'], 0)} | | |")
    print()
    print(f"backup / import throughput: {f(r['backup_vs_import'], 2)}. During the backup the simulator used "
          f"{f(num('ancre_backup.sim_cpu_s'), 1)} s of CPU ({f(r['backup_sim_cpu_share'], 2)} of a core) and ancre "
          f"{f(num('ancre_backup.cpu_s'), 1)} s ({f(r['backup_ancre_cpu_share'], 2)}): "
          + ("the simulator (one Python process) is the bottleneck." if (r['backup_sim_cpu_share'] or 0) >= 0.8
             else "ancre is CPU-bound." if (r['backup_ancre_cpu_share'] or 0) >= 0.8 * min(os.cpu_count() or 1, 4)
             else "neither process keeps a core busy: the rest is waiting (round trips between them, and "
                  "whatever else the machine runs: see the load average).")
          + f" `ancre backup` reports {f((backup or {}).get('seconds'), 2)} s for the snapshot itself "
            "(after opening the repository and connecting).")
    print()
errors = {k: v for k, v in m.items() if k.endswith(".error")}
for k, v in errors.items():
    print(f"**{k[:-6]}**: {v}\n")

cpu = None
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
result = {
    "benchmark": "capture",
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_start": m.get("loadavg_start"), "loadavg_end": m.get("loadavg_end"),
                "memory_kib": next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), None)},
    "method": {
        "durable": "arrival (time.monotonic, same process as the writer) of ancre tail's 'oplog durable' log line, "
                   "logged after the segment blob, pack, index and timeline file are stored and fsynced; "
                   "a write is durable at the first line whose oplog.ts >= the write's oplog ts",
        "ack": "time.monotonic() when pymongo's insert_many returned",
        "cpu": "utime+stime of /proc/<ancre tail pid>/stat (all threads), clock ticks of 10 ms",
        "peers": "documented defaults, not measured: Percona Backup for MongoDB oplog slices every 10 minutes; WAL-G uploads every 60 s",
    },
    "results": r,
    "targets": {k: {"label": label, "op": op, "target": t, "value": r.get(k), "met": verdicts[k]} for k, label, op, t in targets},
    "rpo": rpo,
    "backlog": backlog,
    "snapshot": {"generator": gen, "load": load, "scan": scan, "backup": backup, "import": imp},
    "measurements": {k: (num(k) if num(k) is not None else v) for k, v in m.items()},
}
with open(out, "w", encoding="utf-8") as fp:
    json.dump(result, fp, indent=2, ensure_ascii=False)
    fp.write("\n")
print(f"results: {out}")
