#!/bin/sh
# api-example-test.sh — runs the complete example program of docs/api.md and
# checks that the page still shows it exactly (automake script test: exit 0
# pass, 1 fail).
#
# 1. examples/api/api-example, run on a new directory, exits 0 and prints the
#    expected lines: the blocking write at 1/0/0, five async writes, the
#    describe line, eight records read back, five with the key prefix "eu/",
#    and "OK: ..." last.
# 2. Run again on the same directory, it deletes the stream of the first run
#    and succeeds again.
# 3. Run on a path that is a regular file, it exits non-zero with a message.
# 4. Run without an argument, it succeeds and removes its temporary directory.
# 5. Every fenced code block that follows a marker line
#    "<!-- example: PATH -->" in docs/api.md and docs-zh/api.md is byte for
#    byte the file PATH of the source tree (there must be one for
#    examples/api/api_example.c), and the two pages' code blocks are the same.
#
# Uses top_builddir and top_srcdir (set by `make check`); both default to this
# script's ../..

here=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd) || exit 1
top_builddir=${top_builddir:-$here}
top_srcdir=${top_srcdir:-$here}
prog=$top_builddir/examples/api/api-example
example=examples/api/api_example.c
docs_en=$top_srcdir/docs/api.md
docs_zh=$top_srcdir/docs-zh/api.md

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

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

for f in "$prog" "$top_srcdir/$example" "$docs_en" "$docs_zh"; do
    if [ ! -e "$f" ]; then
        fail "$f does not exist (top_builddir=$top_builddir top_srcdir=$top_srcdir)"
    fi
done
[ "$failed" -eq 0 ] || finish

tmp=$(mktemp -d "${TMPDIR:-/tmp}/api-example-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Runs the example with a deadline, so a hang fails instead of blocking.
run() {
    if command -v timeout >/dev/null 2>&1; then
        timeout 60 "$prog" "$@"
    else
        "$prog" "$@"
    fi
}

# Prints a file's contents indented, to show with a failure.
show() {
    sed 's/^/    | /' "$1"
}

# has FILE REGEX: does some line of FILE match the extended regex?
has() {
    grep -Eq -- "$2" "$1"
}

# count FILE REGEX: how many lines of FILE match the extended regex.
count() {
    grep -Ec -- "$2" "$1"
}

# --- 1. a first run on a new directory
ns=$tmp/ns
out=$tmp/out1
err=$tmp/err1
run "$ns" >"$out" 2>"$err"
rv=$?
if [ "$rv" -eq 0 ]; then
    pass "api-example exits 0"
else
    fail "api-example exits $rv; stderr:"
    show "$err"
fi

check_line() { # check_line FILE REGEX DESCRIPTION
    if has "$1" "$2"; then
        pass "$3"
    else
        fail "$3: no line matches '$2' in:"
        show "$1"
    fi
}

check_count() { # check_count FILE REGEX N DESCRIPTION
    n=$(count "$1" "$2")
    if [ "$n" -eq "$3" ]; then
        pass "$4"
    else
        fail "$4: $n lines match '$2', expected $3"
        show "$1"
    fi
}

dlsn='[0-9]+/[0-9]+/[0-9]+'
check_line "$out" "^namespace: file:$ns\$" "it names the namespace file:DIR"
check_line "$out" '^stream: shop/orders$' "it lists the stream"
check_line "$out" '^sync write: 3 records, first at 1/0/0$' \
    "the blocking write starts the new stream at 1/0/0"
check_count "$out" "^async write: txid [4-8] at $dlsn\$" 5 "five async writes are acknowledged"
check_line "$out" "^describe: 8 records in [0-9]+ segments, last at $dlsn, last txid 8\$" \
    "describe counts 8 records, last txid 8"
check_count "$out" "^read: $dlsn txid [1-8] (eu|us)/10[0-9]{2} " 8 "eight records are read back"
check_line "$out" '^read: 1/0/0 txid 1 eu/1001 2 x espresso$' "the first record read is the first written"
check_count "$out" "^async read: $dlsn eu/" 5 "the async reader returns the five eu/ records"
check_count "$out" "^async read: $dlsn us/" 0 "the key prefix skips the us/ records"
check_line "$out" '^async read: 5 records with key prefix "eu/"$' "the async reader reports 5 records"
last=$(tail -n 1 "$out")
if [ "$last" = "OK: 8 records written and read back" ]; then
    pass "the last line is the OK line"
else
    fail "the last line is '$last', not the OK line"
fi
if [ -d "$ns" ]; then
    pass "a directory given as argument is kept"
else
    fail "the directory $ns is gone after the run"
fi

# --- 2. a second run on the same directory
out=$tmp/out2
err=$tmp/err2
run "$ns" >"$out" 2>"$err"
rv=$?
if [ "$rv" -eq 0 ] && has "$out" '^deleting the stream shop/orders of an earlier run$' &&
    has "$out" '^OK: 8 records written and read back$'; then
    pass "a second run on the same directory replaces the stream and succeeds"
else
    fail "a second run on the same directory exits $rv; stdout and stderr:"
    show "$out"
    show "$err"
fi

# --- 3. a path that is not a directory
: >"$tmp/file"
out=$tmp/out3
err=$tmp/err3
run "$tmp/file" >"$out" 2>"$err"
rv=$?
if [ "$rv" -ne 0 ] && has "$err" '^api-example: dlog_open file:' &&
    has "$err" '^api-example: FAILED$' && ! has "$out" '^OK'; then
    pass "a regular file as directory fails with exit $rv and a message"
else
    fail "a regular file as directory: exit $rv; stdout and stderr:"
    show "$out"
    show "$err"
fi

# --- 4. no argument: a temporary directory, removed at the end
out=$tmp/out4
err=$tmp/err4
run >"$out" 2>"$err"
rv=$?
dir=$(sed -n 's/^namespace: file://p' "$out")
if [ "$rv" -eq 0 ] && [ -n "$dir" ] && [ ! -e "$dir" ] &&
    has "$out" '^OK: 8 records written and read back$'; then
    pass "without an argument it uses a temporary directory and removes it"
else
    fail "without an argument: exit $rv, directory '$dir'; stdout and stderr:"
    show "$out"
    show "$err"
    case $dir in
    /tmp/dlog-api-example.*) rm -rf "$dir" ;;
    esac
fi

# --- 5. the docs show the example exactly
marker='<!-- example: '

# extract PAGE LINE OUT: writes the body of the fenced block that starts on
# the line after LINE of PAGE to OUT; fails unless that line opens a fence.
extract() {
    awk -v from="$2" '
    NR == from + 1 {
        if ($0 !~ /^```/) exit 2
        fence = $0
        sub(/[^`].*$/, "", fence)
        inside = 1
        next
    }
    inside && index($0, fence) == 1 && substr($0, length(fence) + 1) ~ /^`*[ \t]*$/ {
        closed = 1
        exit
    }
    inside { print }
    END { if (!closed) exit 2 }
    ' "$1" >"$3"
}

# code_blocks PAGE: every fenced code block of PAGE, fences included.
code_blocks() {
    awk '
    !inside && /^```/ { inside = 1; fence = $0; sub(/[^`].*$/, "", fence); print; next }
    inside { print; if (index($0, fence) == 1 && substr($0, length(fence) + 1) ~ /^`*[ \t]*$/) inside = 0 }
    ' "$1"
}

for page in "$docs_en" "$docs_zh"; do
    rel=${page#"$top_srcdir"/}
    found=0
    # "LINE PATH" for each marker of the page.
    grep -n -- "^$marker.* -->\$" "$page" |
        sed 's/^\([0-9]*\):<!-- example: \(.*\) -->$/\1 \2/' >"$tmp/markers"
    while read -r line path; do
        [ "$path" = "$example" ] && found=1
        block=$tmp/block
        if ! extract "$page" "$line" "$block"; then
            fail "$rel:$line: the marker for $path is not followed by a closed code block"
        elif [ ! -f "$top_srcdir/$path" ]; then
            fail "$rel:$line: $path does not exist"
        elif cmp -s "$block" "$top_srcdir/$path"; then
            pass "$rel shows $path exactly"
        else
            fail "$rel:$line: the code block differs from $path:"
            diff -u "$top_srcdir/$path" "$block" | head -n 40 | sed 's/^/    | /'
        fi
    done <"$tmp/markers"
    if [ "$found" -eq 0 ]; then
        fail "$rel has no line '$marker$example -->' before the example's code block"
    fi
done

code_blocks "$docs_en" >"$tmp/code-en"
code_blocks "$docs_zh" >"$tmp/code-zh"
if cmp -s "$tmp/code-en" "$tmp/code-zh"; then
    pass "docs/api.md and docs-zh/api.md have the same code blocks"
else
    fail "the code blocks of docs/api.md and docs-zh/api.md differ:"
    diff -u "$tmp/code-en" "$tmp/code-zh" | head -n 40 | sed 's/^/    | /'
fi

finish
