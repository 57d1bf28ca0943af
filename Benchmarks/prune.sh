#!/usr/bin/env bash
# Prune benchmark (issue #6): forget half of the snapshots of a repository of about
# BLOBS blobs (1,000,000 by default), then prune; wall time and peak RSS of each step,
# against restic 0.14's `forget --prune` on a restic repository with the same number of
# data blobs and the same shape (10 snapshots sharing 10% of their blobs, keep the last 5).
#
#   Benchmarks/prune.sh                 # full size
#   BLOBS=100000 Benchmarks/prune.sh    # quick run
#   RESTIC=0 Benchmarks/prune.sh        # Ancre only
#
# The generated repositories are kept in Benchmarks/work/prune/ and reused (each run
# works on a copy); delete them to regenerate. Results: Benchmarks/results/prune-*.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh

BLOBS=${BLOBS:-1000000}
KEEP=${KEEP:-5}
RESTIC=${RESTIC:-1}
SCRATCH_PATH=${SCRATCH_PATH:-Benchmarks/work/build}
WORK=$PWD/Benchmarks/work/prune
LOGS=$WORK/logs
TIME=/usr/bin/time
export ANCRE_PASSWORD=bench RESTIC_PASSWORD=bench
mkdir -p "$WORK" "$LOGS" Benchmarks/results
M=$PWD/Benchmarks/results/prune-$(date -u +%Y%m%dT%H%M%SZ).tsv
: >"$M"
put blobs.requested "$BLOBS"
put nproc "$(nproc)"
put loadavg "$(cut -d' ' -f1 /proc/loadavg)"

log "building ancre (release, $SCRATCH_PATH)"
swift build -c release --product ancre --scratch-path "$SCRATCH_PATH" >"$LOGS/build.log" 2>&1
ANCRE=$PWD/$SCRATCH_PATH/release/ancre

# The same arithmetic as PruneBenchmarkTests: leaves per snapshot, 10% of them shared.
LEAVES=$(( (BLOBS - 3600) * 10 / 91 ))
SHARED=$(( LEAVES / 10 ))
UNIQUE=$(( LEAVES - SHARED ))

PRISTINE=$WORK/ancre-$BLOBS
if [ ! -f "$PRISTINE/config" ]; then
    log "generating an Ancre repository of about $BLOBS blobs (a gated test; a few minutes)"
    rm -rf "$PRISTINE"
    ANCRE_BENCH_PRUNE_REPO=$PRISTINE ANCRE_BENCH_PRUNE_BLOBS=$BLOBS \
        swift test --filter PruneBenchmarkTests >"$LOGS/generate.log" 2>&1
    grep -q "built" "$LOGS/generate.log" || { warn "generation failed"; tail -20 "$LOGS/generate.log"; exit 1; }
fi
R=$WORK/ancre-run
rm -rf "$R"
cp -a "$PRISTINE" "$R"
sync  # the copy's dirty pages must not be flushed inside the timed fsyncs
"$ANCRE" stats --repo "$R" --json >"$LOGS/ancre.stats.json"
put ancre.blobs "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blobs"])' "$LOGS/ancre.stats.json")"
put ancre.bytes_before "$(file_bytes "$R")"
log "ancre forget --keep-last $KEEP, then ancre prune"
run_timed ancre.forget "$ANCRE" forget --repo "$R" --keep-last "$KEEP"
run_timed ancre.prune "$ANCRE" prune --repo "$R"
put ancre.bytes_after "$(file_bytes "$R")"
run_timed ancre.check "$ANCRE" check --repo "$R"
cat "$LOGS/ancre.prune.out" >&2

if [ "$RESTIC" = 1 ]; then
    RPRISTINE=$WORK/restic-$BLOBS
    if [ ! -f "$RPRISTINE/config" ]; then
        log "generating a restic repository: 10 backups of $SHARED shared + $UNIQUE unique 120-byte files"
        rm -rf "$RPRISTINE" "$WORK/src"
        restic init --repo "$RPRISTINE" >"$LOGS/restic.init.log" 2>&1
        # 120 random bytes per file (one data blob each), 500 files per directory (one tree
        # blob each), like the leaves and nodes of the Ancre repository.
        random_files() {  # DIRECTORY COUNT SEED
            python3 - "$@" <<'PY'
import os, sys
root, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = __import__("random").Random(seed)
for n in range(count):
    d = os.path.join(root, "%05d" % (n // 500))
    if n % 500 == 0: os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%d" % n), "wb") as f: f.write(rng.randbytes(120))
PY
        }
        random_files "$WORK/src/shared" "$SHARED" 0
        for k in $(seq 1 10); do
            rm -rf "$WORK/src/unique"
            random_files "$WORK/src/unique" "$UNIQUE" "$k"
            restic --repo "$RPRISTINE" backup --quiet --host bench "$WORK/src" >>"$LOGS/restic.backup.log" 2>&1
        done
        rm -rf "$WORK/src"
    fi
    RR=$WORK/restic-run
    rm -rf "$RR"
    cp -a "$RPRISTINE" "$RR"
    sync
    put restic.blobs "$(restic --repo "$RR" list blobs 2>/dev/null | wc -l)"
    put restic.bytes_before "$(file_bytes "$RR")"
    log "restic forget --keep-last $KEEP --prune"
    run_timed restic.forget_prune restic --repo "$RR" forget --keep-last "$KEEP" --prune
    put restic.bytes_after "$(file_bytes "$RR")"
fi

log "results in $M"
cat "$M"
