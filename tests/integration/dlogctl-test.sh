#!/usr/bin/env bash
# dlogctl end to end against a fresh file: namespace: create, write with acks,
# read back, describe, list, read from a DLSN, truncate, tail, error exits.
# Prints one line per check and "N passed, M failed" last; exits 1 on failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$here/../..}
top_srcdir=${top_srcdir:-$here/../..}
DLOGCTL="$top_builddir/dlogctl"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ ! -x "$DLOGCTL" ]; then
  bad "dlogctl is built at $DLOGCTL"
  finish
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlogctl-test.XXXXXX")
tail_pid=
cleanup() {
  if [ -n "$tail_pid" ]; then
    kill "$tail_pid" 2>/dev/null
    wait "$tail_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
export DLOG_URI="file:$tmp/ns"

ctl() { "$DLOGCTL" "$@"; }
# expect_exit CODE PATTERN DESCRIPTION COMMAND...: exit status CODE and
# PATTERN (grep -E) on stderr.
expect_exit() {
  local code=$1 pat=$2 d=$3 rc; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ "$rc" -eq "$code" ] && grep -Eq -- "$pat" "$tmp/err"; then
    ok "$d"
  else
    bad "$d (exit $rc, stderr: $(head -c 300 "$tmp/err"))"
  fi
}
# wait_for FILE PATTERN: polls up to 10 s for PATTERN in FILE.
wait_for() {
  local i
  for ((i = 0; i < 200; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
# DLSNs in column 1 of stdin strictly increase.
increasing() {
  awk -F'\t' '{ split($1, d, "/"); a = d[1] + 0; b = d[2] + 0; c = d[3] + 0
       if (NR > 1 && !(a > pa || (a == pa && (b > pb || (b == pb && c > pc))))) bad = 1
       pa = a; pb = b; pc = c }
       END { exit bad + (NR == 0) }'
}

# ---------------------------------------------------------------- help
check "--help exits 0" ctl --help >/dev/null
check "write --help exits 0 and lists --acks" \
  bash -c '"$0" write --help | grep -q -- --acks' "$DLOGCTL"
check "--version prints the version" bash -c '"$0" --version | grep -Eq "[0-9]+\.[0-9]+"' "$DLOGCTL"

# ---------------------------------------------------------------- create, write, read
check "create s1" ctl create s1 --segment-records 300
seq 1 1000 | sed 's/^/record-/' >"$tmp/input"
ctl write s1 --acks <"$tmp/input" >"$tmp/acks"
check "write --acks exits 0" test $? -eq 0
check "1000 ack lines" test "$(wc -l <"$tmp/acks")" -eq 1000
check "ack DLSNs strictly increase" increasing <"$tmp/acks"
check "ack txids are 1..1000" bash -c 'cut -f2 "$0" | diff -q - <(seq 1 1000)' "$tmp/acks"
ctl read s1 >"$tmp/read"
check "read exits 0" test $? -eq 0
check "read returns the input" diff -q "$tmp/input" "$tmp/read"
check "read --with-dlsn gives the acked DLSNs" \
  bash -c '"$0" read s1 --with-dlsn | cut -f1 | diff -q - <(cut -f1 "$1")' "$DLOGCTL" "$tmp/acks"
check "read --count 10" test "$(ctl read s1 --count 10 | wc -l)" -eq 10

# ---------------------------------------------------------------- describe, list
ctl describe s1 >"$tmp/describe"
check "describe names the stream" grep -q 's1' "$tmp/describe"
check "describe counts 1000 records" grep -Eq '^records: +1000 ' "$tmp/describe"
check "describe lists segments" grep -Eq '^ +1 +(open|sealed) ' "$tmp/describe"
ctl describe s1 --json >"$tmp/json"
check "describe --json" grep -q '"name": "s1"' "$tmp/json"
check "describe --json has segments" grep -q '"segments": \[' "$tmp/json"
check "list shows s1" bash -c '"$0" list | grep -qx s1' "$DLOGCTL"

# ---------------------------------------------------------------- read from the middle
mid=$(sed -n 501p "$tmp/acks" | cut -f1)
ctl read s1 --from "$mid" >"$tmp/rest"
check "read --from $mid returns the last 500" bash -c 'tail -n 500 "$0" | diff -q - "$1"' \
  "$tmp/input" "$tmp/rest"
check "read --from-txid 991 returns 10" test "$(ctl read s1 --from-txid 991 | wc -l)" -eq 10
to=$(sed -n 10p "$tmp/acks" | cut -f1)
check "read --to stops at that record" test "$(ctl read s1 --to "$to" | wc -l)" -eq 10

# ---------------------------------------------------------------- truncate, retention
first=$(sed -n 1p "$tmp/acks" | cut -f1)
check "truncate s1 at $mid" ctl truncate s1 "$mid"
expect_exit 1 'truncat' "read below the truncation point fails" ctl read s1 --from "$first"
check "read from head after truncate starts at $mid" \
  bash -c '"$0" read s1 | diff -q - "$1"' "$DLOGCTL" "$tmp/rest"
check "retention prints the segments deleted" \
  bash -c '"$0" retention s1 | grep -Eq "^[0-9]+ segments? deleted"' "$DLOGCTL"

# ---------------------------------------------------------------- formats and txids
printf '\0\0\0\5hello\0\0\0\0\0\0\0\3a\nb' >"$tmp/raw"
check "create s2" ctl create s2 --segment-bytes 64K --compression lz4 --auto-txid
check "write --format=raw" ctl write s2 --format=raw <"$tmp/raw"
check "read --format=raw round-trips" bash -c '"$0" read s2 --format=raw | cmp -s - "$1"' \
  "$DLOGCTL" "$tmp/raw"
check "K suffix" grep -q '"segment_max_bytes": 65536' <(ctl describe s2 --json)
check "auto txids" bash -c 'printf "x\ny\n" | "$0" write s2 --acks | cut -f2 | tr "\n" " " |
  grep -qx "4 5 "' "$DLOGCTL"
check "write --batch 100" bash -c 'seq 1 1000 | "$0" write s1 --batch 100' "$DLOGCTL"
check "batched records read back" \
  bash -c '"$0" read s1 --from-txid 1001 | diff -q - <(seq 1 1000)' "$DLOGCTL"

# ---------------------------------------------------------------- errors
expect_exit 2 'unknown command' "unknown command exits 2" ctl frobnicate
expect_exit 2 'missing STREAM' "create without STREAM exits 2" ctl create
expect_exit 2 'unknown option' "unknown option exits 2" ctl read s1 --bogus
expect_exit 2 'segment-bytes' "bad size exits 2" ctl create s9 --segment-bytes 12Q
expect_exit 2 'compression' "bad compression exits 2" ctl create s9 --compression gzip
expect_exit 2 'DLSN' "bad DLSN exits 2" ctl read s1 --from nowhere
expect_exit 2 'batch' "--batch 0 exits 2" ctl write s1 --batch 0
expect_exit 2 'needs a value' "missing option value exits 2" ctl read s1 --count
expect_exit 1 'not found' "read of a missing stream exits 1" ctl read nosuch
expect_exit 1 'not found' "describe of a missing stream exits 1" ctl describe nosuch
expect_exit 1 'not found' "write to a missing stream exits 1" ctl write nosuch </dev/null
expect_exit 2 'invalid stream name' "invalid stream name fails" ctl create ../bad
expect_exit 1 'exists' "creating s1 twice fails" ctl create s1

# ---------------------------------------------------------------- tail
check "create s3" ctl create s3
"$DLOGCTL" tail s3 --with-txid >"$tmp/tail" 2>"$tmp/tail.err" &
tail_pid=$!
check "write after tail started" bash -c 'echo tail-me | "$0" write s3' "$DLOGCTL"
check "tail sees the record written afterwards" wait_for "$tmp/tail" $'1\ttail-me'
kill -TERM "$tail_pid" 2>/dev/null
wait "$tail_pid"
check "tail exits 0 on SIGTERM" test $? -eq 0
tail_pid=
check "tail --count 1 exits by itself" \
  bash -c 'timeout 10 "$0" tail s3 --count 1 | grep -qx tail-me' "$DLOGCTL"

# ---------------------------------------------------------------- limits, quota
check "create q with a quota and limits" ctl create q --segment-bytes 8K --quota-bytes 64K \
  --records-per-sec 5000 --soft-records-per-sec 4000
seq 1 2000 | awk '{ printf "%0100d\n", $1 }' >"$tmp/q.in"
expect_exit 1 "quota" "a write past the quota stops with the quota error" \
  ctl write q <"$tmp/q.in"
check "describe shows the quota in use" bash -c '"$0" describe q | grep -Eq "^quota: +[0-9]+ of 65536 bytes used"' "$DLOGCTL"
check "quota --bytes 0 lifts it" bash -c '"$0" quota q --bytes 0 >/dev/null' "$DLOGCTL"
check "then the write goes through" ctl write q <"$tmp/q.in"
check "limit with no option prints the limits" bash -c '"$0" limit q | grep -Eq "^records/s +5000 \(soft 4000\)"' "$DLOGCTL"
expect_exit 2 "soft records/s level 9000 is above the hard level 5000" \
  "a soft level above the hard one is refused" ctl limit q --soft-records-per-sec 9000
check "and the limits are unchanged" bash -c '"$0" limit q | grep -Eq "\(soft 4000\)"' "$DLOGCTL"
expect_exit 2 "bytes" "quota without --bytes or --policy is a usage error" ctl quota q
check "limits --json shows the limits" bash -c '"$0" limits q --json | grep -q "\"records_per_sec\":5000"' "$DLOGCTL"

# ---------------------------------------------------------------- delete
check "delete s1" ctl delete s1
check "list no longer shows s1" bash -c '! "$0" list | grep -qx s1' "$DLOGCTL"

finish
