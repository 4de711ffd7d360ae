#!/usr/bin/env bash
# The core library's test suites against dlog:// — the same tests as for
# mem: and file:, parameterised by URI — with a dlogd started here; and the
# dlog-kv replicas' redis test with their log on that server.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
. "$here/dlogd_lib.sh"
tmp=$(mktemp -d)
trap 'dlogd_stop KILL; rm -rf "$tmp"' EXIT
pass=0 fail=0
if ! dlogd_start "$tmp/ns"; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "dlogd at $DLOGD_URI (pid $DLOGD_PID)"
run() {
  local name=$1
  shift
  if DLOG_TEST_URIS="$DLOGD_URI" "$@"; then
    pass=$((pass + 1))
  else
    echo "FAIL: $name against $DLOGD_URI"
    fail=$((fail + 1))
  fi
}
run test-core "$top_builddir/tests/unit/test-core"
run test-cpp "$top_builddir/tests/cpp/test-cpp"
# dlog-kv replicas on the server pass the redis-cli/redis-benchmark test.
if command -v redis-cli >/dev/null 2>&1; then
  if KV_TEST_URI="$DLOGD_URI" bash "$here/kv-redis-test.sh" >"$tmp/kv.log" 2>&1; then
    pass=$((pass + 1))
  else
    echo "FAIL: kv-redis-test against $DLOGD_URI"
    tail -30 "$tmp/kv.log"
    fail=$((fail + 1))
  fi
  tail -1 "$tmp/kv.log"
fi
kill -0 "$DLOGD_PID" 2>/dev/null && pass=$((pass + 1)) || { echo "FAIL: dlogd died"; fail=$((fail + 1)); }
if dlogd_stop TERM; then pass=$((pass + 1)); else echo "FAIL: dlogd exit status"; fail=$((fail + 1)); fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
