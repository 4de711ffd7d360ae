#!/usr/bin/env bash
# cluster.sh — a local dlog cluster of `dlogd --role node` processes on
# loopback ports, for tests and for trying cluster mode (docs/cluster.md).
#
#   cluster.sh up N DIR      start N nodes (node 1 bootstraps, the others
#                            join), wait until all N are voters with a
#                            leader, print the cluster URI on the last line
#   cluster.sh kill DIR I    SIGKILL node I
#   cluster.sh restart DIR I start node I again with the same arguments
#   cluster.sh status DIR    dlogctl cluster status (exit 1 if a node is down)
#   cluster.sh uri DIR       print the cluster URI
#   cluster.sh down DIR      stop every proxy and node (SIGTERM, then SIGKILL)
#   cluster.sh proxy-uri DIR print the proxies' URI
#   cluster.sh kill-proxy DIR I     SIGKILL proxy I
#   cluster.sh restart-proxy DIR I  start proxy I again, on the same address
#   cluster.sh running DIR   print the nodes and proxies (nI, pI) still running,
#                            zombies not counted; exit 0 if there is one
#   cluster.sh alive PID     exit 0 while any thread of process PID has not
#                            exited (the tests' "still running")
#
# The cluster URI is "cluster://H:P,H:P,..." (the nodes' listen addresses).
# With CLUSTER_PROXIES=K (default 0), up also starts K `dlogd --role proxy`
# in front of the nodes and prints their "dlog://H:P,..." URI on the line
# before the cluster URI (pI.args, pI.pid, pI.log, appended to across
# restarts; the URI in DIR/proxy-uri). CLUSTER_PROXY_ARGS adds arguments
# to every proxy's (split on blanks), e.g. "--log-level info".
# CLUSTER_GROUPS=G (default 1) gives every node G data groups; a node's
# group g takes its Raft port + 1 + g. CLUSTER_NODE_ARGS adds dlogd flags
# to every node (e.g. --data-snapshot-trailing 64).
# DIR keeps, per node I: nI/ (its data), nI.args (its dlogd arguments, one
# per line), nI.pid, nI.log; and uri. Binaries: $DLOGD_BIN, $DLOGCTL_BIN,
# else $top_builddir/dlogd and dlogctl (top_builddir defaults to the
# directory above this script). Every wait has a deadline; nothing sleeps
# in the hope that something happened.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_builddir:=$(cd "$here/.." && pwd)}"
DLOGD_BIN=${DLOGD_BIN:-$top_builddir/dlogd}
DLOGCTL_BIN=${DLOGCTL_BIN:-$top_builddir/dlogctl}
UP_DEADLINE=${CLUSTER_UP_DEADLINE:-60}
PROXIES=${CLUSTER_PROXIES:-0}
GROUPS_N=${CLUSTER_GROUPS:-1}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# free_port [SPAN]: a loopback TCP port P with P..P+SPAN-1 free, picked at
# random below the kernel's ephemeral range and checked by binding. Raft
# addresses are announced to other nodes, so the port is chosen here and
# the node binds it itself: a collision shows as a node that exits at once,
# and is retried.
free_port() {
  local span=${1:-1} p q ok lo
  # Below the kernel's ephemeral range: a port from that range can be taken
  # by an outgoing connection while its node is down, and the restart fails.
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$span" "$lo" <<'PY'
import random, socket, sys
span, lo = int(sys.argv[1]), int(sys.argv[2])
for _ in range(1000):
    p = random.randint(10240, lo - span - 1)
    socks = []
    try:
        for q in range(p, p + span):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", q))
        print(p)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
PY
    return
  fi
  while :; do
    p=$((10240 + RANDOM % (lo - 10240 - span - 1)))
    ok=1
    for q in $(seq "$p" $((p + span - 1))); do
      (exec 3<>"/dev/tcp/127.0.0.1/$q") 2>/dev/null && ok=0
    done
    [ "$ok" = 1 ] && {
      echo "$p"
      return
    }
  done
}

pid_of() { cat "$1/n$2.pid" 2>/dev/null; }
# A zombie is not alive: a killed process may wait a while for its reaper.
alive() {
  local st t
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  # Any thread not yet a zombie: a killed process whose main thread has
  # exited still holds its files (its listening port) until every thread
  # has, e.g. one finishing an fdatasync.
  for t in /proc/"$1"/task/*/stat; do
    st=$(cat "$t" 2>/dev/null) || continue
    st=${st##*) }
    [ "${st%% *}" != Z ] && return 0
  done
  return 1
}

# start_node DIR I: runs dlogd with nI.args; waits (deadline) until it
# listens. 0, or 1 if it exited (a port in use, say).
start_node() {
  local dir=$1 i=$2 args=() line deadline pid
  while IFS= read -r line; do args+=("$line"); done <"$dir/n$i.args"
  "$DLOGD_BIN" "${args[@]}" >>"$dir/n$i.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/n$i.pid"
  deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    if grep -q "^dlogd: listening on" "$dir/n$i.log" 2>/dev/null &&
      [ "$(grep -c '^dlogd: listening on' "$dir/n$i.log")" -ge "$(cat "$dir/n$i.starts")" ]; then
      return 0
    fi
    alive "$pid" || return 1
    sleep 0.05 # polls the log for the listening line, up to the deadline
  done
  return 1
}

# The args of node I, with fresh ports.
write_args() {
  local dir=$1 i=$2 lp rp
  lp=$(free_port)
  rp=$(free_port $((GROUPS_N + 1))) # the data groups take rp+1..rp+G
  # keep the listen port out of them
  while [ "$lp" -ge "$rp" ] && [ "$lp" -le $((rp + GROUPS_N)) ]; do
    rp=$(free_port $((GROUPS_N + 1)))
  done
  {
    echo --role
    echo node
    echo --id
    echo "$i"
    echo --listen
    echo "127.0.0.1:$lp"
    echo --raft
    echo "127.0.0.1:$rp"
    echo --data
    echo "$dir/n$i"
    echo --groups
    echo "$GROUPS_N"
    # shellcheck disable=SC2086 # CLUSTER_NODE_ARGS: extra words on purpose
    for a in ${CLUSTER_NODE_ARGS:-}; do echo "$a"; done
    if [ "$i" -eq 1 ]; then
      echo --bootstrap
    else
      echo --join
      echo "$(listen_of "$dir" 1)"
    fi
  } >"$dir/n$i.args"
}

listen_of() { sed -n '/^--listen$/{n;p;q}' "$1/n$2.args"; }

uri_of() {
  local dir=$1 i=1 out=""
  while [ -e "$dir/n$i.args" ]; do
    out="$out${out:+,}$(listen_of "$dir" "$i")"
    i=$((i + 1))
  done
  echo "cluster://$out"
}

# Waits (deadline) until status shows n reachable voters and one leader.
wait_healthy() {
  local dir=$1 n=$2 deadline=$((SECONDS + $3)) out
  while [ $SECONDS -lt $deadline ]; do
    out=$("$DLOGCTL_BIN" -u "$(cat "$dir/uri")" cluster status 2>/dev/null) && {
      local voters leaders
      voters=$(echo "$out" | grep -c '^node .* role voter ')
      leaders=$(echo "$out" | grep -c '^node .* state leader ')
      if [ "$voters" -eq "$n" ] && [ "$leaders" -eq 1 ] &&
        ! echo "$out" | grep -q unreachable; then
        return 0
      fi
    }
    sleep 0.1 # polls the cluster's status, up to the deadline
  done
  echo "cluster.sh: not healthy within $3 s:" >&2
  "$DLOGCTL_BIN" -u "$(cat "$dir/uri")" cluster status >&2
  return 1
}

cmd_up() {
  local n=$1 dir=$2 i try
  [ "$n" -ge 1 ] 2>/dev/null || die "up: N must be a number >= 1"
  mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd)
  for i in $(seq 1 "$n"); do
    [ -e "$dir/n$i" ] && die "$dir/n$i exists: use restart, or a new DIR"
  done
  for i in $(seq 1 "$n"); do
    for try in 1 2 3 4 5; do
      write_args "$dir" "$i"
      echo 1 >"$dir/n$i.starts"
      : >"$dir/n$i.log"
      if start_node "$dir" "$i"; then
        break
      fi
      alive "$(pid_of "$dir" "$i")" && kill -9 "$(pid_of "$dir" "$i")" 2>/dev/null
      rm -rf "${dir:?}/n$i"
      [ "$try" -eq 5 ] && {
        cat "$dir/n$i.log" >&2
        die "node $i does not start"
      }
    done
    uri_of "$dir" >"$dir/uri"
  done
  wait_healthy "$dir" "$n" "$UP_DEADLINE" || exit 1
  if [ "$PROXIES" -gt 0 ]; then
    start_proxies "$dir" "$PROXIES" || exit 1
    cat "$dir/proxy-uri"
  fi
  cat "$dir/uri"
}

# start_proxy DIR I: runs dlogd with pI.args, waits (deadline) until it
# prints its listening line (the pI.starts-th); 0, or 1 if it did not.
start_proxy() {
  local dir=$1 i=$2 args=() line pid deadline
  while IFS= read -r line; do args+=("$line"); done <"$dir/p$i.args"
  "$DLOGD_BIN" "${args[@]}" >>"$dir/p$i.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/p$i.pid"
  deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(grep -c '^dlogd: listening on' "$dir/p$i.log")" -ge "$(cat "$dir/p$i.starts")" ] &&
      return 0
    alive "$pid" || return 1
    sleep 0.05 # polls the log for the listening line, up to the deadline
  done
  return 1
}

# start_proxies DIR K: K proxies on free ports (free_port), each waited for
# (deadline) until it prints its listening line; DIR/proxy-uri. A restart
# takes the same port again (it is in pI.args).
start_proxies() {
  local dir=$1 k=$2 i out="" addr extra=()
  read -r -a extra <<<"${CLUSTER_PROXY_ARGS:-}"
  for i in $(seq 1 "$k"); do
    : >"$dir/p$i.log"
    echo 1 >"$dir/p$i.starts"
    printf '%s\n' --role proxy --cluster "$(cat "$dir/uri")" --listen "127.0.0.1:$(free_port)" \
      ${extra[@]+"${extra[@]}"} >"$dir/p$i.args"
    addr=""
    start_proxy "$dir" "$i" &&
      addr=$(sed -n 's/^dlogd: listening on \([^ ]*\) .*/\1/p' "$dir/p$i.log")
    [ -n "$addr" ] || {
      cat "$dir/p$i.log" >&2
      echo "cluster.sh: proxy $i does not start" >&2
      return 1
    }
    out="$out${out:+,}$addr"
  done
  echo "dlog://$out" >"$dir/proxy-uri"
}

# cmd_running DIR: the processes of DIR still running, one name a line.
cmd_running() {
  local f rc=1
  for f in "$1"/n*.pid "$1"/p*.pid; do
    [ -e "$f" ] || continue
    alive "$(cat "$f")" && {
      basename "$f" .pid
      rc=0
    }
  done
  return $rc
}

cmd_kill() {
  local dir=$1 i=$2 pid deadline
  pid=${3:-$(pid_of "$dir" "$i")}
  alive "$pid" || return 0
  kill -9 "$pid"
  deadline=$((SECONDS + 10))
  while alive "$pid" && [ $SECONDS -lt $deadline ]; do
    sleep 0.02 # waits for the process to be gone, up to the deadline
  done
  ! alive "$pid"
}

cmd_restart() {
  local dir=$1 i=$2
  [ -e "$dir/n$i.args" ] || die "no node $i in $dir"
  alive "$(pid_of "$dir" "$i")" && die "node $i is running"
  echo $(($(cat "$dir/n$i.starts") + 1)) >"$dir/n$i.starts"
  start_node "$dir" "$i" || {
    tail -5 "$dir/n$i.log" >&2
    die "node $i does not restart"
  }
}

cmd_restart_proxy() {
  local dir=$1 i=$2
  [ -e "$dir/p$i.args" ] || die "no proxy $i in $dir"
  alive "$(cat "$dir/p$i.pid")" && die "proxy $i is running"
  echo $(($(cat "$dir/p$i.starts") + 1)) >"$dir/p$i.starts"
  start_proxy "$dir" "$i" || {
    tail -5 "$dir/p$i.log" >&2
    die "proxy $i does not restart"
  }
}

cmd_down() {
  local dir=$1 i=1 pid deadline rc=0
  while [ -e "$dir/p$i.pid" ]; do
    pid=$(cat "$dir/p$i.pid")
    if alive "$pid"; then
      kill -TERM "$pid"
      deadline=$((SECONDS + 15))
      while alive "$pid" && [ $SECONDS -lt $deadline ]; do
        sleep 0.05 # waits for a clean exit, up to the deadline
      done
      alive "$pid" && {
        echo "cluster.sh: proxy $i did not stop on SIGTERM: killed" >&2
        kill -9 "$pid"
        rc=1
      }
    fi
    i=$((i + 1))
  done
  i=1
  while [ -e "$dir/n$i.args" ]; do
    pid=$(pid_of "$dir" "$i")
    alive "$pid" && kill -TERM "$pid"
    i=$((i + 1))
  done
  i=1
  while [ -e "$dir/n$i.args" ]; do
    pid=$(pid_of "$dir" "$i")
    deadline=$((SECONDS + 15))
    while alive "$pid" && [ $SECONDS -lt $deadline ]; do
      sleep 0.05 # waits for a clean exit, up to the deadline
    done
    if alive "$pid"; then
      echo "cluster.sh: node $i did not stop on SIGTERM: killed" >&2
      kill -9 "$pid"
      rc=1
    fi
    i=$((i + 1))
  done
  return $rc
}

case "${1:-}" in
up) [ $# -eq 3 ] || die "usage: up N DIR"; cmd_up "$2" "$3" ;;
kill) [ $# -eq 3 ] || die "usage: kill DIR I"; cmd_kill "$2" "$3" ;;
restart) [ $# -eq 3 ] || die "usage: restart DIR I"; cmd_restart "$2" "$3" ;;
status) [ $# -eq 2 ] || die "usage: status DIR"; "$DLOGCTL_BIN" -u "$(cat "$2/uri")" cluster status ;;
uri) [ $# -eq 2 ] || die "usage: uri DIR"; cat "$2/uri" ;;
proxy-uri) [ $# -eq 2 ] || die "usage: proxy-uri DIR"; cat "$2/proxy-uri" ;;
down) [ $# -eq 2 ] || die "usage: down DIR"; cmd_down "$2" ;;
kill-proxy)
  [ $# -eq 3 ] || die "usage: kill-proxy DIR I"
  [ -e "$2/p$3.pid" ] || die "no proxy $3 in $2"
  cmd_kill "$2" "$3" "$(cat "$2/p$3.pid")"
  ;;
restart-proxy) [ $# -eq 3 ] || die "usage: restart-proxy DIR I"; cmd_restart_proxy "$2" "$3" ;;
running) [ $# -eq 2 ] || die "usage: running DIR"; cmd_running "$2" ;;
alive) [ $# -eq 2 ] || die "usage: alive PID"; alive "$2" ;;
*)
  sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
  [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]
  ;;
esac
