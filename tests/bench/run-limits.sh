#!/bin/bash
# Rate-limit overhead (docs/benchmarks.md, "Rate limits"): dlog-bench through
# one dlogd, WRITERS writers of 100-byte records, alternating runs without
# limits and runs with limits configured but far above the load (so every
# write goes through the token buckets and is admitted). Prints the medians
# of RUNS runs each and their ratio.
#   RUNS=3 DURATION=5 WRITERS=16 tests/bench/run-limits.sh
set -euo pipefail
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WRITERS=${WRITERS:-16}
DIR=${BENCH_DIR:-/tmp/dlog-bench-limits.$$}
here=$(cd "$(dirname "$0")" && pwd)
BENCH=${DLOG_BENCH:-$here/../../dlog-bench}
DLOGD=${DLOGD:-$here/../../dlogd}
CTL=${DLOGCTL:-$here/../../dlogctl}
for b in "$BENCH" "$DLOGD" "$CTL"; do
  [ -x "$b" ] || { echo "run-limits.sh: $b not found (make dlog-bench dlogd dlogctl)" >&2; exit 1; }
done
[ -e "$DIR" ] && { echo "run-limits.sh: $DIR exists" >&2; exit 1; }
mkdir -p "$DIR"
# One dlogd and one stream whose limits are switched on and off between
# runs: two namespaces or two streams would differ in more than the limits
# (where their keys sit in LMDB, how full their files are).
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
"$DLOGD" --role local --data "$DIR/server" --listen 127.0.0.1:0 >"$DIR/dlogd.out" 2>&1 &
pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/^dlogd: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$DIR/dlogd.out")
  [ -n "$port" ] && break
  sleep 0.05 # poll for the port, up to 10 s
done
[ -n "$port" ] || { cat "$DIR/dlogd.out"; exit 1; }
URI=dlog://127.0.0.1:$port
"$CTL" -u "$URI" create s
limits() { # on|off
  if [ "$1" = on ]; then
    "$CTL" -u "$URI" limit s --records-per-sec 1000000000 --bytes-per-sec 1000G \
      --soft-records-per-sec 500000000 --soft-bytes-per-sec 500G >/dev/null
  else
    "$CTL" -u "$URI" limit s --records-per-sec 0 --bytes-per-sec 0 \
      --soft-records-per-sec 0 --soft-bytes-per-sec 0 >/dev/null
  fi
  sleep 1 # the proxy re-reads limits every 250 ms
}

jget() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
free=() lim=()
for r in $(seq "$RUNS"); do
  for s in free limited; do
    if [ "$s" = free ]; then limits off; else limits on; fi
    out=$("$BENCH" -u "$URI" --stream s --writers "$WRITERS" --duration "$DURATION" --size 100 --json | tail -1)
    v=$(jget "$out" records_per_sec)
    echo "run $r $s: $v records/s"
    if [ "$s" = free ]; then free+=("$v"); else lim+=("$v"); fi
  done
done
mf=$(median "${free[@]}") ml=$(median "${lim[@]}")
echo "median: no limits $mf records/s, limits not reached $ml records/s, ratio $(awk -v a="$ml" -v b="$mf" 'BEGIN { printf "%.3f", a / b }')"
"$CTL" -u "$URI" limits s | tail -3
