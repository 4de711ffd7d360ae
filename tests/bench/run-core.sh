#!/usr/bin/env bash
# run-core.sh — the three core dlog measurements on the file: backend.
#
#   1. one writer of 100-byte records, with a plain-file baseline
#      (write + fdatasync per batch) measured in the same run;
#      targets: >= 1,000,000 records/s and >= 50% of the baseline's MB/s
#   2. one reader of a stream written beforehand;
#      target: >= 2,000,000 records/s
#   3. a tailing reader in another process, one record per millisecond;
#      target: p99 <= 5 ms. Two figures: from write start to read (this
#      includes the write's own fsync), and from the acknowledgement (the
#      record is durable) to the read in the other process
#
# Each runs RUNS times (default 3); the table shows medians and every run.
# Environment:
#   DLOG_BENCH   the dlog-bench binary (default: ./dlog-bench, then the
#                build tree next to this script)
#   BENCH_DIR    data directory; must not exist, removed at the end
#                (default /tmp/dlog-bench-core.PID; put it on the disk to test)
#   RUNS (3), DURATION (5 s, measurement 1), READ_COUNT (5000000 records,
#   measurement 2), TAIL_COUNT (2000 records, measurement 3)
# Exit status: 0 when every run completed (whether or not targets were met),
# 1 when a run failed.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
READ_COUNT=${READ_COUNT:-5000000}
TAIL_COUNT=${TAIL_COUNT:-2000}
DIR=${BENCH_DIR:-/tmp/dlog-bench-core.$$}

here=$(cd "$(dirname "$0")" && pwd)
BENCH=${DLOG_BENCH:-}
if [ -z "$BENCH" ]; then
  for b in ./dlog-bench "$here/../../dlog-bench"; do
    if [ -x "$b" ]; then BENCH=$b; break; fi
  done
fi
if [ -z "$BENCH" ] || [ ! -x "$BENCH" ]; then
  echo "run-core.sh: dlog-bench not found; build it (make dlog-bench) and set DLOG_BENCH" >&2
  exit 1
fi
if [ -e "$DIR" ]; then
  echo "run-core.sh: $DIR exists; BENCH_DIR must name a new directory" >&2
  exit 1
fi
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
URI="file:$DIR"

# The value of a numeric key in the JSON object on the last line of $1.
jget() {
  sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"
}

# The median of the arguments.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# run LABEL ARGS...: runs dlog-bench --json, prints its human lines to stderr,
# sets LAST to its JSON line.
run() {
  local label=$1 out
  shift
  echo "--- $label: dlog-bench -u $URI $*" >&2
  if ! out=$("$BENCH" -u "$URI" "$@" --json); then
    printf '%s\n' "$out" >&2
    echo "run-core.sh: $label failed" >&2
    exit 1
  fi
  printf '%s\n' "$out" | sed '$d' >&2
  LAST=$(printf '%s\n' "$out" | tail -n 1)
}

fmt_int() { awk -v v="$1" 'BEGIN { s = sprintf("%.0f", v); r = "";
  while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
  print s r }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? "yes" : "no" }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "yes" : "no" }'; }
list() { local IFS=/; echo "$*"; }

# 1. One writer, 100-byte records, baseline disk.
w_rps=() w_mbps=() w_base=() w_ratio=() w_p99=()
for i in $(seq "$RUNS"); do
  run "write $i/$RUNS" --writers 1 --size 100 --duration "$DURATION" --baseline disk
  w_rps+=("$(jget "$LAST" records_per_sec)")
  w_mbps+=("$(jget "$LAST" mb_per_sec)")
  w_base+=("$(jget "$LAST" baseline_mb_per_sec)")
  w_ratio+=("$(jget "$LAST" ratio)")
  w_p99+=("$(jget "$LAST" p99_us)")
done

# 2. One reader of READ_COUNT records written first.
run "fill the read stream" --stream core-read --create --writers 1 --size 100 \
  --count "$READ_COUNT"
r_rps=()
for i in $(seq "$RUNS"); do
  run "read $i/$RUNS" --stream core-read --writers 0 --readers 1 --count "$READ_COUNT"
  r_rps+=("$(jget "$LAST" read_records_per_sec)")
done

# 3. Tail latency across processes.
t_p50=() t_p99=() t_p999=() v_p99=()
for i in $(seq "$RUNS"); do
  run "tail $i/$RUNS" --tail-latency --count "$TAIL_COUNT"
  t_p50+=("$(jget "$LAST" p50_us)")
  t_p99+=("$(jget "$LAST" p99_us)")
  t_p999+=("$(jget "$LAST" p999_us)")
  v_p99+=("$(jget "$LAST" visible_p99_us)")
done

m_rps=$(median "${w_rps[@]}")
m_mbps=$(median "${w_mbps[@]}")
m_base=$(median "${w_base[@]}")
m_ratio=$(median "${w_ratio[@]}")
m_wp99=$(median "${w_p99[@]}")
m_read=$(median "${r_rps[@]}")
m_tp50=$(median "${t_p50[@]}")
m_tp99=$(median "${t_p99[@]}")
m_tp999=$(median "${t_p999[@]}")
m_vp99=$(median "${v_p99[@]}")
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
ratios=()
for r in "${w_ratio[@]}"; do ratios+=("$(awk -v v="$r" 'BEGIN { printf "%.2f", v }')"); done
wr=()
for r in "${w_rps[@]}"; do wr+=("$(fmt_int "$r")"); done
rr=()
for r in "${r_rps[@]}"; do rr+=("$(fmt_int "$r")"); done
tp=()
for r in "${t_p99[@]}"; do tp+=("$(ms "$r")"); done
vp=()
for r in "${v_p99[@]}"; do vp+=("$(ms "$r")"); done

fs=$(df -T "$DIR" 2>/dev/null | awk 'NR == 2 { print $2 }')
echo
echo "dlog core benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$(uname -sr), $fs at $DIR; medians of $RUNS runs"
echo
echo "| measurement | median | runs | target | met |"
echo "| --- | --- | --- | --- | --- |"
echo "| 1 writer, 100 B records, ${DURATION} s | $(fmt_int "$m_rps") records/s" \
  "($(awk -v v="$m_mbps" 'BEGIN { printf "%.1f", v }') MB/s, write p99 $(ms "$m_wp99") ms)" \
  "| $(list "${wr[@]}") | ≥ 1,000,000 records/s | $(ge "$m_rps" 1000000) |"
echo "| same, vs write+fdatasync baseline | $(awk -v v="$m_ratio" 'BEGIN { printf "%.2f", v }')" \
  "(baseline $(awk -v v="$m_base" 'BEGIN { printf "%.1f", v }') MB/s)" \
  "| $(list "${ratios[@]}") | ≥ 0.50 | $(ge "$m_ratio" 0.5) |"
echo "| 1 reader, $(fmt_int "$READ_COUNT") records of 100 B | $(fmt_int "$m_read") records/s" \
  "| $(list "${rr[@]}") | ≥ 2,000,000 records/s | $(ge "$m_read" 2000000) |"
echo "| tailing reader in another process, p99 | $(ms "$m_tp99") ms" \
  "(p50 $(ms "$m_tp50") ms, p999 $(ms "$m_tp999") ms)" \
  "| $(list "${tp[@]}") | ≤ 5 ms | $(le "$m_tp99" 5000) |"
echo "| tailing reader in another process: acknowledged to read, p99 | $(ms "$m_vp99") ms" \
  "| $(list "${vp[@]}") | ≤ 5 ms | $(le "$m_vp99" 5000) |"
