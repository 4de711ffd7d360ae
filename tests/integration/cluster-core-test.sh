#!/usr/bin/env bash
# cluster-core-test.sh — the core library's suites (tests/unit/test-core)
# against a 3-node cluster through its cluster:// URI: the public API
# works on a cluster unchanged (issue 6). The suites note what they skip
# on a cluster (tests that edit the file: backend's files, per-namespace
# limits on a shared namespace); a record above 16 MiB is refused there
# with DLOG_ETOOBIG (one append is one Raft entry), checked by the large
# suite.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
export top_builddir
CL="$here/../cluster.sh"
tmp=$(mktemp -d)
cleanup() {
  "$CL" down "$tmp/c" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
uri=$("$CL" up 3 "$tmp/c" | tail -n 1)
case "$uri" in
cluster://*) ;;
*)
  echo "FAIL: cluster up: $uri"
  exit 1
  ;;
esac
DLOG_TEST_URIS="$uri" "$top_builddir/tests/unit/test-core"
