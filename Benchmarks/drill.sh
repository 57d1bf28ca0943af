#!/usr/bin/env bash
# Drill benchmark (issue #7): what a drill's independent verification costs on top of
# the restore it checks. Same repository, same restore point, same run:
#   (a) `ancre restore --to ts:X` into a fresh simulator (the peer: a bare restore),
#   (b) `ancre drill --to ts:X` into another fresh simulator (restore under a scratch
#       prefix + expected state computed from the repository + dbHash/index checks +
#       drop of the scratch databases).
#
#   Benchmarks/drill.sh                      # 3 s base load, then 10 s of writes
#   ANCRE_BENCH_SECONDS=30 Benchmarks/drill.sh
#
# Environment:
#   ANCRE_BENCH_SECONDS=10   seconds of loadgen (as fast as the simulator goes) after the snapshot
#   SCRATCH_PATH=Benchmarks/work/build-drill   SwiftPM build directory (release)
#   RESULTS_DIR=Benchmarks/results
# Output: Benchmarks/results/drill-<date>.txt (the drill's JSON report is kept beside it).
# Note: the simulator is single-threaded Python; it bounds both the restore and the
# drill's dbHash, so the ratio is the drill's overhead on this server, not on mongod.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
SCRATCH=${SCRATCH_PATH:-$BENCH/work/build-drill}
RESULTS=${RESULTS_DIR:-$BENCH/results}
SECONDS_OF_LOAD=${ANCRE_BENCH_SECONDS:-10}
stamp=$(date +%Y%m%d-%H%M%S)
OUT="$RESULTS/drill-$stamp.txt"
WORK=$BENCH/work/drill-$stamp
mkdir -p "$RESULTS" "$WORK"

cd "$ROOT"
echo "building (release, $SCRATCH)..." >&2
swift build -c release --product ancre --scratch-path "$SCRATCH" >&2
ancre=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/ancre
export ANCRE_PASSWORD=benchmark ANCRE_LOG_LEVEL=warning

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# Starts a simulator and sets $uri; not in a $(...) subshell, so its pid reaches the cleanup.
simulator() {
  local log=$WORK/sim-$1.log
  python3 Tools/simulator/simulator.py --host 127.0.0.1 --port 0 --oplog-size-mb 2048 >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
  uri="mongodb://$(grep -o '127.0.0.1:[0-9]*' "$log")/?replicaSet=rs0"
}
now() { date +%s.%N; }

load_start=$(cut -d' ' -f1 /proc/loadavg)
simulator source
source_uri=$uri
python3 Tools/simulator/loadgen.py --uri "$source_uri" --rate 0 --duration 3 --seed 1 >&2
"$ancre" init --repo "$WORK/repo" >/dev/null
"$ancre" tail --repo "$WORK/repo" --uri "$source_uri" --compact-every off 2>"$WORK/tail.log" &
tail_pid=$!
pids+=($tail_pid)
sleep 1
"$ancre" backup --repo "$WORK/repo" --uri "$source_uri" >&2
python3 Tools/simulator/loadgen.py --uri "$source_uri" --rate 0 --duration "$SECONDS_OF_LOAD" --seed 2 >&2
sleep 2
kill -TERM "$tail_pid" && wait "$tail_pid" || true
point=$("$ancre" timeline --repo "$WORK/repo" --json | python3 -c '
import json, sys
windows = json.load(sys.stdin)["windows"]
newest = max(tuple(map(int, w["to"].split(":"))) for w in windows)
print("ts:%d:%d" % newest)')

simulator restore
restore_uri=$uri
t0=$(now)
"$ancre" restore --repo "$WORK/repo" --uri "$restore_uri" --to "$point" --checkpoint none >"$WORK/restore.out"
t1=$(now)
simulator drill
drill_uri=$uri
t2=$(now)
"$ancre" drill --repo "$WORK/repo" --target-uri "$drill_uri" --to "$point" --report-dir "$WORK/drills" --json >"$WORK/drill.json"
t3=$(now)
load_end=$(cut -d' ' -f1 /proc/loadavg)
cp "$WORK/drill.json" "$RESULTS/drill-$stamp.json"

python3 - "$WORK/drill.json" "$t0" "$t1" "$t2" "$t3" "$load_start" "$load_end" "$SECONDS_OF_LOAD" "$(cat "$WORK/restore.out")" <<'PY' | tee "$OUT"
import json, sys
report = json.load(open(sys.argv[1]))
t0, t1, t2, t3 = map(float, sys.argv[2:6])
m = report["measurements"]
restore, drill = t1 - t0, t3 - t2
print(f"drill benchmark: {sys.argv[8]} s of loadgen after the snapshot; load average {sys.argv[6]} at the start, {sys.argv[7]} at the end")
print(f"point {report['point']['ts']}; outcome {report['outcome']}; {len(report['collections'])} collections")
print(f"peer restore:  {sys.argv[9]}")
print(f"ancre restore (wall, process):   {restore:.2f} s")
print(f"ancre drill (wall, process):     {drill:.2f} s")
print(f"  its restore (RTO):             {m['restoreSeconds']:.2f} s")
print(f"  its verification:              {m['verifySeconds']:.2f} s ({m['entriesModelled']} entries modelled)")
print(f"  documents loaded:              {m['documentsLoaded']}; entries replayed {m['entriesReplayed']}")
print(f"  bytes read from the repository: {m.get('bytesRead', 0)}")
print(f"drill / restore (wall):          {drill / restore:.2f}x")
print(f"verification / restore inside the drill: {m['verifySeconds'] / m['restoreSeconds']:.2f}x")
PY
