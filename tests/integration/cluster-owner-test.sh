#!/usr/bin/env bash
# cluster-owner-test.sh — stream ownership among a cluster's proxies.
#
# Three nodes and two proxies, P1 and P2 (CLUSTER_PROXIES=2), each with its
# own URI, so that nothing but a redirect can send a client from one to the
# other. Checks:
#  - the first writer through P1 makes P1 the owner; a writer through P2
#    only is redirected to P1 (DLOG_ENOTOWNER with P1's address) and its
#    writes succeed there, acknowledged by P1 at P1's epoch;
#  - reads and admin calls are served by either proxy;
#  - an exclusive writer through P2 is redirected too, bumps the user
#    epoch at P1, and a writer opened before it is fenced (DLOG_EFENCED);
#  - P1 is SIGKILLed: a writer given both addresses goes on through P2,
#    which takes the stream over after P1's lease, at a new epoch;
#  - P2 stopped with SIGTERM gives its streams up at once: a restarted P1
#    takes over without waiting for a lease;
#  - no epoch is ever acknowledged by two proxies, and every acknowledged
#    record is read back once, in order.
# Every wait polls with a deadline.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
CTL=$top_builddir/dlogctl
DLOGD=$top_builddir/dlogd
tmp=$(mktemp -d)
cleanup() {
  "$CL" down "$tmp/c" >/dev/null 2>&1
  [ -f "$tmp/p1b.pid" ] && kill -9 "$(cat "$tmp/p1b.pid")" 2>/dev/null && wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

out=$(CLUSTER_PROXIES=2 CLUSTER_PROXY_ARGS="--log-level info --owner-lease-ms 2000" \
  "$CL" up 3 "$tmp/c") || {
  echo "FAIL: cluster up"
  exit 1
}
curi=$(echo "$out" | tail -n 1)
puri=$(echo "$out" | tail -n 2 | head -n 1)
a1=$(echo "${puri#dlog://}" | cut -d, -f1)
a2=$(echo "${puri#dlog://}" | cut -d, -f2)
[ -n "$a1" ] && [ -n "$a2" ] && [ "$a1" != "$a2" ] && ok || bad "two proxies: $puri"
p1="dlog://$a1" p2="dlog://$a2"

"$CTL" -u "$p2" create orders >/dev/null && ok || bad "create through P2"
# P1 becomes the owner with the first write.
printf 'a-%04d\n' $(seq 1 50) | "$CTL" -u "$p1" write --acks orders >"$tmp/acks.1" ||
  bad "writes through P1"
# A writer that knows only P2 is redirected to P1.
printf 'b-%04d\n' $(seq 1 50) |
  DLOG_LOG=info "$CTL" -u "$p2" write --acks orders >"$tmp/acks.2" 2>"$tmp/w2.err" ||
  bad "writes through P2: $(cat "$tmp/w2.err")"
grep -q "redirected to $a1" "$tmp/w2.err" && ok || bad "P2 redirects to P1: $(cat "$tmp/w2.err")"
[ "$(wc -l <"$tmp/acks.2")" -eq 50 ] && ok || bad "50 writes acknowledged after the redirect"
grep -q "owner of 'orders'" "$tmp/c/p2.log" && bad "P2 took a stream P1 owns" || ok
# Reads and admin calls are served where they arrive (P2 does not redirect).
"$CTL" -u "$p2" describe orders >/dev/null && ok || bad "describe through P2"
n=$("$CTL" -u "$p2" read orders | wc -l)
[ "$n" -ge 50 ] && ok || bad "read through P2: $n records"

# An exclusive writer through P2 fences the writers opened before it.
mkfifo "$tmp/old.in"
DLOG_LOG=error "$CTL" -u "$p1" write --acks orders <"$tmp/old.in" >"$tmp/acks.old" \
  2>"$tmp/old.err" &
old=$!
exec 7>"$tmp/old.in"
echo "old-1" >&7
deadline=$((SECONDS + 20))
while [ ! -s "$tmp/acks.old" ] && [ $SECONDS -lt $deadline ]; do
  sleep 0.05 # polls for the old writer's first ack, up to the deadline
done
[ -s "$tmp/acks.old" ] && ok || bad "the old writer writes"
printf 'x-%04d\n' $(seq 1 10) |
  "$CTL" -u "$p2" write --acks --exclusive orders >"$tmp/acks.x" 2>"$tmp/x.err" ||
  bad "exclusive writer through P2: $(cat "$tmp/x.err")"
echo "old-2" >&7
exec 7>&-
wait "$old"
[ $? -ne 0 ] && grep -qi "fenced" "$tmp/old.err" && ok ||
  bad "the older writer is fenced: $(cat "$tmp/old.err")"

# P1 dies: a writer given both proxies goes on through P2.
kill -9 "$(cat "$tmp/c/p1.pid")"
printf 'c-%04d\n' $(seq 1 50) |
  DLOG_LOG=info "$CTL" -u "dlog://$a1,$a2" write --acks orders >"$tmp/acks.3" 2>"$tmp/w3.err" ||
  bad "writes after P1's death: $(cat "$tmp/w3.err")"
[ "$(wc -l <"$tmp/acks.3")" -eq 50 ] && ok || bad "50 writes acknowledged after the takeover"
grep -q "took stream .* over from" "$tmp/c/p2.log" && ok || bad "P2 took the stream over"

# P2 stops gracefully; P1 comes back and takes over at once.
kill -TERM "$(cat "$tmp/c/p2.pid")"
deadline=$((SECONDS + 20))
while kill -0 "$(cat "$tmp/c/p2.pid")" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
  sleep 0.05 # polls for P2's exit, up to the deadline
done
"$DLOGD" --role proxy --cluster "$curi" --listen "$a1" --log-level info \
  --owner-lease-ms 60000 >"$tmp/p1b.log" 2>&1 &
echo $! >"$tmp/p1b.pid"
deadline=$((SECONDS + 20))
until grep -q "listening on" "$tmp/p1b.log" || [ $SECONDS -ge $deadline ]; do
  sleep 0.05 # polls for the listening line, up to the deadline
done
# With a 60 s lease, only P2's release lets P1 in now.
printf 'd-%04d\n' $(seq 1 20) | "$CTL" -u "$p1" write --acks orders >"$tmp/acks.4" \
  2>"$tmp/w4.err" || bad "writes through the restarted P1: $(cat "$tmp/w4.err")"
[ "$(wc -l <"$tmp/acks.4")" -eq 20 ] && ok || bad "20 writes acknowledged after the release"

# No epoch acknowledged by two proxies; each proxy that wrote logged one.
cat "$tmp/c/p1.log" "$tmp/c/p2.log" "$tmp/p1b.log" |
  sed -n "s/.*proxy \([^ ]*\): acknowledged 'orders' at epoch \([0-9]*\).*/\2 \1/p" |
  sort -u >"$tmp/epochs"
dups=$(cut -d' ' -f1 "$tmp/epochs" | uniq -d)
[ -z "$dups" ] && ok || bad "epochs acknowledged by two proxies: $dups"
[ "$(cut -d' ' -f2 "$tmp/epochs" | sort -u | wc -l)" -ge 3 ] && ok ||
  bad "three proxy lives acknowledged writes: $(cat "$tmp/epochs")"

# Every acknowledged record once, in order (via the cluster URI: the
# proxies' reads may lag; the nodes' converge).
cat "$tmp/acks.1" "$tmp/acks.2" "$tmp/acks.old" "$tmp/acks.x" "$tmp/acks.3" "$tmp/acks.4" |
  cut -f1 >"$tmp/acked"
want=$(wc -l <"$tmp/acked")
deadline=$((SECONDS + 20))
while :; do
  "$CTL" -u "$curi" read orders >"$tmp/all" 2>/dev/null
  got=$(grep -c . "$tmp/all")
  [ "$got" -ge "$want" ] || [ $SECONDS -ge $deadline ] && break
  sleep 0.1 # polls until the replica read has caught up, up to the deadline
done
[ "$got" -eq "$want" ] && ok || bad "$want acknowledged records, $got read"
for p in a b x c d; do
  grep "^$p-" "$tmp/all" | sort -c 2>/dev/null && ok || bad "'$p' records out of order"
  [ -z "$(grep "^$p-" "$tmp/all" | uniq -d)" ] && ok || bad "'$p' records read twice"
done

echo "cluster-owner-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
