#!/usr/bin/env bash
# cluster-kv-fault-test.sh — issue 6's fault test with dlog-kv: a counter
# INCRed through two dlog-kv replicas while the cluster under them loses
# nodes and proxies.
#
# Three nodes and two proxies (CLUSTER_PROXIES=2 tests/cluster.sh up 3);
# two dlog-kv replicas on "dlog://p1,p2" (stream kv, each its own data
# directory). Two redis-cli clients, one per replica, send "INCR counter"
# one at a time (KV_RATE per client and second) for the whole test. The
# fault pattern of fault_lib.sh (FAULT_SECONDS, default 60; FAULT_SEED;
# FAULT_KILL_PROXIES=0 kills only nodes) kills and restarts nodes and
# proxies, never a dlog-kv replica nor a client connection: dlog-kv
# retries a failed proposal with the same (client id, sequence), which the
# SM framework applies at most once. Then:
#  - every INCR sent got an answer; the answers are integers (acknowledged)
#    or errors (outcome unknown: applied or not), counted apart, and there
#    must be no errors;
#  - the values the INCRs returned are all different, and grow on each
#    connection (each INCR applied once, in order);
#  - the counter read through each replica (a linearizable GET) equals the
#    number of acknowledged INCRs;
#  - the replicas stop on SIGTERM (exit 0) and no process reports a fatal
#    error or a sanitizer finding.
# Needs redis-cli (exit 77, skipped, without it). A sanitizer build
# (ASAN_OPTIONS set) sends at a third of the rate.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
FW=$top_builddir/tests/integration/fault-writer
KV=$top_builddir/examples/kvstore/dlog-kv
. "$here/fault_lib.sh"
if [ -n "${ASAN_OPTIONS:-}" ]; then RATE=${KV_RATE:-20}; else RATE=${KV_RATE:-60}; fi

if ! command -v redis-cli >/dev/null 2>&1; then
  echo "SKIP: redis-cli not found (apt-get install redis-tools)"
  exit 77
fi

tmp=$(mktemp -d)
kv_pids=() load_pids=()
cleanup() {
  local p
  for p in "${load_pids[@]}" "${kv_pids[@]}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  "$CL" down "$tmp/c" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

echo "cluster-kv-fault-test: seed $SEED (FAULT_SEED=$SEED reruns this order)," \
  "$FAULT_SECS s, $RATE INCR/s per client, proxies killed:" \
  "$([ "$KILL_PROXIES" = 1 ] && echo yes || echo no)"
RANDOM=$SEED

out=$(CLUSTER_PROXIES=2 CLUSTER_PROXY_ARGS="--log-level info" "$CL" up 3 "$tmp/c") || {
  echo "FAIL: cluster up"
  exit 1
}
uri=$(echo "$out" | tail -n 1)
puri=$(echo "$out" | tail -n 2 | head -n 1)
case "$uri,$puri" in cluster://*,dlog://*) ok ;; *) bad "up prints the URIs: $out"; exit 1 ;; esac
addrs=${uri#cluster://}

# ---------------------------------------------------------------- replicas
ports=()
port_of() { sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/r$1.log" | tail -n 1; }
pong() {
  ports[$1]=$(port_of "$1")
  [ -n "${ports[$1]}" ] && [ "$(redis-cli -p "${ports[$1]}" PING 2>/dev/null)" = PONG ]
}
for i in 0 1; do
  "$KV" --log "$puri" --stream kv --data "$tmp/r$i" --listen 127.0.0.1:0 \
    --snapshot-every 2000 >"$tmp/r$i.log" 2>&1 &
  kv_pids[$i]=$!
  wait_for "dlog-kv replica $i answers PING" 60 pong "$i" && ok || {
    tail -5 "$tmp/r$i.log"
    exit 1
  }
done
phase "cluster up; dlog-kv on $puri, ports ${ports[*]}"

# ---------------------------------------------------------------- load
# client I: "INCR counter" lines, RATE a second, into one redis-cli on
# replica I (one command at a time: it waits for each answer), at most 20
# unanswered (so that the load follows the cluster's pace), until
# $tmp/stop; the number of lines sent goes to sent.I.
feed() {
  local n=0 k
  while [ ! -e "$tmp/stop" ]; do
    if [ $((n - $(wc -l <"$tmp/replies.$1"))) -lt 20 ]; then
      for ((k = 0; k < RATE / 10; k++)); do echo "INCR counter"; done
      n=$((n + RATE / 10))
    fi
    sleep 0.1 # pacing: RATE / 10 commands every 0.1 s
  done
  echo "$n" >"$tmp/sent.$1"
}
for i in 0 1; do
  : >"$tmp/replies.$i"
  feed "$i" | redis-cli -p "${ports[$i]}" >"$tmp/replies.$i" 2>"$tmp/cli.$i.err" &
  load_pids+=($!)
done
answered() { cat "$tmp"/replies.* 2>/dev/null | wc -l; }
acked() { cat "$tmp"/replies.* 2>/dev/null | grep -c '^[0-9][0-9]*$'; }
above() { [ "$(acked)" -ge "$1" ]; }
wait_for "the first 50 INCRs" 30 above 50 && ok

# ---------------------------------------------------------------- faults
progress_note() { echo "$(acked) INCRs acknowledged so far"; }
fault_loop
phase "$nkills kills; stopping the clients"
n=$(acked)
wait_for "INCRs after the last restart" 30 above $((n + 20)) && ok
touch "$tmp/stop"
clients_done() { local p; for p in "${load_pids[@]}"; do alive "$p" && return 1; done; return 0; }
wait_for "the clients have their answers" 60 clients_done && ok
wait "${load_pids[@]}" 2>/dev/null
load_pids=()

sent=$(($(cat "$tmp/sent.0" 2>/dev/null || echo 0) + $(cat "$tmp/sent.1" 2>/dev/null || echo 0)))
acked=$(acked)
errors=$(($(answered) - acked))
unknown=$((sent - acked - errors))
[ "$errors" -eq 0 ] && ok ||
  bad "$errors INCRs answered with an error (outcome unknown): $(grep -hv '^[0-9][0-9]*$' "$tmp"/replies.* | sort | uniq -c | head -5)"
[ "$unknown" -eq 0 ] && ok || bad "$unknown INCRs never answered: $(head -c 500 "$tmp"/cli.*.err)"
dups=$(grep -h '^[0-9][0-9]*$' "$tmp"/replies.* | sort -n | uniq -d | wc -l)
[ "$dups" -eq 0 ] && ok || bad "$dups values returned by two INCRs"
for i in 0 1; do
  grep '^[0-9][0-9]*$' "$tmp/replies.$i" | awk 'p != "" && $1 <= p { exit 1 } { p = $1 }' && ok ||
    bad "the INCRs on replica $i did not return growing values"
done

# ---------------------------------------------------------------- the counter
phase "reading the counter through each replica"
for i in 0 1; do
  got=
  read_counter() { got=$(redis-cli -p "${ports[$1]}" GET counter 2>&1) && [[ "$got" =~ ^[0-9]+$ ]]; }
  wait_for "a linearizable GET through replica $i" 30 read_counter "$i" && ok
  [ "$got" = "$acked" ] && ok || bad "replica $i: counter '$got', acknowledged INCRs $acked"
  echo "replica $i: counter $got"
done
max=$(grep -h '^[0-9][0-9]*$' "$tmp"/replies.* | sort -n | tail -1)
[ "${max:-0}" = "$acked" ] && ok || bad "the largest value an INCR returned is ${max:-none}, not $acked"

retries=0
for i in 0 1; do
  r=$(redis-cli -p "${ports[$i]}" INFO 2>/dev/null | tr -d '\r' | sed -n 's/^proposal_retries://p')
  retries=$((retries + ${r:-0}))
done

# ---------------------------------------------------------------- the end
phase "stopping"
for i in 0 1; do
  kill -TERM "${kv_pids[$i]}"
  wait "${kv_pids[$i]}"
  rc=$?
  [ $rc -eq 0 ] && ok || bad "dlog-kv replica $i exit status $rc on SIGTERM: $(tail -3 "$tmp/r$i.log")"
  kv_pids[$i]=
done
grep -h "replica stopped\|Assertion\|fatal" "$tmp"/r*.log >"$tmp/fatal"
[ -s "$tmp/fatal" ] && bad "a replica reported a fatal error: $(head -3 "$tmp/fatal")" || ok
fault_down "$tmp"/r*.log
echo "summary: seed $SEED, $FAULT_SECS s, $(kills_summary): $sent INCRs sent," \
  "$acked acknowledged, $errors errors (outcome unknown), $unknown unanswered;" \
  "counter $got; dlog-kv retried $retries proposals"
echo "cluster-kv-fault-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
