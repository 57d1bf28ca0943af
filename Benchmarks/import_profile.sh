#!/usr/bin/env bash
# Where an import's CPU time goes (issue #2): `perf record` of one `ancre import` of a
# dump into a fresh repository, each sample attributed to a stage by its call stack
# (DWARF unwinding, so samples inside libcrypto's and libzstd's assembly keep their
# callers). Prints core-seconds per stage, wall time and CPU utilization.
#
#   Benchmarks/import_profile.sh                     # dump A of Benchmarks/import.sh
#   Benchmarks/import_profile.sh path/to/dump        # any dump directory or archive
#
# Environment:
#   ANCRE_BIN=path     the binary to profile (default: the release build import.sh makes,
#                      Benchmarks/work/build/release/ancre)
#   FREQ=1000          samples per second per thread
#   PERF_DATA=Benchmarks/work/import.perf.data
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${WORK_DIR:-$BENCH/work}
DUMP=${1:-$WORK/dumps/A}
ANCRE=${ANCRE_BIN:-$WORK/build/release/ancre}
FREQ=${FREQ:-1000}
DATA=${PERF_DATA:-$WORK/import.perf.data}
[ -x "$ANCRE" ] || { echo "no ancre binary at $ANCRE (run Benchmarks/import.sh once, or set ANCRE_BIN)" >&2; exit 1; }
[ -e "$DUMP" ] || { echo "no dump at $DUMP (Benchmarks/import.sh generates one)" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

REPO=$(mktemp -d "${TMPDIR:-/tmp}/ancre-profile.XXXXXX")
trap 'rm -rf "$REPO"' EXIT
export ANCRE_PASSWORD=bench
"$ANCRE" init --repo "$REPO/r" >/dev/null
if [ -d "$DUMP" ]; then find "$DUMP" -type f -exec cat {} + >/dev/null; else cat "$DUMP" >/dev/null; fi
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s" -o "$REPO/time" \
    perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 -o "$DATA" \
    "$ANCRE" import --repo "$REPO/r" "$DUMP"
ATTRIBUTE=$(cat <<'PY'
import collections, re, sys

freq = float(sys.argv[1])
timing = open(sys.argv[2]).read().strip().splitlines()[-1]

# (stage, leaf library or None, pattern over the ancre frames): the first match wins.
# Library samples are matched on their innermost ancre frame (their direct caller),
# the others on the whole stack.
STAGES = [
    ("key derivation (scrypt)", "libcrypto", r"KDFParameters|KeySlot|Scrypt"),
    ("blob ids (HMAC-SHA256)", "libcrypto", r"blobID|hmac"),
    ("pack names (SHA-256)", "libcrypto", r"PackWriter|sha256|StreamingDigest"),
    ("AES-GCM", "libcrypto", r"AESGCM|SealedFile"),
    ("zstd", "libzstd", r""),
    ("key derivation (scrypt)", None, r"Scrypt|LaneMixer|salsa8|KDFParameters|KeySlot"),
    ("capture checksum (XXH64 sum)", None, r"XXH64|DocumentChecksum"),
    ("pack files: write, fsync, index", None, r"LocalBackend|upload|flushyyKF"),
    # Before the scan: the writing threads' frames name the scan's types too.
    ("second pass: read, leaves, boundaries", None, r"DumpImporterV5write|writeCollection|forEachValidatedDocument|TreeWriter"),
    ("scan: read, validate, _id keys, sort", None, r"DumpScan"),
]
stages = collections.Counter()
for block in sys.stdin.read().split("\n\n"):
    frames = [l.strip() for l in block.strip().splitlines() if l.strip()][1:]
    if not frames:
        continue
    leaf = frames[0]
    ours = [f for f in frames if "/ancre" in f or f.endswith("(inlined)")]
    for name, lib, pattern in STAGES:
        if lib is not None and lib not in leaf:
            continue
        where = (ours[0] if ours else "") if lib is not None else " ".join(ours)
        if pattern and not re.search(pattern, where):
            continue
        stages[name] += 1
        break
    else:
        stages["other (runtime, allocation, kernel, start-up)"] += 1
total = sum(stages.values())
print(f"\n{timing}; {total / freq:.2f} core-s sampled")
m = re.search(r"wall ([\d.]+) s, user ([\d.]+) s, sys ([\d.]+) s", timing)
if m:
    wall, user, sys_ = map(float, m.groups())
    print(f"CPU utilization (user+sys)/wall/cores: {(user + sys_) / wall / 2 * 100:.0f}% of 2 cores")
print("\n| stage | core-s | share |\n|---|---|---|")
for name, n in stages.most_common():
    print(f"| {name} | {n / freq:.2f} | {n / total * 100:.0f}% |")
PY
)
perf script -i "$DATA" -F tid,ip,sym,dso 2>/dev/null | python3 -c "$ATTRIBUTE" "$FREQ" "$REPO/time"
