#!/bin/sh
# run-fuzz.sh — build the wire protocol's libFuzzer target (tests/fuzz/fuzz_wire.c)
# with clang and fuzz it for FUZZ_SECONDS (default 60) on a copy of
# tests/fuzz/corpus, so the checked-in corpus never changes.
#
# Environment:
#   FUZZ_SECONDS    how long to fuzz (default 60)
#   CLANG           the compiler (default clang)
#   FUZZ_BUILD_DIR  where to put the binary, the corpus copy and any crash
#                   files (default: a new temporary directory, removed when
#                   nothing was found)
#   FUZZ_JOBS       parallel fuzzing processes (default 1)
#   top_srcdir      the source tree (default: two levels above this script)
#
# Exit status: 0 when the fuzzer ran the whole time without a crash, leak,
# sanitizer report or timeout; 1 when it found one (the input that did it is
# kept in FUZZ_BUILD_DIR, named crash-*, leak-*, timeout-* or oom-*, and can be
# replayed with `fuzz-wire FILE`); 77 (skipped) when clang is missing or
# cannot build libFuzzer programs; 2 on other errors.

set -u

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 2
top=${top_srcdir:-$(CDPATH='' cd -- "$here/../.." && pwd)}
seconds=${FUZZ_SECONDS:-60}
clang=${CLANG:-clang}
jobs=${FUZZ_JOBS:-1}

if ! command -v "$clang" >/dev/null 2>&1; then
    echo "run-fuzz: $clang not found: skipped (apt-get install clang)"
    exit 77
fi

if [ -n "${FUZZ_BUILD_DIR:-}" ]; then
    work=$FUZZ_BUILD_DIR
    mkdir -p "$work" || exit 2
    keep=1
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/dlog-fuzz.XXXXXX") || exit 2
    keep=0
fi

msgpack_flags=$(pkg-config --cflags --libs msgpack 2>/dev/null || echo -lmsgpackc)
bin=$work/fuzz-wire

echo "run-fuzz: building $bin"
# shellcheck disable=SC2086
if ! "$clang" -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -I"$top/include" -I"$top/src" \
    "$top/tests/fuzz/fuzz_wire.c" "$top"/src/wire/*.c \
    "$top/src/base/buf.c" "$top/src/base/errmsg.c" "$top/src/base/err.c" \
    $msgpack_flags -o "$bin"; then
    echo "run-fuzz: $clang cannot build a libFuzzer program: skipped"
    [ "$keep" -eq 1 ] || rm -rf "$work"
    exit 77
fi

rm -rf "$work/corpus"
mkdir -p "$work/corpus" || exit 2
cp "$top"/tests/fuzz/corpus/* "$work/corpus/" || exit 2

echo "run-fuzz: fuzzing for ${seconds}s on a copy of tests/fuzz/corpus"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -jobs="$jobs" -workers="$jobs" \
    -artifact_prefix="$work/" "$work/corpus"
rc=$?

found=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | head -n 5)
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    echo "run-fuzz: FAILED (exit $rc); inputs kept in $work:"
    [ -n "$found" ] && echo "$found"
    echo "run-fuzz: replay one with: $bin FILE"
    exit 1
fi
echo "run-fuzz: no crash in ${seconds}s"
[ "$keep" -eq 1 ] || rm -rf "$work"
exit 0
