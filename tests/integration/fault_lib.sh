# fault_lib.sh — the fault pattern shared by cluster-fault-test.sh and
# cluster-kv-fault-test.sh (sourced). The caller sets tmp (its cluster is
# $tmp/c, three nodes and two proxies), CL, FW (fault-writer), addrs (the
# nodes' listen addresses), and defines ok, bad and progress_note (one
# word on the load's progress, printed with each kill).
#
#   FAULT_SECONDS (default 60)  how long the faults go on
#   FAULT_KILL_PROXIES (default 1)  0: only nodes are killed
#   FAULT_SEED  the seed of the order and the delays (printed)
#
# fault_loop: for FAULT_SECONDS, every 2-5 s (kill to kill), SIGKILLs one
# process and restarts it 0.5-1.9 s later; a kill waits for the last one's
# recovery (every node a reachable voter, a metadata leader, both proxies
# up). In turn, in a shuffled order: the metadata leader, the leader of
# data group 0, a random node and (unless FAULT_KILL_PROXIES=0) a random
# proxy. Appends "kill T node|proxy I KIND" to $tmp/kills (T: fault-writer
# now, CLOCK_MONOTONIC ns, once the process is gone); sets nkills. The
# sleeps are the load pattern; every wait polls with a deadline.
FAULT_SECS=${FAULT_SECONDS:-60}
KILL_PROXIES=${FAULT_KILL_PROXIES:-1}
SEED=${FAULT_SEED:-$(($(date +%s) % 1000000))}

phase() { echo "[$SECONDS s] $*"; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 secs=$2 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      bad "$what: not within $secs s"
      return 1
    fi
    sleep 0.1 # polls, up to the deadline
  done
}

# tests/cluster.sh's rule: a zombie is not alive, a thread still exiting is.
alive() { [ -n "${1:-}" ] && "$CL" alive "$1"; }
ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
listen_of() { sed -n '/^--listen$/{n;p;q}' "$tmp/c/n$1.args"; }
node_of() { # the node whose listen address is $1
  local i
  for i in 1 2 3; do [ "$(listen_of "$i")" = "$1" ] && echo "$i"; done
}
meta_leader() { "$CL" status "$tmp/c" 2>/dev/null | awk '/^node .* state leader /{print $2; exit}'; }
data_leader() { local a; a=$("$FW" leader "$addrs" 0 2>/dev/null) && node_of "$a"; }
# The cluster is whole: every node a reachable voter, one metadata leader,
# both proxies running.
whole() {
  local s p
  s=$("$CL" status "$tmp/c" 2>/dev/null) || return 1
  [ "$(echo "$s" | grep -c '^node .* state leader ')" -eq 1 ] || return 1
  for p in 1 2; do alive "$(cat "$tmp/c/p$p.pid")" || return 1; done
}
# pick KIND: sets who to the node (or proxy) to kill; 1 if there is none yet.
pick() {
  case $1 in
  meta-leader) who=$(meta_leader) ;;
  data-leader) who=$(data_leader) ;;
  node) who=$((1 + RANDOM % 3)) ;;
  proxy) who=$((1 + RANDOM % 2)) ;;
  esac
  [ -n "$who" ]
}
# caught_up M: every node has applied the same index of data group 0, and
# at least index M of the metadata (which the proxies' rate-limit reports
# keep moving: the indices are never all the same for long).
meta_applied() { "$CL" status "$tmp/c" 2>/dev/null | awk '/^node .* state leader /{print $12}'; }
caught_up() {
  local s
  s=$("$CL" status "$tmp/c" 2>/dev/null) || return 1
  [ "$(echo "$s" | awk '/^groups node/{print $5}' | sort -u | wc -l)" -eq 1 ] &&
    [ "$(echo "$s" | awk -v m="$1" '/^node / && $12 < m {n++} END {print n + 0}')" -eq 0 ]
}

fault_loop() {
  local kinds=(meta-leader data-leader node) bag=() end next left w0 waited i j t
  local kind what
  [ "$KILL_PROXIES" = 1 ] && kinds+=(proxy)
  : >"$tmp/kills"
  end=$((SECONDS + FAULT_SECS))
  nkills=0
  next=$(($(ms) + 2000 + RANDOM % 3001))
  while [ $SECONDS -lt $end ]; do
    # The load pattern: the next kill 2-5 s after the last one.
    left=$((next - $(ms)))
    [ $left -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
    w0=$(ms)
    wait_for "the cluster whole again before kill $((nkills + 1))" 30 whole || break
    waited=$(($(ms) - w0))
    if [ ${#bag[@]} -eq 0 ]; then # a shuffled round of every kind
      bag=("${kinds[@]}")
      for ((i = ${#bag[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        t=${bag[$i]} && bag[$i]=${bag[$j]} && bag[$j]=$t
      done
    fi
    kind=${bag[0]}
    bag=("${bag[@]:1}")
    what=node
    [ "$kind" = proxy ] && what=proxy
    wait_for "a $kind to kill" 20 pick "$kind" || continue
    if [ $what = node ]; then "$CL" kill "$tmp/c" "$who"; else "$CL" kill-proxy "$tmp/c" "$who"; fi ||
      bad "kill $what $who"
    t=$("$FW" now) # once the process is gone
    nkills=$((nkills + 1))
    next=$(($(ms) + 2000 + RANDOM % 3001))
    echo "kill $t $what $who $kind" >>"$tmp/kills"
    echo "  $(printf '%3d' $((SECONDS - end + FAULT_SECS))) s: killed $what $who ($kind)" \
      "after $waited ms waiting for the cluster to be whole; $(progress_note)"
    sleep "$((RANDOM % 2)).$((5 + RANDOM % 5))" # restarted after 0.5-1.9 s
    if [ $what = node ]; then "$CL" restart "$tmp/c" "$who"; else "$CL" restart-proxy "$tmp/c" "$who"; fi ||
      bad "restart $what $who"
  done
  # 2-5 s apart, but never before the last one has recovered (a node's
  # restart alone takes 2-3 s here): 10 s apart on a loaded machine.
  [ "$nkills" -ge $((FAULT_SECS / 10)) ] && ok || bad "only $nkills kills in $FAULT_SECS s"
}

# "N kills (A data-leader, B meta-leader, ...)"
kills_summary() {
  echo "$nkills kills ($(awk '{print $5}' "$tmp/kills" | sort | uniq -c |
    awk '{printf "%s%s %s", s, $1, $2; s = ", "}'))"
}

# Every process of the cluster stops on SIGTERM; no sanitizer report in a log.
fault_down() {
  local f
  "$CL" down "$tmp/c" && ok || bad "a process did not stop on SIGTERM"
  for f in "$tmp"/c/n*.pid "$tmp"/c/p*.pid; do
    alive "$(cat "$f")" && bad "$(basename "$f" .pid) still runs"
  done
  if grep -l "AddressSanitizer\|LeakSanitizer\|runtime error" "$tmp"/c/*.log "$@" >/dev/null 2>&1; then
    bad "sanitizer reports:"
    grep -h -A20 "Sanitizer\|runtime error" "$tmp"/c/*.log "$@" | head -60
  fi
}
