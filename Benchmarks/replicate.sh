#!/usr/bin/env bash
# Replication benchmark (issue #6): `ancre copy` of a repository to S3 (moto's server on
# loopback) against `rclone copy` of the same repository files, same moto, same run.
#
#   Benchmarks/replicate.sh                 # ~600 MB dump imported: a ~200 MB repository
#   SIZE_MB=100 Benchmarks/replicate.sh     # quick run
#
# 1. generate_dump.py writes a clinic dump of SIZE_MB; `ancre import` stores it in a
#    fresh local repository R (packs of 16-64 MiB, index, snapshot).
# 2. moto in server mode on a free loopback port (`python3 -m moto.server`), one process
#    for the whole run; a fresh bucket per tool, made with `rclone mkdir`.
# 3. Timed, ROUNDS times, alternating which tool goes first:
#      ancre copy --from R --to s3:http://127.0.0.1:PORT/ancre-N/repo
#        (opens R: scrypt at its calibrated cost unless ANCRE_LOW_KDF=1; checks every
#        object against its SHA-256 name before upload, in the same pass as the MD5 it
#        sends as Content-MD5, and the ETag each PUT answers after)
#      rclone copy R moto:rclone-N/repo --checksum
#        (S3 remote from RCLONE_CONFIG_MOTO_* variables; rclone sends Content-MD5 with
#        every PUT and checks the ETag of every part, so both tools verify what they send)
#    Both with 4 transfers at a time (Ancre's default parallelism; rclone's --transfers
#    default). Each copy is checked afterwards: the object count and bytes in the bucket
#    equal R's files.
# 4. MB/s = bytes of R's files (10^6 B per MB) / wall seconds; prints a Markdown table
#    and writes Benchmarks/results/replicate-<date>.json.
#
# Needs: python3 with moto[server] and pymongo, rclone (`apt-get install -y rclone`; the
# script installs it when run as root), GNU time, the Swift toolchain.
# Environment: SIZE_MB=600 SEED=1 ROUNDS=3 WORK_DIR=Benchmarks/work/replicate
#   ANCRE_BIN=path SCRATCH_PATH=Benchmarks/work/build-replay ANCRE_LOW_KDF=1
#   RESULTS_DIR=Benchmarks/results KEEP_WORK=1 (keep the dump and repository)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK=${WORK_DIR:-$BENCH/work/replicate}
SIZE_MB=${SIZE_MB:-600}
SEED=${SEED:-1}
ROUNDS=${ROUNDS:-3}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
SCRATCH=${SCRATCH_PATH:-$BENCH/work/build-replay}
LOGS=$WORK/logs
M=$WORK/measurements.tsv
DUMP=$WORK/dump
REPO=$WORK/repo
TIME=/usr/bin/time
"$TIME" -v true >/dev/null 2>&1 || TIME=

if ! command -v rclone >/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q rclone >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q rclone >/dev/null; }; fi
    command -v rclone >/dev/null || { echo "rclone is needed (apt-get install -y rclone)" >&2; exit 1; }
fi

mkdir -p "$WORK" "$RESULTS_DIR"
rm -rf "$LOGS"
mkdir -p "$LOGS"
: >"$M"
put loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
MOTO_PID=
cleanup() { [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT

# 1. The repository
params="size=$SIZE_MB seed=$SEED gen=$(sha1sum "$BENCH/generate_dump.py" | cut -c1-12)"
if [ "$(cat "$WORK/params" 2>/dev/null)" != "$params" ]; then
    log "generating a $SIZE_MB MB dump"
    rm -rf "$DUMP" "$WORK/params"
    python3 "$BENCH/generate_dump.py" --out "$DUMP" --size-mb "$SIZE_MB" --seed "$SEED" --jobs 2 >/dev/null
    echo "$params" >"$WORK/params"
fi
if [ -z "${ANCRE_BIN:-}" ]; then
    log "building ancre (release, $SCRATCH)"
    (cd "$ROOT" && swift build -c release -Xswiftc -enable-testing --scratch-path "$SCRATCH" --product ancre >&2)
    ANCRE_BIN=$SCRATCH/release/ancre
fi
export ANCRE_PASSWORD=bench
kdf=()
[ "${ANCRE_LOW_KDF:-0}" = 1 ] && kdf=(env ANCRE_SCRYPT_N=1024)
rm -rf "$REPO"
log "ancre init + import"
"${kdf[@]}" "$ANCRE_BIN" init --repo "$REPO" >"$LOGS/init.out" 2>"$LOGS/init.err"
"$ANCRE_BIN" import --repo "$REPO" "$DUMP" >"$LOGS/import.out" 2>"$LOGS/import.err"
REPO_BYTES=$(file_bytes "$REPO")
REPO_FILES=$(find "$REPO" -type f | wc -l)
put repo_bytes "$REPO_BYTES"
put repo_files "$REPO_FILES"
put repo_packs "$(find "$REPO/data" -type f | wc -l)"

# 2. moto
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$LOGS/moto.out" 2>"$LOGS/moto.err" &
MOTO_PID=$!
for _ in $(seq 100); do
    grep -q "Running on" "$LOGS/moto.err" "$LOGS/moto.out" 2>/dev/null && break
    sleep 0.2
done
grep -q "Running on" "$LOGS/moto.err" "$LOGS/moto.out" || { echo "moto did not start (see $LOGS/moto.err)" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export RCLONE_CONFIG_MOTO_TYPE=s3 RCLONE_CONFIG_MOTO_PROVIDER=Other RCLONE_CONFIG_MOTO_ENV_AUTH=false
export RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export RCLONE_CONFIG_MOTO_ENDPOINT=http://127.0.0.1:$PORT RCLONE_CONFIG_MOTO_REGION=us-east-1
export RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE=true
# rclone's AWS SDK refuses AWS_CA_BUNDLE with its own HTTP transport ("unsupported
# transport"); the endpoint is plain HTTP on loopback, so no CA is needed.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG=$WORK/rclone.conf  # empty: the remote is all in the variables above
: >"$RCLONE_CONFIG"
put rclone_version "$(rclone version | head -1)"

check_bucket() {  # check_bucket <name> <bucket/path>: object count and bytes must equal R's
    local out files bytes
    out=$(rclone size "moto:$2" --json)
    files=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["count"])' "$out")
    bytes=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["bytes"])' "$out")
    put "$1.bucket_files" "$files"
    put "$1.bucket_bytes" "$bytes"
    if [ "$files" != "$REPO_FILES" ] || [ "$bytes" != "$REPO_BYTES" ]; then
        warn "$1: the bucket holds $files objects, $bytes bytes; the repository $REPO_FILES files, $REPO_BYTES bytes"
        return 1
    fi
}
ancre_copy() {
    rclone mkdir "moto:ancre-$1"
    run_timed "ancre.$1" "$ANCRE_BIN" copy --from "$REPO" --to "s3:http://127.0.0.1:$PORT/ancre-$1/repo" --json
    check_bucket "ancre.$1" "ancre-$1/repo"
}
rclone_copy() {
    rclone mkdir "moto:rclone-$1"
    run_timed "rclone.$1" rclone copy "$REPO" "moto:rclone-$1/repo" --checksum --transfers 4
    check_bucket "rclone.$1" "rclone-$1/repo"
}

# 3. Same run, alternating order
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"
    put "round$round.loadavg" "$(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $((round % 2)) = 1 ]; then ancre_copy "$round"; rclone_copy "$round"; else rclone_copy "$round"; ancre_copy "$round"; fi
done
put loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put moto.rss_kib "$(awk '/VmHWM/ {print $2}' "/proc/$MOTO_PID/status")"

# 4. Report
python3 - "$M" "$ROUNDS" "$RESULTS_DIR" "$(git -C "$ROOT" rev-parse --short HEAD)" "$LOGS" <<'EOF'
import datetime, json, statistics, sys
m_path, rounds, results_dir, commit, logs = sys.argv[1:]
m = dict(line.rstrip("\n").split("\t", 1) for line in open(m_path))
rounds = int(rounds)
mb = int(m["repo_bytes"]) / 1e6
rate = {t: [mb / float(m["%s.%d.seconds" % (t, r)]) for r in range(1, rounds + 1)] for t in ("ancre", "rclone")}
ratios = [a / b for a, b in zip(rate["ancre"], rate["rclone"])]
def spread(v):
    return "%.1f (%.1f–%.1f)" % (statistics.median(v), min(v), max(v))
print("Repository: %.1f MB in %s files (%s packs); %d rounds, median (min–max)" % (mb, m["repo_files"], m["repo_packs"], rounds))
print()
print("| | MB/s | CPU s (median) |")
print("|---|---|---|")
for t, label in (("ancre", "`ancre copy` (4 packs at a time, SHA-256 before upload, ETag after)"),
                 ("rclone", "`rclone copy --checksum --transfers 4`")):
    cpu = [float(m.get("%s.%d.cpu_s" % (t, r), "nan")) for r in range(1, rounds + 1)]
    print("| %s | %s | %.2f |" % (label, spread(rate[t]), statistics.median(cpu)))
print()
print("Ancre / rclone throughput: %.2f (per round: %s)" % (statistics.median(ratios), ", ".join("%.2f" % r for r in ratios)))
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
out = "%s/replicate-%s.json" % (results_dir, stamp)
reports = {}
for r in range(1, rounds + 1):
    try:
        reports[r] = json.load(open("%s/ancre.%d.out" % (logs, r)))
    except (OSError, ValueError):
        pass
json.dump({"measurements": m, "mb_per_s": rate, "ratios": ratios, "median_ratio": statistics.median(ratios),
           "ancre_reports": reports, "commit": commit,
           "machine": {"loadavg_end": open("/proc/loadavg").read().split()[:3]}}, open(out, "w"), indent=1)
print("written: " + out, file=sys.stderr)
EOF
kill "$MOTO_PID" 2>/dev/null || true
MOTO_PID=
if [ "${KEEP_WORK:-0}" != 1 ]; then rm -rf "$WORK"; fi
