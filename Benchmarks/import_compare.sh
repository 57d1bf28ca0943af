#!/usr/bin/env bash
# Compares import builds under the same conditions: in each round, `zstd -T2 -3` of dump A,
# `restic backup` of it (fresh repository) and `ancre import` of it by each given binary
# (fresh repository each), back to back, so a busy moment of a shared machine hits every
# tool of that round. Prints one line per run: name, wall, user and system seconds.
#
#   Benchmarks/import_compare.sh 4 old=/path/to/old/ancre new=Benchmarks/work/build/release/ancre
#
# Uses dump A of the last Benchmarks/import.sh run (WORK_DIR as there). SKIP_RESTIC=1
# leaves restic out.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${WORK_DIR:-$BENCH/work}
A=$WORK/dumps/A
[ $# -ge 2 ] || { echo "usage: $0 ROUNDS name=ancre-binary..." >&2; exit 2; }
[ -d "$A" ] || { echo "no dump at $A (run Benchmarks/import.sh first)" >&2; exit 1; }
ROUNDS=$1; shift
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ancre-compare.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
export ANCRE_PASSWORD=bench RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$SCRATCH/restic-cache
timed() { /usr/bin/time -f "$1 %e %U %S" -o "$SCRATCH/t" "${@:2}" >/dev/null 2>"$SCRATCH/err" || { cat "$SCRATCH/err" >&2; return 1; }; cat "$SCRATCH/t"; }
echo "# name wall_s user_s sys_s"
for _ in $(seq "$ROUNDS"); do
    cat "$A"/*/*.bson >/dev/null
    timed zstd bash -c 'tar -cf - -C "$1" A | zstd -q -T2 -3 -o "$2" -f' _ "$WORK/dumps" "$SCRATCH/A.tar.zst"
    if [ "${SKIP_RESTIC:-0}" != 1 ]; then
        rm -rf "$SCRATCH/restic" "$RESTIC_CACHE_DIR"
        restic init --repo "$SCRATCH/restic" --repository-version 2 -q >/dev/null
        timed restic restic --repo "$SCRATCH/restic" backup --host bench -q "$A"
    fi
    for spec in "$@"; do
        rm -rf "$SCRATCH/ancre"
        "${spec#*=}" init --repo "$SCRATCH/ancre" >/dev/null
        timed "${spec%%=*}" "${spec#*=}" import --repo "$SCRATCH/ancre" "$A"
    done
    echo "# load average $(cut -d' ' -f1 /proc/loadavg)"
done
