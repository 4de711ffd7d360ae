#!/usr/bin/env bash
# cluster-meta-test.sh — the metadata group of cluster mode under failover.
#
# Three nodes (tests/cluster.sh up 3). meta-client runs compare-and-set
# increments of one key, and creates and updates a stream, through
# meta_raft (the cluster's dlog_meta_ops) while the leader is SIGKILLed
# and restarted three times. Then:
#  - the client saw no error but conflicts, and never read a value other
#    than the one it last wrote;
#  - the counter equals the number of increments acknowledged: none lost,
#    none applied twice or applied without an acknowledgement;
#  - all three nodes report the same applied index and revision;
#  - every process stops (SIGTERM) and nothing is left running.
# Every wait polls with a deadline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
CLIENT=$top_builddir/tests/integration/meta-client
tmp=$(mktemp -d)
client_pid=
cleanup() {
  [ -n "$client_pid" ] && kill -9 "$client_pid" 2>/dev/null
  "$CL" down "$tmp/c" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

uri=$("$CL" up 3 "$tmp/c" | tail -n 1) || { echo "FAIL: cluster up"; exit 1; }
case "$uri" in cluster://*) ok ;; *) bad "up prints the URI last: $uri"; exit 1 ;; esac
addrs=${uri#cluster://}

leader() { "$CL" status "$tmp/c" 2>/dev/null | awk '/^node .* state leader /{print $2; exit}'; }
counter() { "$CLIENT" "$addrs" get counter 2>/dev/null | awk '{print $1}'; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      bad "timed out waiting for $what"
      return 1
    fi
    sleep 0.1 # polls, up to the deadline
  done
}
got_leader() {
  l=$(leader)
  [ -n "$l" ]
}
new_leader() { local l; l=$(leader); [ -n "$l" ] && [ "$l" != "$1" ]; }
healthy() { "$CL" status "$tmp/c" >/dev/null 2>&1; }
progressed() { local c; c=$(counter); [ -n "$c" ] && [ "$c" -ge "$1" ]; }

"$CLIENT" "$addrs" cas counter 120 >"$tmp/client.out" 2>"$tmp/client.err" &
client_pid=$!
wait_for "first increments" 20 progressed 20

for round in 1 2 3; do
  wait_for "a leader" 20 got_leader || break # sets l: one look, no race
  before=$(counter)
  "$CL" kill "$tmp/c" "$l" && ok || bad "kill node $l"
  wait_for "a new leader after killing node $l" 20 new_leader "$l" || break
  "$CL" restart "$tmp/c" "$l" && ok || bad "restart node $l"
  wait_for "node $l back" 20 healthy || break
  wait_for "increments after round $round" 20 progressed $((before + 20)) || break
done

kill -TERM "$client_pid"
wait "$client_pid"
rc=$?
client_pid=
[ $rc -eq 0 ] && ok || bad "meta-client exit status $rc: $(cat "$tmp/client.err")"
read -r _ acked _ streams _ updates _ failed <"$tmp/client.out"
echo "client: $(cat "$tmp/client.out")"
[ "${failed:-1}" -eq 0 ] && ok || bad "calls failed: $(cat "$tmp/client.err")"
[ "${acked:-0}" -gt 100 ] && ok || bad "too few increments acknowledged: ${acked:-?}"
[ "${updates:-0}" -gt 0 ] && ok || bad "no stream update acknowledged"

# Every replica converges on the same applied state.
same_state() {
  local s
  s=$("$CL" status "$tmp/c" 2>/dev/null) || return 1
  [ "$(echo "$s" | awk '/^node /{print $12, $16}' | sort -u | wc -l)" -eq 1 ]
}
wait_for "the same applied index and revision on every node" 20 same_state && ok
# Read once every replica has applied everything (a fresh client may be
# answered by any replica, from what it has applied).
final=$(counter)
[ "$final" = "$acked" ] && ok || bad "counter $final, acknowledged increments $acked"
"$CL" status "$tmp/c"

"$CL" down "$tmp/c" && ok || bad "nodes stop cleanly on SIGTERM"
still=$("$CL" running "$tmp/c") && bad "still running after down: $still" || ok
if grep -l "AddressSanitizer\|LeakSanitizer\|runtime error" "$tmp/c"/n*.log >/dev/null 2>&1; then
  bad "sanitizer reports:"
  grep -h -A20 "Sanitizer\|runtime error" "$tmp/c"/n*.log | head -60
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
