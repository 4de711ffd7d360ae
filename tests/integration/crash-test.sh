#!/usr/bin/env bash
# Crash test (DESIGN.md invariants 1, 2, 3 and 5): a writer killed with
# SIGKILL at random moments never loses an acknowledged record, never leaves
# a torn large record visible, and positions only grow across restarts.
#
# In a fresh file: namespace, crash-writer appends (small records and, now
# and then, 2-5 MiB ones, several writes in flight) and prints each
# acknowledged record. It is killed 50-400 ms after its first ack, restarted,
# killed again, CRASH_ITERATIONS times (default 20). After each kill
# `crash-writer --verify` reads the whole stream and checks every
# acknowledgement so far against it.
#
# Environment: top_builddir (where tests/integration/crash-writer is),
# CRASH_ITERATIONS, CRASH_SEED (for $RANDOM), CRASH_TIME_LIMIT (seconds,
# default 100: iterations stop early, reported, when it is reached).
set -u

top_builddir=${top_builddir:-.}
CW="$top_builddir/tests/integration/crash-writer"
ITER=${CRASH_ITERATIONS:-20}
LIMIT=${CRASH_TIME_LIMIT:-100}
RANDOM=${CRASH_SEED:-$$}

if [ ! -x "$CW" ]; then
  echo "crash-test: $CW not built" >&2
  exit 99
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/dlog-crash-XXXXXX")
pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

URI="file:$dir/ns"
STREAM="crash/stream"
ACKS="$dir/acks"
: > "$ACKS"
passed=0
failed=0
start=$SECONDS

now_ms() { date +%s%3N; }

for ((i = 1; i <= ITER; i++)); do
  if (( SECONDS - start >= LIMIT )); then
    echo "crash-test: time limit of ${LIMIT}s reached after $((i - 1)) iterations"
    break
  fi
  out="$dir/out.$i"
  : > "$out"
  "$CW" "$URI" "$STREAM" "$RANDOM$RANDOM" > "$out" 2> "$dir/err.$i" &
  pid=$!

  # Wait (10 s at most) for the first acknowledgement.
  deadline=$(( $(now_ms) + 10000 ))
  while [ ! -s "$out" ] && kill -0 "$pid" 2>/dev/null && (( $(now_ms) < deadline )); do
    sleep 0.005
  done
  if [ ! -s "$out" ]; then
    echo "FAIL iteration $i: no acknowledgement within 10 s (writer $(kill -0 "$pid" 2>/dev/null && echo running || echo exited))"
    sed 's/^/  writer: /' "$dir/err.$i"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
    failed=$((failed + 1))
    continue
  fi

  delay=$(( 50 + RANDOM % 351 ))
  sleep "$(printf '0.%03d' "$delay")"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    rc=$?
    echo "FAIL iteration $i: the writer exited by itself (status $rc)"
    sed 's/^/  writer: /' "$dir/err.$i"
    pid=""
    failed=$((failed + 1))
    cat "$out" >> "$ACKS"
    continue
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  pid=""
  cat "$out" >> "$ACKS"
  acked=$(grep -c . "$out")

  if "$CW" --verify "$URI" "$STREAM" "$ACKS" 2> "$dir/verify.$i"; then
    passed=$((passed + 1))
    echo "ok iteration $i: killed after ${delay} ms, $acked new acks; $(tail -n 1 "$dir/verify.$i")"
  else
    failed=$((failed + 1))
    echo "FAIL iteration $i: killed after ${delay} ms, $acked new acks"
    sed 's/^/  /' "$dir/verify.$i"
    sed 's/^/  writer: /' "$dir/err.$i"
  fi
done

echo "$passed passed, $failed failed"
if (( failed > 0 || passed == 0 )); then
  exit 1
fi
exit 0
