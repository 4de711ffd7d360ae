#!/usr/bin/env bash
# install-check: `make install DESTDIR=…` installs the headers, libdlog.so and
# dlog.pc, and a program including <dlog/dlog.h> builds and runs against the
# installed copy with `pkg-config --cflags --libs dlog`. Run from a configured
# build directory (BUILD, default .).
set -euo pipefail
BUILD=${1:-.}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s -C "$BUILD" install DESTDIR="$dest" >/dev/null
prefix=$(sed -n 's/^prefix=//p' "$BUILD/dlog.pc")
root="$dest$prefix"
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
check "headers installed" '[ -f "$root/include/dlog/dlog.h" ] && [ -f "$root/include/dlog/err.h" ] && [ -f "$root/include/dlog/sm.h" ]'
libdir=$(sed -n 's/^libdir=//p' "$BUILD/dlog.pc" | sed "s|\${exec_prefix}|$prefix|;s|\${prefix}|$prefix|")
check "libdlog.so installed" '[ -e "$dest$libdir/libdlog.so" ]'
check "dlog.pc installed" '[ -f "$dest$libdir/pkgconfig/dlog.pc" ]'
check "programs installed" '[ -x "$root/bin/dlogctl" ] && [ -x "$root/bin/dlog-bench" ]'
cat > "$dest/prog.c" <<'C'
#include <dlog/dlog.h>
#include <stdio.h>
int main(void)
{
    struct dlog_ns *ns;
    char err[DLOG_ERRMSG_LEN];
    if (dlog_open("mem:", NULL, &ns, err) != 0)
        return 1;
    int rv = dlog_stream_create(ns, "installed", NULL);
    printf("dlog %s: create -> %s\n", dlog_version(), dlog_strerror(rv));
    dlog_close(ns);
    return rv == 0 ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH="$dest$libdir/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags --libs dlog)
check "program builds with pkg-config --cflags --libs dlog" 'cc "$dest/prog.c" -o "$dest/prog" $flags'
check "program runs against the installed library" 'LD_LIBRARY_PATH="$dest$libdir" "$dest/prog" | grep -q "create -> success"'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
