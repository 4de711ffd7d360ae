# Shared helpers for tests that run dlogd (sourced, bash).
# dlogd_start DIR [ARGS...]: starts dlogd --role local on a free loopback port,
# sets DLOGD_PID, DLOGD_PORT and DLOGD_URI; the caller traps dlogd_stop.
: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
DLOGD_BIN=${DLOGD_BIN:-$top_builddir/dlogd}

dlogd_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  DLOGD_OUT="$dir.out"
  "$DLOGD_BIN" --role local --data "$dir" --listen 127.0.0.1:0 "$@" >"$DLOGD_OUT" 2>&1 &
  DLOGD_PID=$!
  local deadline=$((SECONDS + 20))
  DLOGD_PORT=
  while [ $SECONDS -lt $deadline ]; do
    DLOGD_PORT=$(sed -n 's/^dlogd: listening on [0-9.]*:\([0-9]*\).*/\1/p' "$DLOGD_OUT")
    [ -n "$DLOGD_PORT" ] && break
    kill -0 "$DLOGD_PID" 2>/dev/null || break
    sleep 0.05 # poll the output for the port, up to the deadline
  done
  if [ -z "$DLOGD_PORT" ]; then
    echo "dlogd did not start:"
    cat "$DLOGD_OUT"
    return 1
  fi
  DLOGD_URI="dlog://127.0.0.1:$DLOGD_PORT"
}

# dlogd_stop [SIGNAL]: stops it and waits; returns dlogd's exit status.
dlogd_stop() {
  [ -n "${DLOGD_PID:-}" ] || return 0
  kill "-${1:-TERM}" "$DLOGD_PID" 2>/dev/null || true
  local rc=0
  wait "$DLOGD_PID" || rc=$?
  DLOGD_PID=
  return $rc
}
