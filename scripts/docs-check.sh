#!/bin/sh
# docs-check.sh — check that the English and Chinese documentation trees are
# twins: every .md page has a counterpart at the same relative path on the
# other side, and twins have the same number of Markdown headings and fenced
# code blocks. POSIX sh; needs only find, sort and awk.
#
# Exit status: 0 all twinned, 1 problems found (one message per problem on
# stderr, naming the files), 2 usage error.

prog=docs-check

usage() {
    cat <<'EOF'
Usage: docs-check.sh DOCS_DIR ZH_DIR
       docs-check.sh --help

Checks that the Markdown pages under DOCS_DIR (English) and ZH_DIR (Chinese)
are twins. Both trees are searched recursively for *.md files. It fails when

  - a page under DOCS_DIR has no twin at the same relative path under ZH_DIR,
    or the reverse;
  - twins differ in their number of headings: ATX headings ("#" to "######"
    followed by a space or the end of the line, indented at most 3 spaces),
    not counting lines inside fenced code blocks;
  - twins differ in their number of fenced code blocks (``` or ~~~ fences);
  - a page leaves a fenced code block open at its end.

On success it prints "docs-check: N pages, all twinned" and exits 0.
Otherwise it prints one message per problem on stderr and exits 1.
Usage errors (wrong arguments, missing directory) exit 2.

Example:
  sh scripts/docs-check.sh docs docs-zh
EOF
}

case "${1:-}" in
-h | --help)
    usage
    exit 0
    ;;
esac

if [ "$#" -ne 2 ]; then
    usage >&2
    exit 2
fi

# Strip trailing slashes (but keep "/" itself) so messages read "docs/x.md".
trim() {
    t=$1
    while [ "${#t}" -gt 1 ] && [ "${t%/}" != "$t" ]; do
        t=${t%/}
    done
    printf '%s\n' "$t"
}
en_dir=$(trim "$1")
zh_dir=$(trim "$2")

for d in "$en_dir" "$zh_dir"; do
    if [ ! -d "$d" ]; then
        echo "$prog: $d: not a directory" >&2
        exit 2
    fi
done

# The .md files under a directory, as paths relative to it, sorted.
list_pages() {
    (CDPATH='' cd -- "$1" && find . -type f -name '*.md' -print) |
        awk '{ sub(/^\.\//, ""); print }' | LC_ALL=C sort
}

# Prints "HEADINGS FENCES UNCLOSED_AT" for a Markdown file, where
# UNCLOSED_AT is the line of a fence left open at the end (0 if none).
# Follows CommonMark for fences: 3+ backticks or tildes, indented at most 3
# spaces; a backtick fence's info string has no backtick; the closing fence
# uses the same character, at least as many, and nothing else on the line.
md_counts() {
    awk '
    function run(s, c,   k) {
        k = 0
        while (substr(s, k + 1, 1) == c) k++
        return k
    }
    BEGIN { headings = 0; fences = 0; open = 0; openline = 0 }
    {
        line = $0
        sub(/\r$/, "", line)
        n = run(line, " ")
        rest = substr(line, n + 1)
        c = substr(rest, 1, 1)
        if (open) {
            if (n <= 3 && c == fch) {
                k = run(rest, c)
                tail = substr(rest, k + 1)
                if (k >= flen && tail ~ /^[ \t]*$/) open = 0
            }
            next
        }
        if (n > 3) next
        if (c == "`" || c == "~") {
            k = run(rest, c)
            if (k >= 3 && !(c == "`" && index(substr(rest, k + 1), "`") > 0)) {
                open = 1; fch = c; flen = k; openline = NR
                fences++
                next
            }
        }
        if (c == "#") {
            k = run(rest, "#")
            nx = substr(rest, k + 1, 1)
            if (k <= 6 && (nx == "" || nx == " " || nx == "\t")) headings++
        }
    }
    END { print headings, fences, (open ? openline : 0) }
    ' <"$1"
}

en_pages=$(list_pages "$en_dir") || exit 2
zh_pages=$(list_pages "$zh_dir") || exit 2

problems=0
pages=0

problem() {
    echo "$prog: $*" >&2
    problems=$((problems + 1))
}

# Reports an unclosed fence in file $1, given its md_counts output in $2.
check_unclosed() {
    open_at=${2##* }
    if [ "$open_at" -ne 0 ]; then
        problem "$1: code block opened at line $open_at is never closed"
    fi
}

while IFS= read -r rel; do
    [ -n "$rel" ] || continue
    en=$en_dir/$rel
    zh=$zh_dir/$rel
    if [ ! -f "$zh" ]; then
        problem "$en has no twin: $zh is missing"
        continue
    fi
    pages=$((pages + 1))
    en_c=$(md_counts "$en") || exit 2
    zh_c=$(md_counts "$zh") || exit 2
    check_unclosed "$en" "$en_c"
    check_unclosed "$zh" "$zh_c"
    # Split "H F U H F U" into $1..$6 (numbers only, so no quoting needed).
    # shellcheck disable=SC2086
    set -- $en_c $zh_c
    if [ "$1" -ne "$4" ]; then
        problem "$en has $1 headings but $zh has $4"
    fi
    if [ "$2" -ne "$5" ]; then
        problem "$en has $2 fenced code blocks but $zh has $5"
    fi
done <<EOF
$en_pages
EOF

while IFS= read -r rel; do
    [ -n "$rel" ] || continue
    if [ ! -f "$en_dir/$rel" ]; then
        problem "$zh_dir/$rel has no twin: $en_dir/$rel is missing"
    fi
done <<EOF
$zh_pages
EOF

if [ "$problems" -eq 0 ] && [ "$pages" -eq 0 ]; then
    problem "no .md pages under $en_dir and $zh_dir"
fi

if [ "$problems" -ne 0 ]; then
    echo "$prog: FAILED: $problems problem(s) in $en_dir and $zh_dir" >&2
    exit 1
fi
echo "$prog: $pages pages, all twinned"
exit 0
