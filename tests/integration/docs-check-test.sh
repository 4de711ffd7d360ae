#!/bin/sh
# docs-check-test.sh — tests scripts/docs-check.sh (automake script test:
# exit 0 pass, 1 fail).
#
# 1. The real docs/ and docs-zh/ pass the check.
# 2. On copies of them in a temporary directory, the check fails, naming the
#    file, when (a) a docs-zh twin is removed, (b) a heading is added to one
#    side only, (c) a fenced code block is added to one side only.
#
# Uses top_srcdir (set by `make check`); defaults to this script's ../..

if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd) || exit 1
fi
checker=$top_srcdir/scripts/docs-check.sh
docs=$top_srcdir/docs
docs_zh=$top_srcdir/docs-zh

passed=0
failed=0

pass() {
    echo "PASS: $*"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

for f in "$checker" "$docs" "$docs_zh"; do
    if [ ! -e "$f" ]; then
        echo "FAIL: $f does not exist (top_srcdir=$top_srcdir)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/docs-check-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The page the broken copies are made from: the first English page that has
# a Chinese twin (the real docs are checked to be twinned first anyway).
page=$(CDPATH='' cd -- "$docs" && find . -type f -name '*.md' | LC_ALL=C sort | head -n 1)
page=${page#./}

# --- 1. the real docs pass
out=$tmp/out
if sh "$checker" "$docs" "$docs_zh" >"$out" 2>&1; then
    if grep -q '^docs-check: [0-9][0-9]* pages, all twinned$' "$out"; then
        pass "the real docs are twinned: $(cat "$out")"
    else
        fail "docs-check passed on the real docs without its summary line:"
        cat "$out"
    fi
else
    fail "docs-check fails on the real docs:"
    cat "$out"
fi

# Fresh copies of both trees in $tmp/docs and $tmp/docs-zh.
fresh_copy() {
    rm -rf "$tmp/docs" "$tmp/docs-zh"
    cp -R "$docs" "$tmp/docs" && cp -R "$docs_zh" "$tmp/docs-zh"
}

# expect_failure NAME FILE: docs-check on the copies must exit 1 and name
# FILE (a path relative to $tmp) in its output.
expect_failure() {
    sh "$checker" "$tmp/docs" "$tmp/docs-zh" >"$out" 2>&1
    rc=$?
    if [ "$rc" -ne 1 ]; then
        fail "$1: docs-check exited $rc, expected 1:"
        cat "$out"
    elif ! grep -qF "$2" "$out"; then
        fail "$1: the failure message does not name $2:"
        cat "$out"
    else
        pass "$1: $(head -n 1 "$out")"
    fi
}

if [ -z "$page" ]; then
    fail "no .md page under $docs to break"
    failed=$((failed + 2))
else
    # --- (a) a docs-zh twin removed
    if fresh_copy; then
        rm -f "$tmp/docs-zh/$page"
        expect_failure "missing docs-zh twin" "docs-zh/$page"
    else
        fail "cannot copy the docs into $tmp"
    fi

    # --- (b) a heading added to the English side only
    if fresh_copy; then
        printf '\n## A heading only in English\n\nText.\n' >>"$tmp/docs/$page"
        expect_failure "heading on one side" "docs/$page"
    else
        fail "cannot copy the docs into $tmp"
    fi

    # --- (c) a fenced code block added to the Chinese side only
    if fresh_copy; then
        # shellcheck disable=SC2016
        printf '\n```sh\necho "only in docs-zh"\n```\n' >>"$tmp/docs-zh/$page"
        expect_failure "code block on one side" "docs-zh/$page"
    else
        fail "cannot copy the docs into $tmp"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
