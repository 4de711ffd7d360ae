#!/usr/bin/env bash
# cluster-fault-test.sh — issue 6's fault test: a writer writes all the time
# through two proxies while nodes and proxies are SIGKILLed and restarted.
#
# Three nodes and two proxies (CLUSTER_PROXIES=2 tests/cluster.sh up 3).
# fault-writer writes numbered one-record writes through "dlog://p1,p2"
# (FAULT_RATE writes/s, at most 16 unanswered, going on after failures) and
# logs every acknowledgement (number, DLSN, monotonic time) and failure.
# For FAULT_SECONDS (default 60), every 2-5 s (random, seeded: FAULT_SEED;
# the seed is printed), once the cluster is whole again, one process is
# SIGKILLed and restarted 0.5-1.5 s later: in turn, in a shuffled order,
# the metadata leader, the leader of data group 0, a random node and a
# random proxy (FAULT_KILL_PROXIES=0 leaves the proxies alone). Then:
#  (a) read from every node alone (cluster://that-node, once every replica
#      has applied the same index, so the node serves the reads from its
#      own replica), and through the proxies: every acknowledged record is
#      read exactly once, at its DLSN, in acknowledgement order; an
#      unacknowledged one at most once; nothing that was not written; the
#      same records on every node;
#  (b) no two writers were acknowledged at the same epoch: from the proxies'
#      "proxy ID: acknowledged 'STREAM' at epoch E" lines (all incarnations
#      of each proxy, logs appended across restarts), each (stream, epoch)
#      has one proxy (and there is at least one line);
#  (c) progress within 5 s after each kill: an acknowledgement of a write
#      submitted after the kill (the 17th acknowledgement after it, as at
#      most 16 were in flight) within 5 s; the worst delay and the longest
#      stall between two acknowledgements are printed;
#  and every process stops on SIGTERM, no sanitizer report in any log.
# A sanitizer build (ASAN_OPTIONS set) writes at a third of the rate.
# Every wait polls with a deadline; the sleeps between kills are the load
# pattern, not synchronisation.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
CTL=$top_builddir/dlogctl
FW=$top_builddir/tests/integration/fault-writer
. "$here/fault_lib.sh"
if [ -n "${ASAN_OPTIONS:-}" ]; then RATE=${FAULT_RATE:-100}; else RATE=${FAULT_RATE:-300}; fi
INFLIGHT=16
MAX_GAP_MS=5000
STREAM=faults
TOKEN=run$SEED

tmp=$(mktemp -d)
writer_pid=
cleanup() {
  [ -n "$writer_pid" ] && kill -9 "$writer_pid" 2>/dev/null
  "$CL" down "$tmp/c" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

echo "cluster-fault-test: seed $SEED (FAULT_SEED=$SEED reruns this order), $FAULT_SECS s," \
  "$RATE writes/s, proxies killed: $([ "$KILL_PROXIES" = 1 ] && echo yes || echo no)"
RANDOM=$SEED

out=$(CLUSTER_PROXIES=2 CLUSTER_PROXY_ARGS="--log-level info" "$CL" up 3 "$tmp/c") || {
  echo "FAIL: cluster up"
  exit 1
}
uri=$(echo "$out" | tail -n 1)
puri=$(echo "$out" | tail -n 2 | head -n 1)
case "$uri,$puri" in cluster://*,dlog://*) ok ;; *) bad "up prints the URIs: $out"; exit 1 ;; esac
addrs=${uri#cluster://}
"$CTL" -u "$puri" create "$STREAM" --auto-txid >/dev/null && ok || bad "create $STREAM"

acked() { grep -c '^ack ' "$tmp/acks"; }
above() { [ "$(acked)" -ge "$1" ]; }

phase "cluster up; writing through $puri"
"$FW" write "$puri" "$STREAM" "$TOKEN" "$RATE" "$INFLIGHT" >"$tmp/acks" 2>"$tmp/writer.err" &
writer_pid=$!
wait_for "the first 50 acknowledgements" 30 above 50 && ok

# ---------------------------------------------------------------- faults
progress_note() { echo "$(acked) acknowledged so far"; }
fault_loop
phase "$nkills kills; stopping the writer"
# Progress after the last restart, then the writer stops.
n=$(acked)
wait_for "acknowledgements after the last restart" 20 above $((n + INFLIGHT + 1)) && ok
kill -TERM "$writer_pid"
writer_gone() { ! kill -0 "$writer_pid" 2>/dev/null; }
wait_for "the writer stops on SIGTERM" 40 writer_gone && ok
wait "$writer_pid" 2>/dev/null
writer_pid=
grep -q '^end submitted' "$tmp/acks" && ok || bad "the writer did not finish: $(tail -3 "$tmp/writer.err")"
read -r _ _ submitted _ nacked _ nfailed < <(grep '^end submitted' "$tmp/acks")

# ---------------------------------------------------------------- (a) reads
# Every replica of data group 0 has applied the same index, and every node
# the metadata the writer made: each node then answers reads from its own
# replica.
m=$(meta_applied)
wait_for "every node caught up" 60 caught_up "${m:-0}" && ok
phase "reading from every node"
for i in 1 2 3; do
  if "$FW" check "cluster://$(listen_of "$i")" "$STREAM" "$TOKEN" "$tmp/acks" \
    >"$tmp/check.$i" 2>"$tmp/check.$i.err"; then
    ok
  else
    bad "node $i: $(head -c 2000 "$tmp/check.$i.err")"
  fi
  echo "node $i: $(head -1 "$tmp/check.$i")"
done
"$FW" check "$puri" "$STREAM" "$TOKEN" "$tmp/acks" >"$tmp/check.p" 2>"$tmp/check.p.err" &&
  ok || bad "through the proxies: $(head -c 2000 "$tmp/check.p.err")"
[ "$(grep -h '^digest' "$tmp"/check.[123p] | sort -u | wc -l)" -eq 1 ] && ok ||
  bad "the nodes hold different records: $(grep -h '^digest' "$tmp"/check.[123p] | tr '\n' ' ')"
# A replica behind a snapshot redirects its reads: then they were not its own.
grep -l "behind a snapshot" "$tmp"/c/n*.log >/dev/null 2>&1 &&
  bad "a replica fell behind a snapshot: $(grep -h "behind a snapshot" "$tmp"/c/n*.log | head -2)"
# The checker catches a broken log: an acknowledged record that was never
# written, and two acknowledgements in the wrong order.
{ grep -v '^end' "$tmp/acks"; echo "ack $((submitted + 1)) 999/0/0 0"; echo "end submitted $((submitted + 1))"; } >"$tmp/acks.missing"
awk '$1 == "ack" && !s && h { print; print h; s = 1; next } $1 == "ack" && !s && !h { h = $0; next } { print }' \
  "$tmp/acks" >"$tmp/acks.swapped"
for f in missing swapped; do
  "$FW" check "cluster://$(listen_of 1)" "$STREAM" "$TOKEN" "$tmp/acks.$f" >/dev/null 2>&1
  [ $? -eq 1 ] && ok || bad "the checker does not catch a $f acknowledgement"
done
# ... and a record stored twice (written once more, last: the reads are done).
# Node 1's replica may apply the extra write a moment later: checked until
# it shows, up to a deadline.
caught=0
if echo "fw $TOKEN 1" | "$CTL" -u "$puri" write "$STREAM" >/dev/null; then
  deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    "$FW" check "cluster://$(listen_of 1)" "$STREAM" "$TOKEN" "$tmp/acks" >/dev/null 2>&1
    [ $? -eq 1 ] && caught=1 && break
    sleep 0.2 # polls node 1's replica, up to the deadline
  done
fi
[ "$caught" = 1 ] && ok || bad "the checker does not catch a record stored twice"

# ---------------------------------------------------------------- (b) epochs
grep -ho "proxy [^ ]*: acknowledged '[^']*' at epoch [0-9]*" "$tmp"/c/p*.log |
  sed "s/^proxy \([^ ]*\): acknowledged '\([^']*\)' at epoch \([0-9]*\)$/\2 \3 \1/" |
  sort -u >"$tmp/owners"
nowners=$(wc -l <"$tmp/owners")
[ "$nowners" -gt 0 ] && ok || bad "no proxy logged \"proxy ID: acknowledged 'STREAM' at epoch E\""
awk '{ n[$1 " " $2]++; p[$1 " " $2] = p[$1 " " $2] " " $3 } END { for (k in n) if (n[k] > 1) print k ":" p[k] }' \
  "$tmp/owners" >"$tmp/shared"
[ -s "$tmp/shared" ] && bad "two proxies acknowledged at one epoch: $(head -3 "$tmp/shared")" || ok
echo "first acknowledgements (stream epoch proxy):" \
  "$(awk '{printf "%s%s %s %s", s, $1, $2, $3; s = "; "}' "$tmp/owners")"

# ---------------------------------------------------------------- (c) progress
# For each kill: the delay to the first acknowledgement after it, and to the
# (INFLIGHT+1)-th, which is of a write submitted after the kill.
awk -v k=$((INFLIGHT + 1)) -v max=$((MAX_GAP_MS * 1000000)) '
  FNR == NR { kt[++nk] = $2; kw[nk] = $3 " " $4 " (" $5 ")"; next }
  $1 == "ack" { at[++na] = $4 }
  END {
    j = 1
    for (i = 1; i <= nk; i++) {
      while (j <= na && at[j] <= kt[i]) j++
      first = j <= na ? at[j] - kt[i] : -1
      fresh = j + k - 1 <= na ? at[j + k - 1] - kt[i] : -1
      if (fresh < 0 || fresh > max) printf "late %s: first ack after %.3f s, a new write acknowledged after %.3f s\n", kw[i], first / 1e9, fresh / 1e9
      if (fresh > worst) { worst = fresh; wk = kw[i] }
      if (first > worstf) worstf = first
    }
    for (i = 2; i <= na; i++) if (at[i] - at[i - 1] > stall) { stall = at[i] - at[i - 1]; sat = at[i - 1] }
    for (i = 1; i <= nk; i++) if (kt[i] <= sat) before = kw[i] " " (sat - kt[i]) / 1e9 " s before"
    printf "progress: worst delay to a new acknowledgement %.3f s (after killing %s), to any %.3f s; longest stall %.3f s (%s)\n", worst / 1e9, wk, worstf / 1e9, stall / 1e9, before ? "after " before : "before any kill"
  }' "$tmp/kills" "$tmp/acks" >"$tmp/progress"
grep '^late' "$tmp/progress" | while read -r l; do echo "FAIL: $l"; done
grep -q '^late' "$tmp/progress" && bad "no progress within 5 s after $(grep -c '^late' "$tmp/progress") kills" || ok
grep '^progress' "$tmp/progress"

# ---------------------------------------------------------------- the end
phase "stopping the cluster"
fault_down "$tmp/writer.err"
echo "summary: seed $SEED, $FAULT_SECS s, $(kills_summary):" \
  "$submitted writes, $nacked acknowledged, $nfailed failed" \
  "($(sed -n 's/.*unacked-stored \([0-9]*\) of.*/\1/p' "$tmp/check.1") of them stored);" \
  "$nowners (stream, epoch, proxy) ownership lines"
echo "cluster-fault-test: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
