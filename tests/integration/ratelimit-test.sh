#!/bin/bash
# Rate limits through dlogd (docs/rate-limiting.md):
#  1. a stream limited to 5,000 records/s and 10 MB/s, offered three times
#     that by three writers for RL_SECONDS (default 10): the admitted rate is
#     within 10% of the limit, every refusal is DLOG_EOVERCAPACITY, every
#     acknowledged record is stored exactly once;
#  2. two dlogd proxies on one namespace and a global limit of 4,000
#     records/s, offered 1,000/s through one and 8,000/s through the other:
#     after 2 s the admitted rates are the max-min fair shares (1,000 and
#     3,000, within 10%); the first proxy is killed with SIGKILL and the
#     other's share grows to the whole limit within the lease (2 s) and a
#     report interval;
#  3. limits changed at run time reach the proxy without a restart;
#  4. a stream that may wait (max_wait_ms) delays writes over its limit
#     instead of refusing them, and keeps their order.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$(dirname "$0")/dlogd_lib.sh"
CTL=$top_builddir/dlogctl
LOAD=$top_builddir/tests/integration/rl_load
SECS=${RL_SECONDS:-10}
# Rates are divided by RL_SCALE: a sanitizer build (ASAN_OPTIONS set) is
# too slow to offer 15,000 writes/s, which would measure the machine, not
# the limiter.
if [ -n "${ASAN_OPTIONS:-}" ]; then SCALE=${RL_SCALE:-10}; else SCALE=${RL_SCALE:-1}; fi
sc() { echo $(($1 / SCALE)); }
T=$(mktemp -d /tmp/dlog-rl-XXXXXX)
pass=0 fail=0
ok() { echo "PASS - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}" ${DLOGD_PID:-}; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
# within PCT of WANT?
near() { awk -v g="$1" -v w="$2" -v p="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'; }
# average acked/s over seconds [from, to) of a rl_load output
avg() { awk -v a="$2" -v b="$3" '$1 == "sec" && $2 >= a && $2 < b { s += $4; n++ } END { printf "%d", n ? s / n : 0 }' "$1"; }
# waits until FILE has a line matching RE (deadline in seconds)
wait_line() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05 # poll the output, up to the deadline
  done
  return 1
}

# ---- 1. one proxy, three times the limit
dlogd_start "$T/one" --proxy-id one || exit 1
PIDS+=("$DLOGD_PID")
LR=$(sc 5000) LB=$(sc 10000000)
"$CTL" -u "$DLOGD_URI" create s --auto-txid --records-per-sec "$LR" --bytes-per-sec "$LB" >/dev/null
# Three client processes, each with its own connection, offering the limit each.
lp=()
for k in 0 1 2; do
  RL_BASE=$k "$LOAD" "$DLOGD_URI" s 1 "$LR" 2000 "$SECS" >"$T/one.$k.load" 2>&1 &
  lp+=($!)
done
wait "${lp[@]}"
tail -qn 2 "$T"/one.*.load
sum() { awk -v f="$2" '$1 == "'"$1"'" { s += $f } END { printf "%d", s }' "$T"/one.*.load; }
acked=$(sum total 3) rej=$(sum total 5) other=$(sum total 7)
found=$(sum check 5) dups=$(sum check 7) foreign=$(sum check 9)
rate=$((acked / SECS))
echo "offered $((3 * LR)) records/s ($((3 * LR * 2000)) bytes/s); admitted $rate records/s ($((rate * 2000)) bytes/s)"
check "admitted rate $rate records/s is within 10% of $LR" "near $rate $LR 10"
check "admitted bytes/s $((rate * 2000)) is within 10% of $LB" "near $((rate * 2000)) $LB 10"
check "writes were refused ($rej of $((3 * LR * SECS)))" "[ ${rej:-0} -gt $((LR * SECS)) ]"
check "every refusal was DLOG_EOVERCAPACITY (other errors: $other)" "[ ${other:-1} -eq 0 ]"
check "every acknowledged record is stored ($found of $acked), once ($dups dups)" \
  "[ ${found:-0} -eq ${acked:-x} ] && [ ${dups:-1} -eq 0 ] && [ ${foreign:-1} -eq 0 ]"
"$CTL" -u "$DLOGD_URI" limits s >"$T/one.stats"
check "dlogctl limits shows the proxy's counters" "grep -q '^one ' '$T/one.stats' && grep -q '^total' '$T/one.stats'"

# ---- 3. a change at run time: unlimited now, without a restart
"$CTL" -u "$DLOGD_URI" limit s --records-per-sec 0 --bytes-per-sec 0 >/dev/null
"$LOAD" "$DLOGD_URI" s 1 "$(sc 20000)" 100 3 --no-check >"$T/free.load" 2>&1
read -r _ _ acked _ rej _ other < <(grep '^total' "$T/free.load")
# The proxy re-reads limits within an interval; allow the first second.
check "after 'limit s --records-per-sec 0' writes are admitted ($acked, $rej refused)" \
  "[ ${rej:-1} -le $(sc 20000) ] && [ ${acked:-0} -ge $(sc 40000) ]"

# ---- 4. delayed, not refused: 1,200 records/s offered to a 1,000/s limit
# for 3 s builds at most 600 records (0.6 s) of waiting, under max_wait_ms
"$CTL" -u "$DLOGD_URI" create d --auto-txid --records-per-sec "$(sc 1000)" --max-wait-ms 1500 >/dev/null
"$LOAD" "$DLOGD_URI" d 1 "$(sc 1200)" 100 3 >"$T/delay.load" 2>&1
read -r _ _ acked _ rej _ other < <(grep '^total' "$T/delay.load")
read -r _ _ nread _ found _ dups _ foreign _ disorder < <(grep '^check' "$T/delay.load")
delayed=$("$CTL" -u "$DLOGD_URI" limits d --json | sed -n 's/.*"proxy":"total"[^}]*"delayed":\([0-9]*\).*/\1/p')
echo "delay: acked $acked rejected $rej other $other delayed ${delayed:-?} disorder $disorder"
check "no write over the limit was refused while it could wait ($rej refused)" "[ ${rej:-1} -eq 0 ] && [ ${other:-1} -eq 0 ]"
check "writes were delayed (${delayed:-0})" "[ ${delayed:-0} -gt $(sc 100) ]"
check "all $(sc 3600) delayed or not are stored once, in the order written" \
  "[ ${found:-0} -eq $((3 * $(sc 1200))) ] && [ ${dups:-1} -eq 0 ] && [ ${disorder:-1} -eq 0 ]"

# ---- 5. the namespace's limit spans its streams: two streams offered
# the whole namespace limit each admit half of it together
NL=$(sc 2000)
"$CTL" -u "$DLOGD_URI" create n1 --auto-txid >/dev/null
"$CTL" -u "$DLOGD_URI" create n2 --auto-txid >/dev/null
"$CTL" -u "$DLOGD_URI" limit --namespace --records-per-sec "$NL" >/dev/null
"$LOAD" "$DLOGD_URI" n1 1 "$NL" 100 "$SECS" --no-check >"$T/n1.load" 2>&1 &
n1=$!
RL_BASE=1 "$LOAD" "$DLOGD_URI" n2 1 "$NL" 100 "$SECS" --no-check >"$T/n2.load" 2>&1
wait $n1
# The proxy re-reads limits every 250 ms: measure from second 1.
t1=$(avg "$T/n1.load" 1 "$SECS") t2=$(avg "$T/n2.load" 1 "$SECS")
nrate=$((t1 + t2))
echo "namespace: $t1/s + $t2/s = $nrate/s admitted (limit $NL, offered $((2 * NL))/s)"
check "two streams together admit the namespace's limit ($nrate/s of $NL)" "near $nrate $NL 10"
"$CTL" -u "$DLOGD_URI" limit --namespace --records-per-sec 0 >/dev/null
dlogd_stop KILL
PIDS=()

# ---- 2. two proxies, a global limit divided max-min fairly
mkdir -p "$T/two"
dlogd_start "$T/two" --proxy-id A --limit-lease-ms 2000 || exit 1
A_PID=$DLOGD_PID A_URI=$DLOGD_URI
PIDS+=("$A_PID")
DLOGD_OUT_A=$DLOGD_OUT
DLOGD_PID=
dlogd_start "$T/two" --proxy-id B --limit-lease-ms 2000 || exit 1
B_PID=$DLOGD_PID B_URI=$DLOGD_URI
PIDS+=("$B_PID")
DLOGD_PID=
G=$(sc 4000) GA=$(sc 1000) GB=$(sc 3000)
"$CTL" -u "$A_URI" create g --auto-txid --records-per-sec "$G" >/dev/null
N=$((SECS + 6))
"$LOAD" "$A_URI" g 1 "$GA" 100 "$N" --no-check >"$T/a.load" 2>&1 &
LA=$!
"$LOAD" "$B_URI" g 2 "$G" 100 "$N" --no-check >"$T/b.load" 2>&1 &
LB=$!
PIDS+=("$LA" "$LB")
# Settled within 2 s: measure seconds 2 .. 2+SECS/2.
M=$((2 + SECS / 2))
wait_line "$T/b.load" "^sec $M " $((N + 30)) || bad "the load through B reported second $M"
a=$(avg "$T/a.load" 2 "$M") b=$(avg "$T/b.load" 2 "$M")
echo "shares: A admitted $a/s (demand $GA), B admitted $b/s (demand $((2 * G))), limit $G"
check "A's admitted rate $a is within 10% of its max-min share $GA" "near $a $GA 10"
check "B's admitted rate $b is within 10% of its max-min share $GB" "near $b $GB 10"
# Both proxies' reports, as B last read them (a report is a few hundred ms
# old at most; polled, up to a deadline, on a loaded machine).
deadline=$((SECONDS + 10))
while :; do
  "$CTL" -u "$B_URI" limits g >"$T/two.stats"
  grep -q '^A ' "$T/two.stats" && grep -q '^B ' "$T/two.stats" && break
  [ $SECONDS -ge $deadline ] && break
  sleep 0.2 # polls the stats, up to the deadline
done
check "dlogctl limits lists both proxies" "grep -q '^A ' '$T/two.stats' && grep -q '^B ' '$T/two.stats'"
kill -9 "$A_PID"
killed_at=$(awk '$1 == "sec" { s = $2 } END { print s + 1 }' "$T/b.load")
# A's share returns within the lease (2 s) plus a report interval: measure
# from 3 seconds after the kill.
from=$((killed_at + 3))
wait_line "$T/b.load" "^total" $((N + 30)) || bad "the load through B finished"
b2=$(avg "$T/b.load" "$from" "$N")
echo "after A was killed in second $killed_at: B admitted $b2/s from second $from"
check "B's admitted rate after A died ($b2) is within 10% of the whole limit $G" "near $b2 $G 10"
wait "$LB" 2>/dev/null
wait "$LA" 2>/dev/null

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
