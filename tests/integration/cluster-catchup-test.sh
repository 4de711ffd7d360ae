#!/usr/bin/env bash
# cluster-catchup-test.sh — a wiped replica catches up by state transfer,
# without holding the data set in memory (issue 6, "Catch-up without
# memory growth"; docs/cluster.md, "Catching up").
#
# Three nodes (tests/cluster.sh) whose data groups snapshot every 128
# entries and keep 64 after a snapshot, so the leader's Raft log no longer
# reaches back to the start. dlog-bench writes CATCHUP_MB MiB (default 64;
# CATCHUP_MB=1024 for the issue's figure) through cluster://. Then node 3
# is SIGKILLed, its data group directories (Raft log and LMDB) are wiped,
# and it is restarted: libraft sends it a snapshot, which holds no data, so
# it must load the contents from a peer (SEG_DUMP). The test checks that:
#  - the leader had compacted its log (a snapshot file), and node 3 took
#    the transfer path (its log says so);
#  - node 3 reaches the leader's applied index and digest (seg-state asks
#    each node itself), within a deadline;
#  - node 3's peak RSS (VmHWM) while catching up stays under twice the
#    smaller peak of the two steady nodes, measured after the writes;
#  - every record reads back from node 3 alone: nodes 1 and 2 are stopped
#    (SIGSTOP) and a cluster:// URI naming only node 3 reads the stream;
#  - every process stops (SIGTERM) and nothing is left running.
# It prints the figures (sizes, peaks, duration); CATCHUP_LOGS=DIR keeps
# the nodes' logs. Every wait polls with a deadline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
BENCH=$top_builddir/dlog-bench
STATE=$top_builddir/tests/integration/seg-state
MB=${CATCHUP_MB:-64}
SIZE=4096
COUNT=$((MB * 1024 * 1024 / SIZE))
tmp=$(mktemp -d)
stopped=
cleanup() {
  for p in $stopped; do kill -CONT "$p" 2>/dev/null; done
  "$CL" down "$tmp/c" >/dev/null 2>&1
  # CATCHUP_LOGS=DIR keeps the nodes' logs
  [ -n "${CATCHUP_LOGS:-}" ] && mkdir -p "$CATCHUP_LOGS" && cp "$tmp"/c/*.log "$CATCHUP_LOGS"/
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    sleep 0.2 # polls, up to the deadline
  done
  bad "$what: not within the deadline"
  return 1
}

export CLUSTER_NODE_ARGS="--data-snapshot-threshold 8 --data-snapshot-trailing 4 --log-level info"
out=$("$CL" up 3 "$tmp/c") || { echo "FAIL: cluster up"; exit 1; }
uri=$(echo "$out" | tail -n 1)
case "$uri" in cluster://*) ok ;; *) bad "up prints the cluster URI last: $uri"; exit 1 ;; esac
listen() { sed -n '/^--listen$/{n;p;q}' "$tmp/c/n$1.args"; }
pid() { cat "$tmp/c/n$1.pid"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
state() { "$STATE" "$(listen "$1")" 0 2>/dev/null; }

# --- writes
t0=$SECONDS
"$BENCH" -u "$uri" --stream big --create --writers 1 --size $SIZE --count $COUNT \
  --batch-bytes 262144 --inflight 16 --timeout 1800 >"$tmp/bench.out" 2>&1 && ok || {
  bad "dlog-bench wrote $COUNT records of $SIZE bytes"
  cat "$tmp/bench.out"
}
echo "wrote $MB MiB ($COUNT records of $SIZE bytes) in $((SECONDS - t0)) s"
same3() {
  local a b c
  a=$(state 1) && b=$(state 2) && c=$(state 3) && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
wait_for "three replicas agree after the writes" 120 same3 && ok
written=$(state 1)
echo "state after the writes (applied hash segments entries bytes): $written"
ls "$tmp"/c/n1/group-0/raft/snapshot-* >/dev/null 2>&1 && ok ||
  bad "node 1 took no data-group snapshot"
steady1=$(hwm_kb "$(pid 1)")
steady2=$(hwm_kb "$(pid 2)")
steady=$((steady1 < steady2 ? steady1 : steady2))
echo "steady peak RSS: node 1 ${steady1} KiB, node 2 ${steady2} KiB"

# --- node 3 wiped and restarted
"$CL" kill "$tmp/c" 3 && ok || bad "kill node 3"
rm -rf "$tmp"/c/n3/group-*/raft "$tmp"/c/n3/group-*/fsm
t1=$SECONDS
"$CL" restart "$tmp/c" 3 && ok || bad "restart node 3"
leader_state() { state 1; }
caught_up() { [ "$(state 3)" = "$(state 1)" ] && [ -n "$(state 1)" ]; }
wait_for "node 3 catches up" $((120 + MB / 4)) caught_up && ok
took=$((SECONDS - t1))
peak3=$(hwm_kb "$(pid 3)")
echo "node 3 caught up in $took s; its peak RSS ${peak3} KiB (steady ${steady} KiB)"
grep -q "loading the contents from node" "$tmp/c/n3.log" &&
  grep -q "loaded the state at index" "$tmp/c/n3.log" && ok ||
  bad "node 3 did not load the contents from a peer"
[ -n "$peak3" ] && [ "$peak3" -lt $((2 * steady)) ] && ok ||
  bad "node 3's peak RSS ${peak3} KiB is not under twice ${steady} KiB"
[ "$(state 3)" = "$written" ] && ok || bad "node 3 holds $(state 3), not $written"

# --- every record from node 3 alone
kill -STOP "$(pid 1)" "$(pid 2)"
stopped="$(pid 1) $(pid 2)"
"$BENCH" -u "cluster://$(listen 3)" --stream big --writers 0 --readers 1 \
  --count $COUNT --timeout 600 >"$tmp/read.out" 2>&1 && ok || {
  bad "reading $COUNT records from node 3 alone"
  tail -5 "$tmp/read.out"
}
grep -i "read" "$tmp/read.out" | head -3
kill -CONT "$(pid 1)" "$(pid 2)"
stopped=

"$CL" down "$tmp/c" && ok || bad "a process did not stop on SIGTERM"
still=$("$CL" running "$tmp/c") && bad "still running after down: $still" || ok
echo "cluster-catchup-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
