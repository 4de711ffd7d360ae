#!/usr/bin/env bash
# dlog-kv end to end with the real Redis tools: three replicas on one file:
# namespace, redis-benchmark against each, a counter INCRed through all three,
# a replica killed with SIGKILL under load and restarted (it catches up and
# nothing acknowledged is lost), a replica whose LMDB state was destroyed
# (rebuilt from the stream), a new empty replica (bootstraps), protocol and
# error replies, expiry, and clean SIGTERM shutdown.
#
# Needs redis-cli (exit 77, skipped, without it) and redis-benchmark.
# Prints one line per check and "N passed, M failed" last; exits 1 on failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$here/../..}
top_srcdir=${top_srcdir:-$here/../..}
KV="$top_builddir/examples/kvstore/dlog-kv"

if ! command -v redis-cli >/dev/null 2>&1; then
  echo "SKIP: redis-cli not found (apt-get install redis-tools)"
  exit 77
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ ! -x "$KV" ]; then
  bad "dlog-kv is built at $KV"
  finish
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-redis-test.XXXXXX")
declare -a pids=() ports=()
bg_pids=()
cleanup() {
  local p
  for p in "${bg_pids[@]}" "${pids[@]}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  done
  for p in "${bg_pids[@]}" "${pids[@]}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# KV_TEST_URI runs the replicas against another namespace, e.g. a dlogd.
NS=${KV_TEST_URI:-file:$tmp/ns}
STREAM=kv

# start_replica I [EXTRA...]: starts replica I on a port the kernel picks
# (--listen 127.0.0.1:0, read back from its "ready on" line), then waits for
# PING with a deadline. Returns 1 if it does not come up.
start_replica() {
  local i=$1 d
  shift
  "$KV" --log "$NS" --stream "$STREAM" --data "$tmp/r$i" --listen 127.0.0.1:0 \
    --snapshot-every 4000 "$@" >>"$tmp/r$i.log" 2>&1 &
  pids[$i]=$!
  ports[$i]=
  for ((d = 0; d < 600; d++)); do # 60 s: replay after a restart can take a while
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "# replica $i exited; log:"; sed 's/^/#   /' "$tmp/r$i.log" | tail -n 20
      pids[$i]=
      return 1
    fi
    ports[$i]=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/r$i.log" | tail -n 1)
    if [ -n "${ports[$i]}" ] && [ "$(redis-cli -p "${ports[$i]}" PING 2>/dev/null)" = PONG ]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}
# kill_replica I SIGNAL: signals replica I and waits for it to exit.
kill_replica() {
  local i=$1 sig=$2
  [ -n "${pids[$i]}" ] || return 0
  kill "-$sig" "${pids[$i]}" 2>/dev/null
  wait "${pids[$i]}" 2>/dev/null
  local rc=$?
  pids[$i]=
  return $rc
}
# rcli I ARGS...: redis-cli against replica I.
rcli() { local i=$1; shift; redis-cli -p "${ports[$i]}" "$@" 2>&1; }
# same_on_all DESC EXPECTED CMD...: CMD's output equals EXPECTED on every
# live replica (reads go through a read barrier, so this is linearizable).
same_on_all() {
  local d=$1 want=$2 i got all=1
  shift 2
  for i in 0 1 2; do
    [ -n "${pids[$i]}" ] || continue
    got=$(rcli "$i" "$@")
    if [ "$got" != "$want" ]; then
      echo "#   replica $i: '$(head -c 200 <<<"$got")', want '$want'"
      all=0
    fi
  done
  [ "$all" -eq 1 ] && ok "$d" || bad "$d"
}
# digest I: a hash of replica I's whole keyspace (sorted keys and values).
digest() {
  local i=$1
  rcli "$i" --scan | LC_ALL=C sort >"$tmp/keys.$i"
  {
    cat "$tmp/keys.$i"
    # values through MGET, 500 keys at a time
    xargs -d '\n' -n 500 redis-cli -p "${ports[$i]}" MGET <"$tmp/keys.$i" 2>&1
  } | md5sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- start
check "--help exits 0" bash -c '"$0" --help | grep -q -- --stale-reads' "$KV"
for i in 0 1 2; do
  : >"$tmp/r$i.log"
  check "replica $i starts and answers PING" start_replica "$i"
done
if [ -z "${ports[0]}" ] || [ -z "${ports[1]}" ] || [ -z "${ports[2]}" ]; then
  finish
fi

# ---------------------------------------------------------------- protocol
check "SET then GET through another replica (linearizable)" \
  bash -c '[ "$(redis-cli -p "$0" SET greeting hello)" = OK ] &&
           [ "$(redis-cli -p "$1" GET greeting)" = hello ]' "${ports[0]}" "${ports[1]}"
same_on_all "INCR on a non-integer gives Redis's error" \
  "ERR value is not an integer or out of range" INCR greeting
same_on_all "unknown command gives Redis's error" \
  "ERR unknown command 'frob', with args beginning with: 'a' 'b' " frob a b
check "SELECT 0 is OK, SELECT 1 is an error" \
  bash -c '[ "$(redis-cli -p "$0" SELECT 0)" = OK ] &&
           redis-cli -p "$0" SELECT 1 | grep -q "out of range"' "${ports[0]}"
check "pipelined commands are answered in order" \
  bash -c 'out=$(printf "SET p 1\r\nINCR p\r\nGET p\r\nDEL p\r\nEXISTS p\r\nPING\r\nECHO hi\r\n" |
           redis-cli -p "$0" | tr "\n" " "); [ "$out" = "OK 2 2 1 0 PONG hi " ] ||
           { echo "#   got: $out"; exit 1; }' "${ports[2]}"
check "SET NX / XX, GETSET, APPEND, STRLEN, DECRBY, MSET/MGET, DBSIZE" \
  bash -c 'p=$0; r() { redis-cli -p "$p" "$@"; }
    [ "$(r SET nx 1 NX)" = OK ] && [ -z "$(r SET nx 2 NX)" ] && [ "$(r SET nx 3 XX)" = OK ] &&
    [ "$(r GETSET nx 4)" = 3 ] && [ "$(r APPEND nx 56)" = 3 ] && [ "$(r STRLEN nx)" = 3 ] &&
    [ "$(r DECRBY nx 400)" = 56 ] && [ "$(r MSET m1 a m2 b)" = OK ] &&
    [ "$(r MGET m1 m2 nope | tr "\n" ,)" = "a,b,," ] && [ "$(r DBSIZE)" = 4 ]' "${ports[1]}"
check "KEYS and SCAN with glob patterns" \
  bash -c 'p=$0; [ "$(redis-cli -p "$p" KEYS "m[0-9]" | sort | tr "\n" ,)" = "m1,m2," ] &&
    [ "$(redis-cli -p "$p" --scan --pattern "m?" | sort | tr "\n" ,)" = "m1,m2," ] &&
    [ "$(redis-cli -p "$p" SCAN 0 MATCH "m*" COUNT 1 | wc -l)" -le 2 ]' \
  "${ports[2]}"
check "CLIENT SETNAME / GETNAME / STALE" \
  bash -c 'out=$(printf "CLIENT SETNAME app1\r\nCLIENT GETNAME\r\nCLIENT STALE ON\r\nGET m1\r\nCLIENT STALE\r\n" |
           redis-cli -p "$0" | tr "\n" " "); [ "$out" = "OK app1 OK a ON " ] ||
           { echo "#   got: $out"; exit 1; }' "${ports[0]}"
check "COMMAND COUNT and COMMAND DOCS answer as redis-cli 7 expects" \
  bash -c '[ "$(redis-cli -p "$0" COMMAND COUNT)" -ge 20 ] &&
           redis-cli -p "$0" COMMAND DOCS get | grep -q summary' "${ports[0]}"
check "INFO has keyspace and the applied DLSN" \
  bash -c 'i=$(redis-cli -p "$0" INFO); grep -q "^db0:keys=" <<<"$i" &&
           grep -Eq "^applied_dlsn:[0-9]+/[0-9]+/[0-9]+" <<<"$i"' "${ports[0]}"
# A malformed request gets an -ERR Protocol error and the connection closes.
proto_error() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/${ports[0]}" || return 1
  printf '*1\r\n$abc\r\n' >&3
  IFS= read -r -t 5 reply <&3
  exec 3<&- 3>&-
  [[ "$reply" == "-ERR Protocol error: invalid bulk length"* ]] ||
    { echo "#   got: $reply"; return 1; }
}
check "a protocol error is answered with -ERR Protocol error" proto_error
# Expiry is decided by the proposer's clock: the same on every replica.
check "SET PX: the key expires on every replica" \
  bash -c '[ "$(redis-cli -p "$0" SET ttl v PX 400)" = OK ] &&
           [ "$(redis-cli -p "$1" GET ttl)" = v ]' "${ports[0]}" "${ports[1]}"
sleep 0.6
same_on_all "expired key reads as missing everywhere" "" GET ttl

# ---------------------------------------------------------------- redis-benchmark
if command -v redis-benchmark >/dev/null 2>&1; then
  for i in 0 1 2; do
    timeout 120 redis-benchmark -p "${ports[$i]}" -t set,get,incr -n 20000 -c 20 -q \
      >"$tmp/bench.$i" 2>"$tmp/bench.$i.err"
    rc=$?
    tr '\r' '\n' <"$tmp/bench.$i" | grep -E '^(SET|GET|INCR): [0-9.]+ requests per second' \
      >"$tmp/bench.$i.sum"
    if [ "$rc" -eq 0 ] && [ "$(wc -l <"$tmp/bench.$i.sum")" -eq 3 ]; then
      ok "redis-benchmark set,get,incr against replica $i: $(cut -d, -f1 "$tmp/bench.$i.sum" | tr '\n' ' ')"
    else
      bad "redis-benchmark against replica $i (exit $rc): $(tail -c 300 "$tmp/bench.$i.err")"
    fi
  done
  # 20000 INCRs of the same key per run, through three replicas.
  same_on_all "redis-benchmark's counter is 60000 on every replica" 60000 \
    GET "counter:__rand_int__"
else
  bad "redis-benchmark is installed (apt-get install redis-tools)"
fi

# ---------------------------------------------------------------- one counter, three replicas
for i in 0 1 2; do
  n=$((i == 0 ? 3334 : 3333))
  yes 'INCR hits' | head -n "$n" | sed 's/$/\r/' | redis-cli -p "${ports[$i]}" --pipe \
    >"$tmp/pipe.$i" 2>&1 &
  bg_pids+=($!)
done
wait "${bg_pids[@]}"
bg_pids=()
check "INCR pipelines through three replicas had no errors" \
  bash -c 'cat "$@" | grep -q "errors: 0, replies: 3334" &&
           [ "$(cat "$@" | grep -c "errors: 0")" -eq 3 ]' _ "$tmp/pipe.0" "$tmp/pipe.1" "$tmp/pipe.2"
same_on_all "10000 INCRs spread over three replicas read 10000 on each" 10000 GET hits

# ---------------------------------------------------------------- SIGKILL under load
# Two writers send batches of 200 SETs, each batch over one connection to
# one replica, round robin, including the one that is killed. redis-cli
# prints one OK per acknowledged SET, in order; a batch that loses its
# server fails from there on (the restarted replica gets a new port), so the
# acknowledged SETs of a batch are its first "OK" lines.
writer() {
  local w=$1 b=0 i n k
  while [ ! -e "$tmp/stop" ]; do
    i=$(((b + w) % 3))
    k=${ports[$i]}
    [ -f "$tmp/port.$i" ] && k=$(cat "$tmp/port.$i")
    for ((n = 0; n < 200; n++)); do echo "SET w$w:$b:$n v$w.$b.$n"; done >"$tmp/cmds.$w.$b"
    redis-cli -p "$k" <"$tmp/cmds.$w.$b" >"$tmp/out.$w.$b" 2>/dev/null
    b=$((b + 1))
  done
  echo "$b" >"$tmp/batches.$w"
}
writer 1 &
bg_pids+=($!)
writer 2 &
bg_pids+=($!)
sleep 2
victim=${pids[2]}
kill -KILL "$victim"
wait "$victim" 2>/dev/null
check "replica 2 killed with SIGKILL under load" bash -c '! kill -0 "$0" 2>/dev/null' "$victim"
pids[2]=
sleep 1
cat "$tmp/r2.log" >>"$tmp/r2.log.before-kill"
: >"$tmp/r2.log"
check "replica 2 restarts on its data directory" start_replica 2
echo "${ports[2]}" >"$tmp/port.2"
sleep 2
touch "$tmp/stop"
wait "${bg_pids[@]}"
bg_pids=()

# The acknowledged SETs: for each batch, its first (number of OK) commands.
: >"$tmp/acked"
for f in "$tmp"/out.*; do
  b=${f#"$tmp/out."}
  n=$(grep -c '^OK$' "$f")
  head -n "$n" "$tmp/cmds.$b" >>"$tmp/acked"
done
acked=$(wc -l <"$tmp/acked")
check "the writers got acknowledgements ($acked SETs)" test "$acked" -gt 200
awk '{ print $2 }' "$tmp/acked" >"$tmp/acked.keys"
awk '{ print $3 }' "$tmp/acked" >"$tmp/acked.vals"
lost_on() {
  local i=$1
  xargs -d '\n' -n 500 redis-cli -p "${ports[$i]}" MGET <"$tmp/acked.keys" >"$tmp/got.$i" 2>&1
  if ! diff -q "$tmp/acked.vals" "$tmp/got.$i" >/dev/null; then
    echo "#   replica $i: $(diff "$tmp/acked.vals" "$tmp/got.$i" | grep -c '^<') acknowledged values missing or wrong"
    return 1
  fi
}
for i in 0 1 2; do
  check "replica $i has every acknowledged SET with its value" lost_on "$i"
done
d0=$(digest 0)
size0=$(rcli 0 DBSIZE)
same_on_all "the same DBSIZE on every replica after the restart" "$size0" DBSIZE
check "the same keys and values on every replica" \
  bash -c '[ "$0" = "$1" ] && [ "$0" = "$2" ]' "$d0" "$(digest 1)" "$(digest 2)"
same_on_all "the counter survived the restart" 10000 GET hits
check "every replica applied up to the same DLSN" \
  bash -c 'for p in "$@"; do redis-cli -p "$p" GET hits >/dev/null; done
    a=$(for p in "$@"; do redis-cli -p "$p" INFO replication | tr -d "\r" |
        sed -n "s/^applied_dlsn://p"; done | sort -u | wc -l); [ "$a" -eq 1 ]' \
  "${ports[0]}" "${ports[1]}" "${ports[2]}"

# ---------------------------------------------------------------- state lost
# LMDB is synced periodically (the stream is the durable copy). A state that
# cannot be read is moved aside and rebuilt from a snapshot and the stream.
kill_replica 1 KILL
dd if=/dev/urandom of="$tmp/r1/state/data.mdb" bs=4096 count=4 conv=notrunc 2>/dev/null
: >"$tmp/r1.log"
check "replica 1 restarts on a destroyed LMDB state" start_replica 1
check "replica 1 said it rebuilds the state" grep -q "moved aside" "$tmp/r1.log"
check "replica 1 rebuilt the same keys and values" \
  bash -c '[ "$0" = "$1" ]' "$d0" "$(digest 1)"

# A new, empty replica bootstraps from the shared snapshot and the stream.
: >"$tmp/r3.log"
check "a new empty replica starts" start_replica 3
check "the new replica holds the same keys and values" \
  bash -c '[ "$0" = "$1" ]' "$d0" "$(digest 3)"
check "the new replica exits 0 on SIGTERM" kill_replica 3 TERM

# ---------------------------------------------------------------- shutdown
for i in 0 1 2; do
  check "replica $i exits 0 on SIGTERM" kill_replica "$i" TERM
done
check "no replica reported a fatal error" \
  bash -c '! grep -h "replica stopped\|Assertion\|AddressSanitizer" "$@"' \
  _ "$tmp"/r*.log

finish
