#!/usr/bin/env bash
# Shows that ./configure stops with the Debian package to install when a
# dependency is missing: it hides every .pc file from pkg-config except
# those of the other dependencies. Run in an unconfigured source tree.
set -euo pipefail
SRC=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/pc"
for dir in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
  [ -d "$dir" ] && cp -n "$dir"/*.pc "$tmp/pc/" 2>/dev/null || true
done
rm -f "$tmp/pc/lmdb.pc"
mkdir "$tmp/build"
out=$(cd "$tmp/build" && PKG_CONFIG_LIBDIR="$tmp/pc" "$SRC/configure" 2>&1 || true)
if grep -q "apt-get install liblmdb-dev" <<<"$out"; then
  echo "configure-missing-dep: ok (names liblmdb-dev)"
  echo "1 passed, 0 failed"
else
  echo "$out" | tail -5
  echo "configure-missing-dep: configure did not name liblmdb-dev"
  echo "0 passed, 1 failed"
  exit 1
fi
