#!/usr/bin/env bash
# Import benchmark (issue #2): Ancre against zstd -3 and restic on the same dumps.
#
#   Benchmarks/import.sh                 # 300 MB dump, everything
#   SIZE_MB=30 Benchmarks/import.sh      # quick run
#
# Generates dump A (SIZE_MB of a clinic's BSON), B = A + 1% random updates + 0.5%
# inserts, C = A + skewed updates (90% on the newest 10% of _ids) + 0.5% inserts,
# then measures, on the same bytes:
#   Ancre   init + import A (time, peak RSS), import B (second snapshot share);
#           fresh repo: import A, import C (skewed share); ancre stats --json
#   zstd    tar A | zstd -T2 -3 (time, size)
#   restic  init + backup A (time, peak RSS), backup B (second snapshot share)
# prints a Markdown table and writes Benchmarks/results/import-<date>.json.
#
# Environment:
#   SIZE_MB=300        size of dump A in MB (10^6 bytes of BSON)
#   SEED=1             generator seed (B uses SEED+1, C uses SEED+2)
#   WORK_DIR=Benchmarks/work   scratch space (dumps are kept and reused while the
#                      size, seed and generator are unchanged; REGENERATE=1 forces)
#   ANCRE_BIN=path     use this ancre binary instead of building one
#   SCRATCH_PATH=Benchmarks/work/build   SwiftPM build directory for the release
#                      build (kept apart from .build so it neither waits for nor
#                      blocks other builds and tests; SCRATCH_PATH=.build shares it)
#   SKIP_BUILD=1       use the binary already built there
#   SKIP_ANCRE=1 SKIP_ZSTD=1 SKIP_RESTIC=1   leave a tool out
#   RESTIC_SKEWED=1    also back up A then C into a fresh restic repository
#   ANCRE_LOW_KDF=1    diagnostic: create Ancre's repositories with ANCRE_SCRYPT_N=1024,
#                      so the timed imports leave out the passphrase KDF (scrypt at
#                      its calibrated cost: 0.5 s of one core, 0.26 s on two, and
#                      128 MiB when a repository is opened, part of every import's
#                      time and peak RSS)
#   GEN_JOBS=2         generator worker processes
#   RESULTS_DIR=Benchmarks/results
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
WORK=${WORK_DIR:-$BENCH/work}
SIZE_MB=${SIZE_MB:-300}
SEED=${SEED:-1}
GEN_JOBS=${GEN_JOBS:-2}
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
DUMPS=$WORK/dumps
LOGS=$WORK/logs
M=$WORK/measurements.tsv   # name<TAB>value, read by the report at the end

bytes_of() { du -sb "$1" | cut -f1; }
warm() { cat "$1"/*/*.bson >/dev/null; }  # read the dump once so every tool starts from the page cache

need_apt() {  # need_apt <command> <package>
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing $2"
        apt-get install -y -q "$2" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
    fi
    command -v "$1" >/dev/null 2>&1
}

rm -rf "$LOGS"
mkdir -p "$WORK" "$LOGS" "$RESULTS_DIR"
: >"$M"
put size_mb "$SIZE_MB"
put seed "$SEED"
put loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

TIME=/usr/bin/time
if ! "$TIME" -v true >/dev/null 2>&1; then
    need_apt /usr/bin/time time || true
    "$TIME" -v true >/dev/null 2>&1 || { warn "GNU time not available: no peak RSS"; TIME=; }
fi

# ---------------------------------------------------------------------------
# Dumps
# ---------------------------------------------------------------------------
GEN=$BENCH/generate_dump.py
params="size=$SIZE_MB seed=$SEED gen=$(sha1sum "$GEN" | cut -c1-12)"
if [ "${REGENERATE:-0}" = 1 ] || [ "$(cat "$DUMPS/params" 2>/dev/null)" != "$params" ]; then
    rm -rf "$DUMPS"
    mkdir -p "$DUMPS"
    log "generating dump A ($SIZE_MB MB)"
    python3 "$GEN" --out "$DUMPS/A" --size-mb "$SIZE_MB" --seed "$SEED" --jobs "$GEN_JOBS" --json >"$DUMPS/A.json"
    log "generating dump B (1% random updates, 0.5% inserts)"
    python3 "$GEN" --mutate-from "$DUMPS/A" --out "$DUMPS/B" --seed $((SEED + 1)) --updates 1.0 --inserts 0.5 \
        --jobs "$GEN_JOBS" --json >"$DUMPS/B.json"
    log "generating dump C (1% skewed updates, 0.5% inserts)"
    python3 "$GEN" --mutate-from "$DUMPS/A" --out "$DUMPS/C" --seed $((SEED + 2)) --updates 1.0 --inserts 0.5 \
        --skewed --jobs "$GEN_JOBS" --json >"$DUMPS/C.json"
    echo "$params" >"$DUMPS/params"
else
    log "reusing dumps in $DUMPS ($params)"
fi
for d in A B C; do
    put "dump_$d.bytes" "$(file_bytes "$DUMPS/$d")"
done
A=$DUMPS/A B=$DUMPS/B C=$DUMPS/C

# ---------------------------------------------------------------------------
# zstd -3 over the whole dump (the compression and speed reference)
# ---------------------------------------------------------------------------
if [ "${SKIP_ZSTD:-0}" != 1 ] && need_apt zstd zstd; then
    log "zstd -T2 -3"
    put zstd.version "$(zstd --version | head -1)"
    warm "$A"
    rm -f "$WORK/A.tar.zst"
    if run_timed zstd_A bash -c 'tar -cf - -C "$1" A | zstd -q -T2 -3 -o "$2"' _ "$DUMPS" "$WORK/A.tar.zst"; then
        put zstd_A.bytes "$(stat -c %s "$WORK/A.tar.zst")"
    fi
    rm -f "$WORK/A.tar.zst"
fi

# ---------------------------------------------------------------------------
# restic
# ---------------------------------------------------------------------------
restic_pair() {  # restic_pair <repo-name> <first dump> <second dump> <tag>
    local repo=$WORK/$1 tag=$4
    rm -rf "$repo"
    run_timed "restic_init_$tag" restic init --repo "$repo" --repository-version 2 || return 1
    put "restic_empty_$tag.bytes" "$(bytes_of "$repo")"
    warm "$2"
    run_timed "restic_A_$tag" restic --repo "$repo" backup --host bench -q "$2" || return 1
    put "restic_after_A_$tag.bytes" "$(bytes_of "$repo")"
    put "restic_after_A_$tag.file_bytes" "$(file_bytes "$repo")"
    warm "$3"
    run_timed "restic_second_$tag" restic --repo "$repo" backup --host bench -q "$3" || return 1
    put "restic_after_second_$tag.bytes" "$(bytes_of "$repo")"
    put "restic_after_second_$tag.file_bytes" "$(file_bytes "$repo")"
}
if [ "${SKIP_RESTIC:-0}" != 1 ] && need_apt restic restic; then
    put restic.version "$(restic version | head -1)"
    export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/restic-cache
    rm -rf "$RESTIC_CACHE_DIR"
    log "restic: backup A, then B"
    restic_pair RR "$A" "$B" random || warn "restic (random) incomplete"
    if [ "${RESTIC_SKEWED:-0}" = 1 ]; then
        log "restic: backup A, then C"
        restic_pair RR2 "$A" "$C" skewed || warn "restic (skewed) incomplete"
    fi
    rm -rf "$WORK/RR" "$WORK/RR2" "$RESTIC_CACHE_DIR"
    unset RESTIC_PASSWORD
fi

# ---------------------------------------------------------------------------
# Ancre
# ---------------------------------------------------------------------------
ancre_pair() {  # ancre_pair <repo-name> <first dump> <second dump> <tag>
    local repo=$WORK/$1 tag=$4
    rm -rf "$repo"
    local kdf=()
    [ "${ANCRE_LOW_KDF:-0}" = 1 ] && kdf=(env ANCRE_SCRYPT_N=1024)
    run_timed "ancre_init_$tag" ${kdf[@]+"${kdf[@]}"} "$ANCRE" init --repo "$repo" || return 1
    [ -e "$repo" ] || { warn "ancre init did not create $repo"; put "ancre_init_$tag.error" "no repository"; return 1; }
    put "ancre_empty_$tag.bytes" "$(bytes_of "$repo")"
    warm "$2"
    run_timed "ancre_A_$tag" "$ANCRE" import --repo "$repo" "$2" || return 1
    put "ancre_after_A_$tag.bytes" "$(bytes_of "$repo")"
    put "ancre_after_A_$tag.file_bytes" "$(file_bytes "$repo")"
    warm "$3"
    run_timed "ancre_second_$tag" "$ANCRE" import --repo "$repo" "$3" || return 1
    put "ancre_after_second_$tag.bytes" "$(bytes_of "$repo")"
    put "ancre_after_second_$tag.file_bytes" "$(file_bytes "$repo")"
}
if [ "${SKIP_ANCRE:-0}" != 1 ]; then
    ANCRE=${ANCRE_BIN:-}
    if [ -z "$ANCRE" ]; then
        SCRATCH=${SCRATCH_PATH:-$WORK/build}
        case $SCRATCH in /*) ;; *) SCRATCH=$ROOT/$SCRATCH ;; esac
        ANCRE=$SCRATCH/release/ancre
        if [ "${SKIP_BUILD:-0}" != 1 ]; then
            log "swift build -c release --product ancre --scratch-path $SCRATCH"
            t0=$(now)
            if (cd "$ROOT" && nice swift build -c release --product ancre --scratch-path "$SCRATCH") >"$LOGS/build.log" 2>&1; then
                put build.seconds "$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')"
            else
                warn "release build failed (see $LOGS/build.log); skipping Ancre"
                tail -n 30 "$LOGS/build.log" >&2 || true
                put ancre.error "release build failed"
                ANCRE=
            fi
        fi
    fi
    if [ -n "$ANCRE" ] && [ ! -x "$ANCRE" ]; then
        warn "no ancre binary at $ANCRE; skipping Ancre"
        put ancre.error "no binary"
        ANCRE=
    fi
    if [ -n "$ANCRE" ]; then
        put ancre.binary "$ANCRE"
        put ancre.low_kdf "${ANCRE_LOW_KDF:-0}"
        put ancre.commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo -dirty)"
        export ANCRE_PASSWORD=bench
        log "ancre: import A, then B"
        if ancre_pair R "$A" "$B" random; then
            if "$ANCRE" stats --repo "$WORK/R" --json >"$LOGS/ancre_stats.json" 2>"$LOGS/ancre_stats.err"; then
                log "ancre stats --repo R --json"
                cat "$LOGS/ancre_stats.json"
                echo
            else
                warn "ancre stats failed: $(tail -n 3 "$LOGS/ancre_stats.err")"
            fi
        else
            warn "ancre (random) incomplete"
        fi
        log "ancre: fresh repository, import A, then C"
        ancre_pair R2 "$A" "$C" skewed || warn "ancre (skewed) incomplete"
        unset ANCRE_PASSWORD
    fi
fi

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
stamp=$(date -u +%Y%m%d-%H%M%S)
OUT=$RESULTS_DIR/import-$stamp.json
python3 - "$M" "$OUT" "$DUMPS" "$LOGS" <<'PY'
import json, os, platform, subprocess, sys, datetime

mpath, out, dumps, logs = sys.argv[1:5]
m = {}
for line in open(mpath, encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    m[k] = v

def num(k):
    v = m.get(k)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def div(a, b):
    return a / b if a is not None and b not in (None, 0) else None

A = num("dump_A.bytes")
r = {}
r["zstd_mb_s"] = div(div(A, 1e6), num("zstd_A.seconds"))
r["zstd_bytes"] = num("zstd_A.bytes")
r["zstd_ratio"] = div(A, r["zstd_bytes"])
r["restic_mb_s"] = div(div(A, 1e6), num("restic_A_random.seconds"))
r["restic_second_mb_s"] = div(div(num("dump_B.bytes"), 1e6), num("restic_second_random.seconds"))
r["restic_rss_mib"] = div(num("restic_A_random.rss_kib"), 1024)
ra, rb = num("restic_after_A_random.bytes"), num("restic_after_second_random.bytes")
r["restic_first_bytes"] = ra
r["restic_share_random"] = div(rb - ra, ra) if ra and rb else None
ra2, rc2 = num("restic_after_A_skewed.bytes"), num("restic_after_second_skewed.bytes")
r["restic_share_skewed"] = div(rc2 - ra2, ra2) if ra2 and rc2 else None
r["ancre_mb_s"] = div(div(A, 1e6), num("ancre_A_random.seconds"))
r["ancre_second_mb_s"] = div(div(num("dump_B.bytes"), 1e6), num("ancre_second_random.seconds"))
rss = [num(k) for k in ("ancre_A_random.rss_kib", "ancre_second_random.rss_kib",
                        "ancre_A_skewed.rss_kib", "ancre_second_skewed.rss_kib")]
rss = [x for x in rss if x is not None]
r["ancre_peak_rss_mib"] = max(rss) / 1024 if rss else None
aa, ab = num("ancre_after_A_random.bytes"), num("ancre_after_second_random.bytes")
r["ancre_first_bytes"] = aa
r["ancre_share_random"] = div(ab - aa, aa) if aa and ab else None
aa2, ac2 = num("ancre_after_A_skewed.bytes"), num("ancre_after_second_skewed.bytes")
r["ancre_share_skewed"] = div(ac2 - aa2, aa2) if aa2 and ac2 else None
r["ancre_vs_restic_speed"] = div(r["ancre_mb_s"], r["restic_mb_s"])
r["ancre_vs_zstd_speed"] = div(r["ancre_mb_s"], r["zstd_mb_s"])
r["ancre_vs_zstd_size"] = div(aa, r["zstd_bytes"])

stats = None
sp = os.path.join(logs, "ancre_stats.json")
if os.path.exists(sp) and os.path.getsize(sp):
    raw = open(sp, encoding="utf-8").read()
    try:
        stats = json.loads(raw)
    except ValueError:
        stats = raw

def find_key(o, key):
    if isinstance(o, dict):
        if key in o:
            return o[key]
        for v in o.values():
            x = find_key(v, key)
            if x is not None:
                return x
    elif isinstance(o, list):
        for v in o:
            x = find_key(v, key)
            if x is not None:
                return x
    return None

r["ancre_index_bytes_per_blob"] = find_key(stats, "indexBytesPerBlob") if stats is not None else None

targets = [  # (key, label, op, target)
    ("ancre_vs_restic_speed", "Ancre / restic import throughput", ">=", 2.0),
    ("ancre_vs_zstd_speed", "Ancre / zstd -3 throughput", ">=", 0.6),
    ("ancre_share_random", "Ancre second snapshot share, 1% random updates", "<=", 0.15),
    ("ancre_share_skewed", "Ancre second snapshot share, skewed updates", "<=", 0.05),
    ("ancre_vs_zstd_size", "Ancre first snapshot / zstd -3 size", "<=", 1.15),
    ("ancre_peak_rss_mib", "Ancre peak RSS (MiB)", "<=", 256),
]
verdicts = {}
for key, label, op, t in targets:
    v = r.get(key)
    verdicts[key] = None if v is None else (v >= t if op == ">=" else v <= t)

def f(v, unit="", pct=False, digits=1):
    if v is None:
        return "n/a"
    if pct:
        return f"{v * 100:.{digits}f}%"
    return f"{v:.{digits}f}{unit}"

def mb(v):
    return "n/a" if v is None else f"{v / 1e6:.1f} MB"

def secs(k):
    v = num(k)
    return "n/a" if v is None else f"{v:.1f} s"

def mark(key):
    v = verdicts.get(key)
    return "" if v is None else (" ✅" if v else " ❌")

gen = {}
for d in "ABC":
    p = os.path.join(dumps, f"{d}.json")
    if os.path.exists(p):
        try:
            gen[d] = json.load(open(p))
        except ValueError:
            pass

print()
print(f"### Import benchmark, {m.get('size_mb')} MB dump (seed {m.get('seed')})")
if m.get("ancre.low_kdf") == "1":
    print("\nAncre repositories created with ANCRE_SCRYPT_N=1024 (ANCRE_LOW_KDF=1): imports exclude the KDF.")
print()
if "A" in gen:
    g = gen["A"]
    print(f"Dump A: {g['documents']} documents, {mb(A)}; generated in {g['seconds']:.1f} s "
          f"({g['bytes'] / 1e6 / g['seconds']:.0f} MB/s); "
          f"B: {mb(num('dump_B.bytes'))}, C: {mb(num('dump_C.bytes'))}.")
    print()
print("| | Ancre | zstd -T2 -3 | restic |")
print("|---|---|---|---|")
print(f"| repository init, time / peak RSS | {secs('ancre_init_random.seconds')} / {f(div(num('ancre_init_random.rss_kib'), 1024), ' MiB', digits=0)} | "
      f"| {secs('restic_init_random.seconds')} / {f(div(num('restic_init_random.rss_kib'), 1024), ' MiB', digits=0)} |")
print(f"| first import, time | {secs('ancre_A_random.seconds')} | {secs('zstd_A.seconds')} | {secs('restic_A_random.seconds')} |")
print(f"| first import, throughput | {f(r['ancre_mb_s'], ' MB/s')} | {f(r['zstd_mb_s'], ' MB/s')} | {f(r['restic_mb_s'], ' MB/s')} |")
print(f"| first snapshot, stored | {mb(aa)} | {mb(r['zstd_bytes'])} | {mb(ra)} |")
print(f"| second snapshot (B, random), time | {secs('ancre_second_random.seconds')} | | {secs('restic_second_random.seconds')} |")
print(f"| second snapshot (B, random), share | {f(r['ancre_share_random'], pct=True)} | | {f(r['restic_share_random'], pct=True)} |")
print(f"| second snapshot (C, skewed), share | {f(r['ancre_share_skewed'], pct=True)} | | {f(r['restic_share_skewed'], pct=True)} |")
print(f"| peak RSS, first import | {f(div(num('ancre_A_random.rss_kib'), 1024), ' MiB', digits=0)} | | {f(r['restic_rss_mib'], ' MiB', digits=0)} |")
print()
print("| target | measured | goal |")
print("|---|---|---|")
for key, label, op, t in targets:
    v = r.get(key)
    shown = f(v, pct=True) if "share" in key else (f(v, digits=0) if "rss" in key else f(v, digits=2))
    goal = f"{op} {t * 100:.0f}%" if "share" in key else f"{op} {t:g}"
    print(f"| {label} | {shown}{mark(key)} | {goal} |")
if r["ancre_index_bytes_per_blob"] is not None:
    v = r["ancre_index_bytes_per_blob"]
    print(f"\nAncre index bytes per blob: {v:.1f}" if isinstance(v, (int, float)) else f"\nAncre index bytes per blob: {v}")
if r["zstd_ratio"] is not None:
    print(f"\nzstd -3 compression ratio of the dump: {r['zstd_ratio']:.2f}x")
errors = {k: v for k, v in m.items() if k.endswith(".error")}
for k, v in errors.items():
    print(f"\n**{k[:-6]}**: {v}")

def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return None

cpu = None
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
result = {
    "benchmark": "import",
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_start": m.get("loadavg_start"), "loadavg_end": open("/proc/loadavg").read().split()[:3],
                "memory_kib": next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), None)},
    "generator": gen,
    "measurements": {k: (num(k) if num(k) is not None else v) for k, v in m.items()},
    "results": r,
    "targets": {key: {"label": label, "op": op, "target": t, "value": r.get(key), "met": verdicts[key]}
                for key, label, op, t in targets},
    "ancre_stats": stats,
    "ancre_output": {n[:-4]: open(os.path.join(logs, n), encoding="utf-8", errors="replace").read().strip()
                     for n in sorted(os.listdir(logs)) if n.startswith("ancre_") and n.endswith(".out")},
}
with open(out, "w", encoding="utf-8") as fp:
    json.dump(result, fp, indent=2, ensure_ascii=False)
    fp.write("\n")
print(f"\nresults: {out}")
PY
