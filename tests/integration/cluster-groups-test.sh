#!/usr/bin/env bash
# cluster-groups-test.sh — data groups: `dlogctl cluster groups`, leaders
# spread over the nodes, and new segments placed by load.
#
# Three nodes with three data groups (CLUSTER_GROUPS=3 tests/cluster.sh up 3).
#  - `cluster groups` shows 3 data groups, each with 3 voters and a leader,
#    and the leaders on at least 2 different nodes (the node that
#    bootstrapped the groups led them all at first);
#  - a "hot" stream (large segments) is written all the time, about 2 KiB
#    per record, through cluster://; once its group reports the load, four
#    "cold" streams (4 records per segment) are created and written slowly:
#    none of their segments, placed while the hot group is busy, lands on
#    the hot group, and they spread over both other groups (ties on load
#    go to the group with fewer segments);
#  - every acknowledged record of every stream is read back exactly once;
#  - every process stops (SIGTERM) and nothing is left running.
# Every wait polls with a deadline; loopback only.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
CTL=$top_builddir/dlogctl
tmp=$(mktemp -d)
hot_pid=
cleanup() {
  [ -n "$hot_pid" ] && kill -9 "$hot_pid" 2>/dev/null
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
    sleep 0.2 # polls, up to the deadline
  done
  bad "$what: not within the deadline"
  return 1
}

out=$(CLUSTER_GROUPS=3 "$CL" up 3 "$tmp/c") || { echo "FAIL: cluster up"; exit 1; }
uri=$(echo "$out" | tail -n 1)
case "$uri" in cluster://*) ok ;; *) bad "up prints the cluster URI last: $uri"; exit 1 ;; esac

groups() { "$CTL" -u "$uri" cluster groups "$@" 2>/dev/null; }

# 3 data groups, each with 3 voters and a known leader; leaders on >= 2 nodes.
spread() {
  local g
  g=$(groups --no-streams) || return 1
  echo "$g" >"$tmp/groups.last"
  [ "$(echo "$g" | grep -cE '^group [0-9]+ members [0-9]+,[0-9]+,[0-9]+ leader [1-9]')" -eq 3 ] &&
    [ "$(echo "$g" | awk '/^group [0-9]+ members/ {print $6}' | sort -u | wc -l)" -ge 2 ]
}
if wait_for "3 data groups with 3 members and leaders on 2+ nodes" 60 spread; then
  ok
else
  cat "$tmp/groups.last"
fi
grep -q '^meta members 3 leader [1-9]' "$tmp/groups.last" && ok || bad "no metadata group line"
grep -qE '^group 2 node 3 state [a-z]+ term [0-9]+ applied [0-9]+ commit [0-9]+$' \
  "$tmp/groups.last" && ok || bad "no per-replica line"
grep -q '^leaders node 1 groups [0-9] node 2 groups [0-9] node 3 groups [0-9]$' \
  "$tmp/groups.last" && ok || bad "no leaders line"
"$CTL" -u "$uri" cluster status | grep -qE '^groups node 1 applied [0-9,]+ commit [0-9,]+ leaders' &&
  ok || bad "cluster status lacks the data groups"
"$CTL" cluster --help | grep -q 'groups \[--no-streams\]' && ok || bad "cluster --help"

# The group of segment SEQ of stream NAME (from the stream lines).
group_of() { groups | awk -v s="$1" -v q="$2" '$1 == "stream" && $2 == s {
  n = split($6, a, ","); for (i = 1; i <= n; i++) { split(a[i], b, "@"); if (b[1] == q) print b[2] } }'; }

"$CTL" -u "$uri" create hot --segment-bytes=1G >/dev/null && ok || bad "create hot"
hot=$(group_of hot 1)
[ -n "$hot" ] && ok || bad "hot's segment has no group"
echo "hot stream on data group $hot"

# The hot writer: chunks of 300 records of ~2 KiB, acknowledged one by one,
# until it is killed (a chunk whose write failed stops; the next goes on).
pad=$(printf '%02000d' 0)
(
  c=0
  while :; do
    c=$((c + 1))
    seq -f "hot-$c-%06g-$pad" 1 300 | "$CTL" -u "$uri" write --acks hot >"$tmp/acks.hot.$c" 2>>"$tmp/hot.err"
  done
) &
hot_pid=$!

# load of group G, from the group lines
load_of() { groups --no-streams | awk -v g="$1" '$1 == "group" && $2 == g && $3 == "members" {print $NF}'; }
hot_busy() { local l; l=$(load_of "$hot"); [ -n "$l" ] && [ "$l" -ge 65536 ]; }
wait_for "the hot group reports a load of 64 KiB/s" 60 hot_busy && ok
hot_warm() { local l; l=$(load_of "$hot"); [ -n "$l" ] && [ "$l" -ge 32768 ]; }
echo "load of group $hot: $(load_of "$hot") bytes/s"

for s in c1 c2 c3 c4; do
  "$CTL" -u "$uri" create "$s" --segment-records=4 >/dev/null || bad "create $s"
done
for s in c1 c2 c3 c4; do
  for k in 1 2 3 4 5; do
    # the hot group busy (2 steps of placement's 16 KiB/s) before each roll
    wait_for "the hot group busy before a roll" 30 hot_warm || break
    seq -f "$s-$k-%03g" 1 4 | "$CTL" -u "$uri" write --acks "$s" >>"$tmp/acks.$s" ||
      bad "write to $s"
  done
done
kill "$hot_pid" 2>/dev/null
wait "$hot_pid" 2>/dev/null
hot_pid=

groups >"$tmp/groups.end"
grep '^stream' "$tmp/groups.end"
cold=$(awk '$1 == "stream" && $2 ~ /^c/ {n = split($6, a, ","); for (i = 1; i <= n; i++) {
  split(a[i], b, "@"); print b[2] } }' "$tmp/groups.end")
[ "$(echo "$cold" | wc -l)" -ge 20 ] && ok || bad "expected 20+ cold segments: $(echo $cold)"
on_hot=$(echo "$cold" | grep -cx "$hot")
[ "$on_hot" -eq 0 ] && ok || bad "$on_hot cold segments placed on the hot group $hot"
[ "$(echo "$cold" | sort -u | wc -l)" -eq 2 ] && ok ||
  bad "cold segments not spread over the 2 other groups: $(echo "$cold" | sort | uniq -c | tr '\n' ' ')"

# Every acknowledged record, exactly once.
for s in hot c1 c2 c3 c4; do
  "$CTL" -u "$uri" read --with-dlsn "$s" >"$tmp/read.$s" || { bad "read $s"; continue; }
  cat "$tmp"/acks."$s"* 2>/dev/null | cut -f1 | sort >"$tmp/acked.$s"
  dups=$(cut -f1 "$tmp/read.$s" | sort | uniq -d | wc -l)
  missing=$(cut -f1 "$tmp/read.$s" | sort | comm -23 "$tmp/acked.$s" - | wc -l)
  [ "$dups" -eq 0 ] && [ "$missing" -eq 0 ] && ok ||
    bad "$s: $missing acknowledged records not read, $dups read twice"
  echo "$s: $(wc -l <"$tmp/acked.$s") acknowledged, $(wc -l <"$tmp/read.$s") read"
done
[ "$(wc -l <"$tmp/acked.hot")" -ge 100 ] && ok || bad "too few hot writes acknowledged"
[ "$(wc -l <"$tmp/acked.c1")" -eq 20 ] && ok || bad "c1: 20 writes expected"

spread && ok || { bad "leaders not spread at the end"; cat "$tmp/groups.last"; }

"$CL" down "$tmp/c" && ok || bad "a process did not stop on SIGTERM"
still=$("$CL" running "$tmp/c") && bad "still running after down: $still" || ok
echo "cluster-groups-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
