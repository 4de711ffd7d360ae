#!/usr/bin/env bash
# cluster-data-test.sh — the data path of cluster mode under failover.
#
# Three nodes and one proxy (CLUSTER_PROXIES=1 tests/cluster.sh up 3).
# dlogctl creates a stream and writes 3,000 numbered records through the
# proxy (--acks), in chunks of 500 (dlogctl write stops at its first failed
# write: a write whose outcome is unknown fails, and the next chunk goes
# on), while node 1 -- which bootstrapped the metadata group and data
# group 0, and leads them unless an election moved them -- is SIGKILLed
# and later restarted. Then, through the proxy and through the cluster://
# URI directly:
#  - every acknowledged record (by its DLSN) is read, exactly once;
#  - records are read in the order they were written, none twice;
#  - node 1 catches up: every node reports the same applied index of the
#    data group;
#  - every process stops (SIGTERM) and nothing is left running.
# Every wait polls with a deadline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
CTL=$top_builddir/dlogctl
tmp=$(mktemp -d)
writer_pid=
cleanup() {
  [ -n "$writer_pid" ] && kill -9 "$writer_pid" 2>/dev/null
  "$CL" down "$tmp/c" >/dev/null 2>&1
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
    sleep 0.1 # polls, up to the deadline
  done
  bad "$what: not within the deadline"
  return 1
}

# The data groups' log flags: a bad value is refused before anything starts.
for f in "--data-log-memory-mb 0" "--data-log-segment-mb 65537" "--data-log-memory-mb x" \
  "--data-log-segment-mb -8" "--data-snapshot-threshold 0"; do
  # shellcheck disable=SC2086 # the flag and its value, two words
  err=$("$top_builddir/dlogd" --role node --id 1 --listen 127.0.0.1:1 --raft 127.0.0.1:2 \
    --data "$tmp/never" $f 2>&1) && bad "dlogd accepts $f" ||
    case "$err" in *"bad value"*) ok ;; *) bad "dlogd $f: $err" ;; esac
done
[ ! -e "$tmp/never" ] && ok || bad "a refused flag left a data directory"
out=$(CLUSTER_PROXIES=1 "$CL" up 3 "$tmp/c") || { echo "FAIL: cluster up"; exit 1; }
uri=$(echo "$out" | tail -n 1)
puri=$(echo "$out" | tail -n 2 | head -n 1)
case "$uri" in cluster://*) ok ;; *) bad "up prints the cluster URI last: $uri"; exit 1 ;; esac
case "$puri" in dlog://*) ok ;; *) bad "up prints the proxy URI: $puri"; exit 1 ;; esac

"$CTL" -u "$puri" create orders >/dev/null && ok || bad "create through the proxy"

# The applied index of data group 0 on each node, one per line ("-" if down).
applied() { "$CL" status "$tmp/c" 2>/dev/null | awk '/^groups node/{split($5, a, ","); print a[1]}'; }
all_equal() {
  local v
  v=$(applied | sort -u)
  [ "$(applied | wc -l)" -eq 3 ] && [ "$(echo "$v" | wc -l)" -eq 1 ] && [ "$v" -gt 0 ]
}
acked() { cat "$tmp"/acks.* 2>/dev/null | wc -l; }

# Every node replicates data group 0 before the failure starts.
printf 'a-warm-%06d\n' $(seq 1 20) | "$CTL" -u "$puri" write --acks orders >"$tmp/acks.0" ||
  bad "warm-up writes"
wait_for "three replicas of data group 0" 20 all_equal && ok

(
  for c in 0 1 2 3 4 5; do
    printf 'b-rec-%06d\n' $(seq $((c * 500 + 1)) $((c * 500 + 500))) |
      "$CTL" -u "$puri" write --acks orders >"$tmp/acks.$((c + 1))" 2>"$tmp/werr.$c"
  done
) &
writer_pid=$!

above() { [ "$(acked)" -ge "$1" ]; }
wait_for "1,000 acknowledged writes" 30 above 1000 && ok
"$CL" kill "$tmp/c" 1 && ok || bad "kill node 1"
killed_at=$(acked)
wait_for "writes go on without node 1" 30 above $((killed_at + 300)) && ok
"$CL" restart "$tmp/c" 1 && ok || bad "restart node 1"
writer_done() { ! kill -0 "$writer_pid" 2>/dev/null; }
wait_for "the writer finishes" 40 writer_done && ok
wait "$writer_pid" 2>/dev/null
writer_pid=
echo "acknowledged $(acked) of 3020 writes (node 1 killed after $killed_at)"
[ "$(acked)" -ge 2500 ] && ok || bad "too few writes acknowledged: $(acked)"
wait_for "node 1 catches up" 30 all_equal && ok

# check NAME URI: reads the stream and compares it with the acks.
check() {
  local name=$1 u=$2 f=$tmp/read.$1
  "$CTL" -u "$u" read --with-dlsn orders >"$f" || { bad "$name: read failed"; return; }
  # every acknowledged DLSN, exactly once
  cut -f1 "$tmp"/acks.* | sort >"$tmp/acked.$name"
  cut -f1 "$f" | sort | uniq -c | awk '$1 != 1 {print "twice: " $2}' >"$tmp/dup.$name"
  [ -s "$tmp/dup.$name" ] && bad "$name: a DLSN read twice: $(head -1 "$tmp/dup.$name")"
  missing=$(cut -f1 "$f" | sort | comm -23 "$tmp/acked.$name" - | wc -l)
  [ "$missing" -eq 0 ] && ok || bad "$name: $missing acknowledged records not read"
  # in order, none twice: the payloads are increasing
  cut -f2 "$f" | awk 'prev != "" && $0 <= prev {print; exit 1} {prev = $0}' >/dev/null &&
    ok || bad "$name: records out of order or repeated"
  echo "$name: read $(wc -l <"$f") records"
}
check proxy "$puri"
check cluster "$uri"
cmp -s "$tmp/read.proxy" "$tmp/read.cluster" && ok || bad "proxy and cluster:// read differently"

"$CL" down "$tmp/c" && ok || bad "a process did not stop on SIGTERM"
still=$("$CL" running "$tmp/c") && bad "still running after down: $still" || ok
echo "cluster-data-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
