#!/usr/bin/env bash
# run-remote.sh — dlog-bench against dlogd on loopback, compared with the
# same benchmark on the embedded file: backend in the same run.
#
#   16 writers of 100-byte records, DURATION seconds each, RUNS times,
#   alternating remote and embedded; prints medians and their ratio.
#   Targets (the network issue): >= 500,000 acknowledged records/s over
#   dlog://, and >= 50% of the embedded figure.
#
# Environment: DLOG_BENCH, DLOGD (binaries; default: the build tree next to
# this script), RUNS (3), DURATION (5), WRITERS (16), BENCH_DIR (a new dir).
set -euo pipefail
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WRITERS=${WRITERS:-16}
DIR=${BENCH_DIR:-/tmp/dlog-bench-remote.$$}
here=$(cd "$(dirname "$0")" && pwd)
BENCH=${DLOG_BENCH:-$here/../../dlog-bench}
DLOGD=${DLOGD:-$here/../../dlogd}
for b in "$BENCH" "$DLOGD"; do
  [ -x "$b" ] || { echo "run-remote.sh: $b not found (make dlog-bench dlogd)" >&2; exit 1; }
done
[ -e "$DIR" ] && { echo "run-remote.sh: $DIR exists" >&2; exit 1; }
mkdir -p "$DIR"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
"$DLOGD" --role local --data "$DIR/server" --listen 127.0.0.1:0 >"$DIR/dlogd.out" 2>&1 &
pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/^dlogd: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$DIR/dlogd.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$DIR/dlogd.out"; exit 1; }

jget() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
run() {
  local out
  out=$("$BENCH" -u "$1" --writers "$WRITERS" --size 100 --duration "$DURATION" --json)
  printf '%s\n' "$out" | sed '$d' >&2
  printf '%s\n' "$out" | tail -n 1
}
r=() e=() rp99=() ep99=()
for i in $(seq "$RUNS"); do
  echo "--- remote $i/$RUNS: dlog://127.0.0.1:$port" >&2
  j=$(run "dlog://127.0.0.1:$port")
  r+=("$(jget "$j" records_per_sec)"); rp99+=("$(jget "$j" p99_us)")
  echo "--- embedded $i/$RUNS: file:$DIR/embedded-$i" >&2
  j=$(run "file:$DIR/embedded-$i")
  e+=("$(jget "$j" records_per_sec)"); ep99+=("$(jget "$j" p99_us)")
done
mr=$(median "${r[@]}")
me=$(median "${e[@]}")
ratio=$(awk -v a="$mr" -v b="$me" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo
echo "dlog remote vs embedded — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $WRITERS writers," \
  "100 B records, ${DURATION} s, medians of $RUNS"
echo
echo "| backend | records/s (median) | runs | write p99 (ms, median) |"
echo "| --- | --- | --- | --- |"
echo "| dlog:// (dlogd on loopback) | $(printf '%.0f' "$mr") | $(IFS=/; echo "${r[*]}") | $(awk -v v="$(median "${rp99[@]}")" 'BEGIN { printf "%.1f", v / 1000 }') |"
echo "| file: (embedded) | $(printf '%.0f' "$me") | $(IFS=/; echo "${e[*]}") | $(awk -v v="$(median "${ep99[@]}")" 'BEGIN { printf "%.1f", v / 1000 }') |"
echo
echo "ratio remote/embedded: $ratio (target >= 0.50); remote target >= 500,000 records/s:" \
  "$(awk -v v="$mr" 'BEGIN { print (v >= 500000) ? "met" : "not met" }')"
