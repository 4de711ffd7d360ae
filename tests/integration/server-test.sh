#!/usr/bin/env bash
# dlogd against hostile clients (server-test), its flags, config file,
# pid file and clean shutdown on SIGTERM.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
. "$here/dlogd_lib.sh"
tmp=$(mktemp -d)
trap 'dlogd_stop KILL; rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
ulimit -n 4096 2>/dev/null || true

"$DLOGD_BIN" --help | grep -q -- '--role' && ok || bad "dlogd --help"
"$DLOGD_BIN" --role node --data "$tmp/x" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--id" "$tmp/err" && ok || bad "--role node without --id is refused clearly"
"$DLOGD_BIN" --role proxy --data "$tmp/x" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--cluster" "$tmp/err" && ok || bad "--role proxy without --cluster is refused clearly"
"$DLOGD_BIN" --role local >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--data" "$tmp/err" && ok || bad "--data is required"

# Config file (libinih) and pid file.
printf '[dlogd]\nrole = local\nlog-level = info\npid-file = %s\n' "$tmp/dlogd.pid" >"$tmp/dlogd.ini"
if dlogd_start "$tmp/ns" --config "$tmp/dlogd.ini"; then ok; else bad "start"; exit 1; fi
[ "$(cat "$tmp/dlogd.pid" 2>/dev/null)" = "$DLOGD_PID" ] && ok || bad "pid file"

if "$top_builddir/tests/integration/server-test" 127.0.0.1 "$DLOGD_PORT" "$DLOGD_PID"; then
  ok
else
  bad "server-test"
fi

# dlogctl over the network while the server runs.
printf 'one\ntwo\n' | "$top_builddir/dlogctl" -u "$DLOGD_URI" write healthy-0 --acks >/dev/null 2>&1 || true
kill -0 "$DLOGD_PID" 2>/dev/null && ok || bad "server alive at the end"
if dlogd_stop TERM; then ok; else bad "dlogd exits 0 on SIGTERM"; fi
[ ! -e "$tmp/dlogd.pid" ] && ok || bad "pid file removed at exit"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
