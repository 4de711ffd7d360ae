#!/usr/bin/env bash
# kv-vs-redis.sh — dlog-kv against redis-server, in the same run.
#
# Starts three dlog-kv replicas on one file: namespace and a redis-server
# with every write fsync'd (--appendonly yes --appendfsync always --save ''),
# each on a free loopback port in a temporary directory, runs the same
# redis-benchmark against both, and prints a Markdown table with both
# throughputs and their ratio (targets: SET >= 50% of redis, GET >= 80%).
#
# Usage: tests/bench/kv-vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-d BYTES]
#        [--runs N] [--spread]
#   defaults: -n 100000 -c 50 -d 100 --runs 1
#   --spread  split the clients over the three replicas (one benchmark per
#             replica at once, throughputs added) instead of benchmarking
#             replica 0 alone
# Environment: top_builddir (default: this script's ../..), DLOG_KV (binary).
# A benchmark, not a test: it never fails on a ratio; the machine's speed
# drifts, so compare only numbers measured in the same run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$here/../..}
KV=${DLOG_KV:-$top_builddir/examples/kvstore/dlog-kv}
N=100000
C=50
D=100
RUNS=1
SPREAD=0
while [ $# -gt 0 ]; do
  case "$1" in
  -n) N=$2; shift 2 ;;
  -c) C=$2; shift 2 ;;
  -d) D=$2; shift 2 ;;
  --runs) RUNS=$2; shift 2 ;;
  --spread) SPREAD=1; shift ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "kv-vs-redis: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for t in redis-benchmark redis-server redis-cli; do
  command -v "$t" >/dev/null || { echo "kv-vs-redis: $t not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
[ -x "$KV" ] || { echo "kv-vs-redis: $KV is not built (make examples)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-vs-redis.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free loopback port, from the kernel (bind to port 0, read it back).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1
}
wait_ping() { # PORT
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  echo "kv-vs-redis: nothing answers on port $1" >&2
  return 1
}

kv_ports=()
for i in 0 1 2; do
  : >"$tmp/r$i.log"
  "$KV" --log "file:$tmp/ns" --stream bench --data "$tmp/r$i" --listen 127.0.0.1:0 \
    2>>"$tmp/r$i.log" &
  pids+=($!)
  p=
  for ((w = 0; w < 300; w++)); do
    p=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/r$i.log" || true)
    [ -n "$p" ] && break
    sleep 0.1
  done
  [ -n "$p" ] || { echo "kv-vs-redis: replica $i did not start:" >&2; cat "$tmp/r$i.log" >&2; exit 1; }
  wait_ping "$p"
  kv_ports+=("$p")
done

rport=$(free_port)
mkdir "$tmp/redis"
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes \
  --appendfsync always --save '' --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_ping "$rport"

# bench PORT... : requests/s of SET and GET ("set get"), summed over ports
# when several run at once (the clients are split between them).
bench() {
  local n=$#
  local c=$(((C + n - 1) / n)) req=$(((N + n - 1) / n)) j=0 p
  local -a bp=()
  for p in "$@"; do
    redis-benchmark -p "$p" -t set,get -n "$req" -c "$c" -d "$D" -q \
      >"$tmp/out.$j" 2>/dev/null &
    bp+=($!)
    j=$((j + 1))
  done
  wait "${bp[@]}" || true
  for ((j = 0; j < n; j++)); do tr '\r' '\n' <"$tmp/out.$j"; done |
    awk '/^SET: [0-9.]+ requests per second/ { s += $2 }
         /^GET: [0-9.]+ requests per second/ { g += $2 }
         END { printf "%.0f %.0f\n", s, g }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$tmp/kv.res"
: >"$tmp/redis.res"
for ((r = 0; r < RUNS; r++)); do
  if [ "$SPREAD" -eq 1 ]; then
    bench "${kv_ports[@]}" >>"$tmp/kv.res"
  else
    bench "${kv_ports[0]}" >>"$tmp/kv.res"
  fi
  bench "$rport" >>"$tmp/redis.res"
done
kv_set=$(cut -d' ' -f1 "$tmp/kv.res" | median)
kv_get=$(cut -d' ' -f2 "$tmp/kv.res" | median)
r_set=$(cut -d' ' -f1 "$tmp/redis.res" | median)
r_get=$(cut -d' ' -f2 "$tmp/redis.res" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print (b > 0 && a / b >= t) ? "met" : "missed" }'; }

mode=$([ "$SPREAD" -eq 1 ] && echo "clients spread over 3 replicas" || echo "replica 0 of 3")
echo
echo "redis-benchmark -t set,get -n $N -c $C -d $D; dlog-kv: $mode; redis: appendfsync always; median of $RUNS run(s)"
echo
echo "| test | dlog-kv (req/s) | redis (req/s) | ratio | target |"
echo "| --- | ---: | ---: | ---: | --- |"
echo "| SET | $kv_set | $r_set | $(ratio "$kv_set" "$r_set") | >= 50% ($(verdict "$kv_set" "$r_set" 0.5)) |"
echo "| GET | $kv_get | $r_get | $(ratio "$kv_get" "$r_get") | >= 80% ($(verdict "$kv_get" "$r_get" 0.8)) |"
