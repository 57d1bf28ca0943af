#!/usr/bin/env bash
# Capture benchmark (issue #4): RPO and CPU of `ancre tail`, snapshot throughput of
# `ancre backup` from the replica-set simulator against `ancre import` of the same dump.
#
#   Benchmarks/capture.sh                               # 5,000 writes/s for 20 s, 200,000-entry backlog, 100 MB dump
#   DURATION=5 BACKLOG=30000 SIZE_MB=10 Benchmarks/capture.sh   # quick run
#
# 1. RPO: simulator + fresh repository + `ancre tail` (default 1 s flush); a pymongo
#    writer inserts RATE documents/s in batches of BATCH for DURATION s; per write, the
#    delay from its acknowledgement to the arrival of the tailer's "oplog durable" line
#    covering its ts (Benchmarks/capture_tail.py explains why that line is the moment
#    of durability). p50/p99/max. Tailer CPU (utime+stime) per entry over the run.
# 2. Backlog: BACKLOG entries written first, then `ancre tail --from <oldest>` catches
#    up; tailer CPU per entry.
# 3. Snapshot: dump of SIZE_MB (generate_dump.py) loaded into a simulator with pymongo;
#    `ancre backup` from it vs `ancre import` of the dump directory, each into a fresh
#    repository: MB/s, documents/s, ratio; plus a pymongo scan of the same documents
#    (how fast the simulator serves them at all) and the simulator's CPU during backup.
# Prints a Markdown table and writes Benchmarks/results/capture-<UTC date>.json.
#
# Environment:
#   RATE=5000 DURATION=20 BATCH=25   writer: documents/s, seconds, documents per insert_many
#   IDLE=3             seconds of idle tailing measured before the writer starts
#   BACKLOG=200000     entries written before the catch-up run
#   SIZE_MB=100 SEED=1 the dump for the snapshot comparison (kept in WORK_DIR/dumps and
#                      reused while size, seed and generator are unchanged; REGENERATE=1)
#   WORK_DIR=Benchmarks/work/capture   scratch space (logs, repositories, dumps)
#   ANCRE_BIN=path     use this binary; else a release build in SCRATCH_PATH
#   SCRATCH_PATH=Benchmarks/work/build   SKIP_BUILD=1   (as in import.sh)
#   ANCRE_LOW_KDF=1    create the backup/import repositories with ANCRE_SCRYPT_N=1024
#                      (the tail repositories always are: the KDF is no part of tailing)
#   SKIP_RPO=1 SKIP_BACKLOG=1 SKIP_SNAPSHOT=1   leave a part out
#   MAX_LOAD=1.5 LOAD_WAIT=300   before each part, wait up to LOAD_WAIT s for the 1-minute
#                      load average to drop below MAX_LOAD (the machine is shared; the
#                      load at the start and end of each part is recorded either way)
#   GEN_JOBS=2 RESULTS_DIR=Benchmarks/results
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK=${WORK_DIR:-$BENCH/work/capture}
RATE=${RATE:-5000}
DURATION=${DURATION:-20}
BATCH=${BATCH:-25}
IDLE=${IDLE:-3}
BACKLOG=${BACKLOG:-200000}
SIZE_MB=${SIZE_MB:-100}
SEED=${SEED:-1}
GEN_JOBS=${GEN_JOBS:-2}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT=${LOAD_WAIT:-300}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
DUMPS=$WORK/dumps
LOGS=$WORK/logs
M=$WORK/measurements.tsv   # name<TAB>value, read by the report at the end
SIM_PID=

load1() { cut -d' ' -f1 /proc/loadavg; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / hz}' "/proc/$1/stat"; }

# wait_quiet <part>: wait (up to LOAD_WAIT s) for the 1-minute load to drop below MAX_LOAD.
wait_quiet() {
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN {exit !(l >= m)}'; do
        if [ "$waited" -ge "$LOAD_WAIT" ]; then
            warn "$1: load average still $(loadavg) after ${LOAD_WAIT} s; measuring anyway"
            put "$1.waited_s" "$waited"
            put "$1.load_not_reached" "$(loadavg)"
            return 0
        fi
        [ "$waited" = 0 ] && log "$1: load average $(loadavg) >= $MAX_LOAD; waiting (up to ${LOAD_WAIT} s)"
        sleep 10
        waited=$((waited + 10))
    done
    put "$1.waited_s" "$waited"
}

stop_sim() {
    if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
        kill -TERM "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
    SIM_PID=
}
trap stop_sim EXIT

rm -rf "$LOGS" "$WORK/tail"
mkdir -p "$WORK" "$LOGS" "$WORK/tail" "$RESULTS_DIR"
: >"$M"
put loadavg_start "$(loadavg)"
TIME=/usr/bin/time
"$TIME" -v true >/dev/null 2>&1 || { warn "GNU time not available: no peak RSS or CPU for backup/import"; TIME=; }
python3 -c 'import pymongo' 2>/dev/null || { echo "pymongo is needed: pip install -r Tools/requirements.txt" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
ANCRE=${ANCRE_BIN:-}
if [ -z "$ANCRE" ]; then
    SCRATCH=${SCRATCH_PATH:-$BENCH/work/build}
    case $SCRATCH in /*) ;; *) SCRATCH=$ROOT/$SCRATCH ;; esac
    ANCRE=$SCRATCH/release/ancre
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "swift build -c release --product ancre --scratch-path $SCRATCH"
        if ! (cd "$ROOT" && nice swift build -c release --product ancre --scratch-path "$SCRATCH") >"$LOGS/build.log" 2>&1; then
            tail -n 30 "$LOGS/build.log" >&2 || true
            echo "release build failed (see $LOGS/build.log)" >&2
            exit 1
        fi
    fi
fi
[ -x "$ANCRE" ] || { echo "no ancre binary at $ANCRE" >&2; exit 1; }
put ancre.binary "$ANCRE"
put ancre.commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty)"
export ANCRE_PASSWORD=bench

# ---------------------------------------------------------------------------
# 1. RPO and steady-state CPU
# ---------------------------------------------------------------------------
if [ "${SKIP_RPO:-0}" != 1 ]; then
    wait_quiet rpo
    log "RPO: $RATE writes/s for $DURATION s (batches of $BATCH), ancre tail with the default 1 s flush"
    python3 "$BENCH/capture_tail.py" rpo --ancre "$ANCRE" --work "$WORK/tail" --out "$LOGS/rpo.json" \
        --rate "$RATE" --duration "$DURATION" --batch "$BATCH" --idle "$IDLE" --seed "$SEED" \
        >"$LOGS/rpo.out" 2>"$LOGS/rpo.err" || { warn "RPO run failed"; tail -n 20 "$LOGS/rpo.err" >&2; put rpo.error failed; }
fi

# ---------------------------------------------------------------------------
# 2. Backlog catch-up
# ---------------------------------------------------------------------------
if [ "${SKIP_BACKLOG:-0}" != 1 ]; then
    wait_quiet backlog
    log "backlog: $BACKLOG entries, then ancre tail --from the oldest"
    python3 "$BENCH/capture_tail.py" backlog --ancre "$ANCRE" --work "$WORK/tail" --out "$LOGS/backlog.json" \
        --entries "$BACKLOG" --seed "$SEED" \
        >"$LOGS/backlog.out" 2>"$LOGS/backlog.err" || { warn "backlog run failed"; tail -n 20 "$LOGS/backlog.err" >&2; put backlog.error failed; }
fi

# ---------------------------------------------------------------------------
# 3. Snapshot: ancre backup from the simulator vs ancre import of the same dump
# ---------------------------------------------------------------------------
if [ "${SKIP_SNAPSHOT:-0}" != 1 ]; then
    GEN=$BENCH/generate_dump.py
    params="size=$SIZE_MB seed=$SEED gen=$(sha1sum "$GEN" | cut -c1-12)"
    if [ "${REGENERATE:-0}" = 1 ] || [ "$(cat "$DUMPS/params" 2>/dev/null)" != "$params" ]; then
        rm -rf "$DUMPS"
        mkdir -p "$DUMPS"
        log "generating a $SIZE_MB MB dump"
        python3 "$GEN" --out "$DUMPS/D" --size-mb "$SIZE_MB" --seed "$SEED" --jobs "$GEN_JOBS" --json >"$DUMPS/D.json"
        echo "$params" >"$DUMPS/params"
    else
        log "reusing the dump in $DUMPS ($params)"
    fi
    D=$DUMPS/D
    put dump.bson_bytes "$(find "$D" -name '*.bson' -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
    put dump.bytes "$(file_bytes "$D")"

    log "simulator: loading the dump with pymongo (insert_many of 1,000)"
    start_simulator
    DIRECT="mongodb://127.0.0.1:$PORT/?directConnection=true"
    URI="mongodb://127.0.0.1:$PORT/?replicaSet=rs0"
    python3 "$BENCH/capture_load.py" load --uri "$DIRECT" --dump "$D" >"$LOGS/load.json"
    put sim.rss_kib_loaded "$(awk '/VmRSS/ {print $2}' "/proc/$SIM_PID/status")"

    kdf=()
    [ "${ANCRE_LOW_KDF:-0}" = 1 ] && kdf=(env ANCRE_SCRYPT_N=1024)
    put ancre.low_kdf "${ANCRE_LOW_KDF:-0}"
    wait_quiet snapshot
    put snapshot.loadavg_start "$(loadavg)"
    log "pymongo scan of the same documents (the simulator's own speed)"
    python3 "$BENCH/capture_load.py" scan --uri "$DIRECT" --dump "$D" >"$LOGS/scan.json"
    rm -rf "$WORK/RB" "$WORK/RI"
    run_timed ancre_init_backup ${kdf[@]+"${kdf[@]}"} "$ANCRE" init --repo "$WORK/RB"
    log "ancre backup from the simulator"
    sim0=$(cpu_of "$SIM_PID")
    if run_timed ancre_backup "$ANCRE" backup --uri "$URI" --repo "$WORK/RB" --json; then
        put ancre_backup.sim_cpu_s "$(awk -v a="$sim0" -v b="$(cpu_of "$SIM_PID")" 'BEGIN {printf "%.2f", b - a}')"
        put ancre_backup.repo_bytes "$(file_bytes "$WORK/RB")"
    fi
    stop_sim
    log "ancre import of the dump directory"
    cat "$D"/*/*.bson >/dev/null   # warm cache, as import.sh does
    run_timed ancre_init_import ${kdf[@]+"${kdf[@]}"} "$ANCRE" init --repo "$WORK/RI"
    if run_timed ancre_import "$ANCRE" import --repo "$WORK/RI" "$D" --json; then
        put ancre_import.repo_bytes "$(file_bytes "$WORK/RI")"
    fi
    put snapshot.loadavg_end "$(loadavg)"
fi
put loadavg_end "$(loadavg)"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
stamp=$(date -u +%Y%m%d-%H%M%S)
OUT=$RESULTS_DIR/capture-$stamp.json
python3 "$BENCH/capture_report.py" "$M" "$LOGS" "$DUMPS" "$OUT"
