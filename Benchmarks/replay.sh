#!/usr/bin/env bash
# Replay benchmark (issue #5): Ancre's batched parallel oplog replay against one entry
# per applyOps round trip (what mongorestore, PBM and WAL-G do), same target, same
# oplog, same run.
#
#   Benchmarks/replay.sh                       # 5 s of loadgen; loopback, 0.2 ms, 1 ms
#   ANCRE_BENCH_SECONDS=20 Benchmarks/replay.sh
#
# Generates an oplog with Tools/simulator/loadgen.py on one simulator, then replays it
# into fresh simulators (a) one entry per applyOps (1 applier, batches of 1) and
# (b) Ancre's OplogApplier (4 appliers, batches of up to 1,000 entries / 15 MiB), with
# the simulator delaying every reply by 0, 0.2 and 1 ms (network latency). The driver
# is the Swift test `ReplayBenchmark` (Tests/RecoveryTests/ReplayBenchmarkTests.swift),
# skipped unless ANCRE_BENCH=1; it checks both modes reach the same dbHash and prints
# entries/s and the ratio. Output goes to Benchmarks/results/replay-<date>.txt.
#
# Environment:
#   ANCRE_BENCH_SECONDS=5         loadgen duration
#   ANCRE_BENCH_DELAYS=0,0.2,1    reply delays in ms
#   ANCRE_BENCH_DELAYED_ENTRIES=3000   entries replayed with a delay (one-per-round-trip
#                                 replay takes a round trip per operation)
#   ANCRE_BENCH_PIN=1             each target simulator on CPU 1, the replaying process on
#                                 CPU 0 (taskset), both modes alike; 0 lets them share both
#                                 cores (default 1 with 2 or more cores)
#   SCRATCH_PATH=Benchmarks/work/build-replay   SwiftPM build directory (release)
#   RESULTS_DIR=Benchmarks/results
# Note: the simulator is single-threaded Python; on loopback its per-operation cost,
# not the round trip, bounds both modes, so the loopback ratio understates what a real
# mongod across a network gives. The delayed runs show the round-trip effect.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
SCRATCH=${SCRATCH_PATH:-$BENCH/work/build-replay}
RESULTS=${RESULTS_DIR:-$BENCH/results}
mkdir -p "$RESULTS"
OUT="$RESULTS/replay-$(date +%Y%m%d-%H%M%S).txt"

cd "$ROOT"
echo "building (release, $SCRATCH)..." >&2
# Tests import modules @testable: a release build needs -enable-testing.
swift build -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --build-tests >&2
if [ "$(nproc)" -ge 2 ]; then export ANCRE_BENCH_PIN=${ANCRE_BENCH_PIN:-1}; else export ANCRE_BENCH_PIN=0; fi
echo "# ANCRE_BENCH_PIN=$ANCRE_BENCH_PIN, load average $(cut -d' ' -f1 /proc/loadavg)" | tee "$OUT"
ANCRE_BENCH=1 swift test -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --skip-build --filter ReplayBenchmark 2>&1 \
    | grep -E '^replay' | tee -a "$OUT"
echo "written: $OUT" >&2
