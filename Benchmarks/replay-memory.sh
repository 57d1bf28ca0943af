#!/usr/bin/env bash
# Replay memory benchmark (issue #5): peak RSS of `ancre restore` replaying a 1 GiB
# oplog that holds a 100 MiB transaction (goal: at most 512 MiB).
#
#   Benchmarks/replay-memory.sh                          # 1 GiB oplog, 100 MiB transaction
#   SIZE_MB=64 TXN_MB=10 Benchmarks/replay-memory.sh     # quick run
#
# 1. generate_oplog.py writes a mongodump directory: bench.items (20,000 documents),
#    empty bench.events and bench.ledger, and an oplog.bson of SIZE_MB MiB of 6.0
#    entries ($v:2 updates, inserts, deletes) with, halfway, one committed transaction
#    of TXN_MB MiB logged as a partialTxn chain of applyOps entries of at most 15 MiB
#    (other sessions' entries between its links). It prints the dbHash each collection
#    must have once the whole oplog is applied.
# 2. `ancre init` + `ancre import` of the dump (the oplog becomes the snapshot's oplog).
# 3. A fresh replica-set simulator; `ancre restore --to latest` into it under
#    /usr/bin/time -v: loads the 20,000 documents, then replays every entry (batched
#    applyOps, 4 appliers); the transaction is buffered until its last link.
# 4. The target's dbHash must equal the generator's; peak RSS and time are reported.
#
# Environment:
#   SIZE_MB=1024 TXN_MB=100 LINK_MB=15 SEED=1   generator parameters (the dump is
#                      kept and reused while they and the generator are unchanged)
#   WORK_DIR=Benchmarks/work/replay-memory   scratch space; removed at the end unless
#                      KEEP_WORK=1 (the full run needs about 1.3 GB of disk)
#   ANCRE_BIN=path     use this ancre binary instead of building one
#   SCRATCH_PATH=Benchmarks/work/build-replay   SwiftPM build directory (release, the
#                      same flags as replay.sh, so the two share one build)
#   ANCRE_LOW_KDF=1    create the repository with ANCRE_SCRYPT_N=1024 (by default the
#                      restore opens it with the calibrated scrypt, about 256 MiB, as a
#                      real restore does; it is freed before the replay starts)
#   RESULTS_DIR=Benchmarks/results
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK=${WORK_DIR:-$BENCH/work/replay-memory}
SIZE_MB=${SIZE_MB:-1024}
TXN_MB=${TXN_MB:-100}
LINK_MB=${LINK_MB:-15}
SEED=${SEED:-1}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
SCRATCH=${SCRATCH_PATH:-$BENCH/work/build-replay}
LOGS=$WORK/logs
M=$WORK/measurements.tsv
DUMP=$WORK/dump
REPO=$WORK/repo
TIME=/usr/bin/time
"$TIME" -v true >/dev/null 2>&1 || { echo "GNU time is needed (apt-get install time)" >&2; exit 1; }

mkdir -p "$WORK" "$RESULTS_DIR"
rm -rf "$LOGS" "$REPO"
mkdir -p "$LOGS"
: >"$M"
put loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null || true
}
trap cleanup EXIT

# 1. The dump
GEN=$BENCH/generate_oplog.py
params="size=$SIZE_MB txn=$TXN_MB link=$LINK_MB seed=$SEED gen=$(sha1sum "$GEN" | cut -c1-12)"
if [ "$(cat "$WORK/params" 2>/dev/null)" != "$params" ] || [ ! -f "$WORK/expected.json" ]; then
    log "generating the dump: $params"
    rm -rf "$DUMP" "$WORK/expected.json" "$WORK/params"
    python3 "$GEN" --out "$DUMP" --size-mb "$SIZE_MB" --txn-mb "$TXN_MB" --link-mb "$LINK_MB" --seed "$SEED" >"$WORK/expected.json"
    echo "$params" >"$WORK/params"
fi
put oplog_bytes "$(stat -c %s "$DUMP/oplog.bson")"

# 2. Ancre
if [ -z "${ANCRE_BIN:-}" ]; then
    log "building ancre (release, $SCRATCH)"
    (cd "$ROOT" && swift build -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --product ancre >&2)
    ANCRE_BIN=$SCRATCH/release/ancre
fi
export ANCRE_PASSWORD=bench
kdf=()
[ "${ANCRE_LOW_KDF:-0}" = 1 ] && kdf=(env ANCRE_SCRYPT_N=1024)
log "ancre init + import"
"${kdf[@]}" "$ANCRE_BIN" init --repo "$REPO" >"$LOGS/init.out" 2>"$LOGS/init.err"
run_timed import "$ANCRE_BIN" import --repo "$REPO" "$DUMP" --json
put repo_bytes "$(du -sb "$REPO" | cut -f1)"

# 3. Restore into a fresh simulator
start_simulator
URI="mongodb://127.0.0.1:$PORT/?directConnection=true"
log "ancre restore --to latest (peak RSS under /usr/bin/time -v)"
put restore_loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
run_timed restore "$ANCRE_BIN" restore --repo "$REPO" --uri "$URI" --to latest --checkpoint none --json
put restore_loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put sim.rss_kib "$(awk '/VmHWM/ {print $2}' "/proc/$SIM_PID/status")"

# 4. Verify and report
status=0
python3 - "$URI" "$WORK/expected.json" "$M" "$LOGS/restore.out" "$RESULTS_DIR" "$(git -C "$ROOT" rev-parse --short HEAD)" <<'EOF' || status=$?
import json, sys, datetime, pymongo
uri, expected_path, m_path, restore_out, results_dir, commit = sys.argv[1:]
expected = json.load(open(expected_path))
m = dict(line.rstrip("\n").split("\t", 1) for line in open(m_path))
client = pymongo.MongoClient(uri)
h = client.bench.command("dbHash")["collections"]
counts = {c: client.bench[c].estimated_document_count() for c in expected["expected"]}
ok = all(h.get(c) == e["md5"] and counts[c] == e["count"] for c, e in expected["expected"].items())
rss = int(m["restore.rss_kib"]) / 1024
secs = float(m["restore.seconds"])
oplog_mib = int(m["oplog_bytes"]) / 2**20
entries = expected["entries"]
print("| replay of a %.0f MiB oplog (%s entries) with a %.0f MiB transaction (%d links of ≤ 15 MiB) | measured | goal |"
      % (oplog_mib, f"{entries:,}", expected["transactionBytes"] / 2**20, expected["counts"]["txnLinks"]))
print("|---|---|---|")
print("| `ancre restore --to latest`, peak RSS | %.0f MiB %s | ≤ 512 MiB |" % (rss, "✅" if rss <= 512 else "❌"))
print("| time (base load + replay) | %.1f s, %s entries/s |  |" % (secs, f"{entries / secs:,.0f}"))
print("| target's dbHash equals the generator's | %s |  |" % ("yes" if ok else "NO"))
print("| `ancre import` of the dump, peak RSS | %.0f MiB |  |" % (int(m["import.rss_kib"]) / 1024))
print("| simulator (target) peak RSS | %.0f MiB |  |" % (int(m["sim.rss_kib"]) / 1024))
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
out = "%s/replay-memory-%s.json" % (results_dir, stamp)
json.dump({"measurements": m, "generator": expected, "dbHash": h, "counts": counts, "correct": ok,
           "restore": open(restore_out).read(), "commit": commit,
           "machine": {"nproc": __import__("os").cpu_count(), "loadavg_end": open("/proc/loadavg").read().split()[:3]}},
          open(out, "w"), indent=1)
print("written: " + out, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
kill "$SIM_PID" 2>/dev/null || true
SIM_PID=
if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; fi
exit $status
