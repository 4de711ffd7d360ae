#!/usr/bin/env bash
# demo.sh — the demo that ./quickstart runs: one dlog-kv replica on an
# embedded file: namespace, a short redis-cli session, then how to go on.
#
#   scripts/demo.sh          run the session, print how to connect, stop
#   scripts/demo.sh --keep   the same, then keep the server running in the
#                            foreground until Ctrl-C
#
# Data lives in a temporary directory (removed at the end), or in
# ./demo-data with --keep (kept, so a later run sees the same keys).
# Uses the built binary ./examples/kvstore/dlog-kv and redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
KV=$TOP/examples/kvstore/dlog-kv
KEEP=0
case "${1:-}" in
--keep) KEEP=1 ;;
"") ;;
-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "demo: unknown argument '$1' (use --keep)" >&2; exit 2 ;;
esac

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
# dlog-kv is an example program (make examples); build it if needed.
if [ ! -x "$KV" ] && [ -f Makefile ]; then
  bold "==> make examples/kvstore/dlog-kv"
  make -s examples/kvstore/dlog-kv >/dev/null
fi
if [ ! -x "$KV" ]; then
  echo "demo: $KV is not built; run ./quickstart build, then make examples" >&2
  exit 1
fi
if ! command -v redis-cli >/dev/null 2>&1; then
  echo "demo: redis-cli is missing: apt-get install redis-tools" >&2
  exit 1
fi

if [ "$KEEP" -eq 1 ]; then
  DATA=$TOP/demo-data
  mkdir -p "$DATA"
else
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/dlog-kv-demo.XXXXXX")
fi
LOG=$DATA/r1.log
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ "$KEEP" -eq 1 ] || rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "==> starting dlog-kv (namespace file:$DATA/ns, stream demo, port chosen by the kernel)"
: >"$LOG"
"$KV" --log "file:$DATA/ns" --stream demo --data "$DATA/r1" --listen 127.0.0.1:0 \
  2>>"$LOG" &
pid=$!
PORT=
for ((i = 0; i < 200; i++)); do
  PORT=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | tail -n 1)
  [ -n "$PORT" ] && [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: dlog-kv exited:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$PORT" ] || { echo "demo: dlog-kv did not start" >&2; cat "$LOG" >&2; exit 1; }
sed 's/^/    /' "$LOG"

# run ARGS...: prints the command as typed at redis-cli, then the reply.
run() {
  printf '\033[36m127.0.0.1:%s> %s\033[0m\n' "$PORT" "$*"
  redis-cli -p "$PORT" "$@" | sed 's/^/    /'
}
bold "==> a redis-cli session (every write goes through the dlog stream)"
run SET greeting "hello from dlog"
run GET greeting
run INCR visits
run INCR visits
run MSET city Paris lang C
run MGET city lang greeting
run SET session:1 active EX 60
run DBSIZE
run INFO keyspace
run INFO replication

cat <<EOF

$(bold "==> try it yourself")
  Connect:                 redis-cli -p $PORT
  Stale (faster) reads:    CLIENT STALE ON   (per connection; the default is linearizable)

  Three replicas by hand: the same --log and --stream, each its own --data
  and port. Every write goes through the stream; every replica applies it:
    ./examples/kvstore/dlog-kv --log file:/tmp/kv/ns --data /tmp/kv/r1 --listen 127.0.0.1:6381 &
    ./examples/kvstore/dlog-kv --log file:/tmp/kv/ns --data /tmp/kv/r2 --listen 127.0.0.1:6382 &
    ./examples/kvstore/dlog-kv --log file:/tmp/kv/ns --data /tmp/kv/r3 --listen 127.0.0.1:6383 &
    redis-cli -p 6381 SET x 1 && redis-cli -p 6383 GET x
  Tutorial: docs/kvstore.md (English), docs-zh/kvstore.md (中文)
EOF

if [ "$KEEP" -eq 1 ]; then
  echo "  Replicas of this demo's data: --log file:$DATA/ns --stream demo"
  bold "==> dlog-kv keeps running on port $PORT (data in $DATA); Ctrl-C stops it"
  wait "$pid" || true
  pid=
else
  bold "==> stopping dlog-kv (run scripts/demo.sh --keep to leave it running)"
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
fi
