#!/usr/bin/env bash
# run-etcd.sh — dlog against etcd on one machine, in one run (issue 6).
#
# Starts, on loopback ports in a new directory:
#   - a 3-member etcd cluster (Debian's etcd-server, default settings: every
#     write is fsync'd to etcd's WAL before it is acknowledged);
#   - a 3-node dlog cluster (tests/cluster.sh up 3; libraft writes its log
#     with O_DSYNC, so an acknowledged record is on disk on a majority).
# Then, RUNS times, alternating between the two systems:
#   1. peak: etcd-load (closed loop, ETCD_CONNS keep-alive HTTP connections
#      to the leader's v3 JSON gateway, POST /v3/kv/put, 100-byte values)
#      and dlog-bench (DLOG_WRITERS writers of 100-byte records through
#      cluster://), DURATION seconds each;
# and, RUNS times again, each system at half of its own median peak, open
# loop (every put or write due at a fixed time, latency counted from then):
#   2. p99 at half peak.
# Prints a Markdown table: medians, every run, the ratio of the peaks and
# the p99s. Targets: dlog records/s >= 50 x etcd puts/s; dlog's p99 at half
# its peak <= etcd's p99 at half its peak. The script exits 1 only if a run
# failed, not when a target is missed.
#
# Environment: RUNS (3), DURATION (5), ETCD_CONNS (512), DLOG_WRITERS (4),
# DLOG_RPW (records per dlog_write, 64), HALF_RPW (records per dlog_write at
# half peak; default DLOG_RPW, the same load shape as the peak's), DLOG_VIA (cluster, or proxy: through
# one dlogd --role proxy), CHECK_PERF (s, m, l or xl: also run `etcdctl
# check perf --load X` once, 60 s), BENCH_DIR (default a new /tmp dir),
# top_builddir (where dlog-bench, etcd-load, dlogd and dlogctl were built;
# default the tree above this script). Missing etcd and etcdctl are installed
# with apt-get when run as root. Every process started here is stopped on
# exit; every wait has a deadline.
set -euo pipefail
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
ETCD_CONNS=${ETCD_CONNS:-512}
DLOG_WRITERS=${DLOG_WRITERS:-4}
DLOG_RPW=${DLOG_RPW:-64}
HALF_RPW=${HALF_RPW:-$DLOG_RPW}
DLOG_VIA=${DLOG_VIA:-cluster}
CHECK_PERF=${CHECK_PERF:-}
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
BENCH=${DLOG_BENCH:-$top_builddir/dlog-bench}
LOAD=${ETCD_LOAD:-$top_builddir/etcd-load}
CLUSTER=$here/../cluster.sh
DIR=${BENCH_DIR:-/tmp/dlog-vs-etcd.$$}

say() { echo "run-etcd.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

for b in "$BENCH" "$LOAD" "$top_builddir/dlogd" "$top_builddir/dlogctl"; do
  [ -x "$b" ] || die "$b not found (make, or set top_builddir)"
done
case "$DLOG_VIA" in cluster | proxy) ;; *) die "DLOG_VIA is cluster or proxy" ;; esac

# ---------------------------------------------------------------- etcd itself
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "etcd and etcdctl are missing: apt-get install etcd-server etcd-client"
  say "installing etcd-server and etcd-client"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y etcd-server etcd-client >&2 ||
    { apt-get update >&2 && apt-get install -y etcd-server etcd-client >&2; } ||
    die "apt-get install etcd-server etcd-client failed"
fi

[ -e "$DIR" ] && die "$DIR exists"
mkdir -p "$DIR"
etcd_pids=()
cleanup() {
  local p
  for p in "${etcd_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -e "$DIR/dlog/uri" ] && "$CLUSTER" down "$DIR/dlog" >/dev/null 2>&1
  for p in "${etcd_pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_ports() {
  python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()' "$1"
}

jget() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" <<<"$1"; }
median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ms() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
int() { printf '%.0f' "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

load_start=$(load)
say "load average at the start: $load_start"

# ---------------------------------------------------------------- etcd up
read -r -a ports <<<"$(free_ports 6)"
members="" endpoints=""
for i in 1 2 3; do
  members="$members${members:+,}e$i=http://127.0.0.1:${ports[$((2 * i - 1))]}"
  endpoints="$endpoints${endpoints:+,}127.0.0.1:${ports[$((2 * i - 2))]}"
done
for i in 1 2 3; do
  c=${ports[$((2 * i - 2))]} p=${ports[$((2 * i - 1))]}
  etcd --name "e$i" --data-dir "$DIR/etcd/e$i" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$members" --initial-cluster-state new \
    --initial-cluster-token "run-etcd-$$" --log-level warn >"$DIR/etcd-e$i.log" 2>&1 &
  etcd_pids+=($!)
done
leader=""
deadline=$((SECONDS + 60))
while [ -z "$leader" ] && [ $SECONDS -lt $deadline ]; do
  # "endpoint, id, version, db size, is leader, ...": the leader's endpoint
  leader=$(etcdctl --endpoints "$endpoints" --command-timeout 2s endpoint status 2>/dev/null |
    awk -F', ' '$5 == "true" { print $1 }') || true
  [ -n "$leader" ] || sleep 0.2 # polls for an elected leader, up to the deadline
done
[ -n "$leader" ] || {
  tail -n 5 "$DIR"/etcd-e*.log >&2
  die "etcd has no leader within 60 s"
}
say "etcd $(etcd --version | sed -n 's/^etcd Version: //p'): $endpoints, leader $leader"

# ---------------------------------------------------------------- dlog up
if [ "$DLOG_VIA" = proxy ]; then
  CLUSTER_PROXIES=1 "$CLUSTER" up 3 "$DIR/dlog" >"$DIR/dlog-up.out" || die "dlog cluster does not start"
  uri=$(cat "$DIR/dlog/proxy-uri")
else
  "$CLUSTER" up 3 "$DIR/dlog" >"$DIR/dlog-up.out" || die "dlog cluster does not start"
  uri=$(cat "$DIR/dlog/uri")
fi
say "dlog: $uri"

etcd_run() { # etcd_run [--rate R]
  local out
  out=$("$LOAD" --endpoints "$leader" --conns "$ETCD_CONNS" --size 100 \
    --duration "$DURATION" --json "$@") || {
    printf '%s\n' "$out" >&2
    die "etcd-load failed"
  }
  printf '%s\n' "$out" | sed '$d' >&2
  printf '%s\n' "$out" | tail -n 1
}
dlog_run() { # dlog_run RPW [--rate R]
  local out rpw=$1
  shift
  out=$("$BENCH" -u "$uri" --writers "$DLOG_WRITERS" --size 100 --duration "$DURATION" \
    --records-per-write "$rpw" --inflight $((16384 / rpw > 256 ? 16384 / rpw : 256)) \
    --json "$@") || {
    printf '%s\n' "$out" >&2
    die "dlog-bench failed"
  }
  printf '%s\n' "$out" | sed '$d' >&2
  printf '%s\n' "$out" | tail -n 1
}

# ---------------------------------------------------------------- peaks
ep=() ep99=() dp=() dp99=()
for i in $(seq "$RUNS"); do
  say "--- peak $i/$RUNS: etcd, $ETCD_CONNS connections to $leader (load $(load))"
  j=$(etcd_run)
  ep+=("$(jget "$j" puts_per_sec)") ep99+=("$(jget "$j" p99_us)")
  say "--- peak $i/$RUNS: dlog, $DLOG_WRITERS writers x $DLOG_RPW records per write (load $(load))"
  j=$(dlog_run "$DLOG_RPW")
  dp+=("$(jget "$j" records_per_sec)") dp99+=("$(jget "$j" p99_us)")
done
mep=$(median "${ep[@]}")
mdp=$(median "${dp[@]}")
erate=$(awk -v v="$mep" 'BEGIN { printf "%.0f", v / 2 }')
drate=$(awk -v v="$mdp" 'BEGIN { printf "%.0f", v / 2 }')

# ---------------------------------------------------------------- half peak
eh=() eh99=() dh=() dh99=() dlate=()
for i in $(seq "$RUNS"); do
  say "--- half peak $i/$RUNS: etcd at $erate puts/s (load $(load))"
  j=$(etcd_run --rate "$erate")
  eh+=("$(jget "$j" puts_per_sec)") eh99+=("$(jget "$j" p99_us)")
  say "--- half peak $i/$RUNS: dlog at $drate records/s, $HALF_RPW per write (load $(load))"
  j=$(dlog_run "$HALF_RPW" --rate "$drate")
  dh+=("$(jget "$j" records_per_sec)") dh99+=("$(jget "$j" p99_us)")
  dlate+=("$(jget "$j" late_writes)")
done

perf_line=""
if [ -n "$CHECK_PERF" ]; then
  say "--- etcdctl check perf --load $CHECK_PERF (60 s; load $(load))"
  if out=$(timeout 180 etcdctl --endpoints "$endpoints" check perf --load "$CHECK_PERF" 2>&1); then :; fi
  perf_line=$(printf '%s\n' "$out" | tr '\r' '\n' | grep -E '^(PASS|FAIL)|^Error' | paste -sd';' -)
  say "check perf: ${perf_line:-no result}"
fi
load_end=$(load)

mdh99=$(median "${dh99[@]}")
meh99=$(median "${eh99[@]}")
ratio=$(awk -v d="$mdp" -v e="$mep" 'BEGIN { printf "%.1f", (e > 0 ? d / e : 0) }')
join() { local IFS=/; echo "$*"; }
ints() { local v out=(); for v in "$@"; do out+=("$(int "$v")"); done; join "${out[@]}"; }
mss() { local v out=(); for v in "$@"; do out+=("$(ms "$v")"); done; join "${out[@]}"; }

echo
echo "dlog vs etcd — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average" \
  "$load_start at the start, $load_end at the end; 100-byte values/records," \
  "${DURATION} s per measurement, medians of $RUNS"
echo
echo "| measurement | etcd $(etcd --version | sed -n 's/^etcd Version: //p') (3 members) | dlog (3 nodes, $DLOG_VIA) |"
echo "| --- | --- | --- |"
echo "| peak, acknowledged per second (median) | $(int "$mep") puts/s | $(int "$mdp") records/s |"
echo "| peak, runs | $(ints "${ep[@]}") | $(ints "${dp[@]}") |"
echo "| p99 at peak, ms (runs) | $(mss "${ep99[@]}") | $(mss "${dp99[@]}") |"
echo "| half peak, offered | $erate puts/s | $drate records/s |"
echo "| half peak, achieved (runs) | $(ints "${eh[@]}") | $(ints "${dh[@]}") |"
echo "| p99 at half peak, ms (median) | $(ms "$meh99") | $(ms "$mdh99") |"
echo "| p99 at half peak, ms (runs) | $(mss "${eh99[@]}") | $(mss "${dh99[@]}") |"
echo
echo "etcd: etcd-load, $ETCD_CONNS connections to the leader; dlog: dlog-bench, $DLOG_WRITERS" \
  "writers, $DLOG_RPW records per write at peak, $HALF_RPW at half peak" \
  "(writes sent >= 1 ms late: $(join "${dlate[@]}"))."
[ -n "$perf_line" ] && echo "etcdctl check perf --load $CHECK_PERF: $perf_line"
echo
echo "ratio dlog/etcd at peak: $ratio (target >= 50):" \
  "$(awk -v r="$ratio" 'BEGIN { print (r >= 50) ? "met" : "not met" }')"
echo "p99 at half peak: dlog $(ms "$mdh99") ms, etcd $(ms "$meh99") ms (target dlog <= etcd):" \
  "$(awk -v d="$mdh99" -v e="$meh99" 'BEGIN { print (d <= e) ? "met" : "not met" }')"
