# Shared helpers of the benchmark scripts (sourced; they set $M, the measurements file,
# and $LOGS, the log directory, before calling these).

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
put() { printf '%s\t%s\n' "$1" "$2" >>"$M"; }
now() { date +%s.%N; }
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

# run_timed <name> <command...>: wall seconds, peak RSS (KiB) and CPU seconds into the
# measurements, stdout/stderr into $LOGS/<name>.{out,err}. Returns the command's status.
run_timed() {
    local name=$1; shift
    local t0 t1 rc=0
    t0=$(now)
    if [ -n "$TIME" ]; then
        "$TIME" -v -o "$LOGS/$name.time" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    else
        "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" || rc=$?
    fi
    t1=$(now)
    if [ $rc -ne 0 ]; then
        warn "$name failed (exit $rc): $*"
        tail -n 20 "$LOGS/$name.err" >&2 || true
        put "$name.error" "exit $rc"
        return $rc
    fi
    put "$name.seconds" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
    if [ -n "$TIME" ] && [ -f "$LOGS/$name.time" ]; then
        put "$name.rss_kib" "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$LOGS/$name.time")"
        put "$name.cpu_s" "$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$LOGS/$name.time")"
    fi
}

# start_simulator: the replica-set simulator on a free loopback port; sets SIM_PID and
# PORT (output in $LOGS/sim.{out,err}). The caller stops it (kill "$SIM_PID").
start_simulator() {
    python3 "$ROOT/Tools/simulator/simulator.py" --host 127.0.0.1 --port 0 >"$LOGS/sim.out" 2>"$LOGS/sim.err" &
    SIM_PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$LOGS/sim.out")
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "the simulator did not start (see $LOGS/sim.err)" >&2; exit 1; }
}
