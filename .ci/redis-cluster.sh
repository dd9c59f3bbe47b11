#!/usr/bin/env bash
# Starts a real 3-node Redis Cluster on loopback for the tests of fan-out
# over sharded pub/sub (JOBCHAT_REDIS_CLUSTER): three masters, no
# replicas, made with `redis-server --cluster-enabled yes` and
# `redis-cli --cluster create`.
#
#   eval "$(bash .ci/redis-cluster.sh)"   # start (or reuse) it, print the test variable
#   bash .ci/redis-cluster.sh stop        # stop the nodes this script started
#
# Only the export line goes to stdout; progress goes to stderr. It waits a
# bounded time for every node to report cluster_state:ok and fails loudly
# if one does not. Settings (environment): JOBCHAT_REDIS_CLUSTER_PORTS
# ("7101 7102 7103"; each node's cluster bus takes its port plus 10000),
# JOBCHAT_REDIS_CLUSTER_DIR (nodes.conf files, pids and logs;
# /tmp/jobchat-redis-cluster).
set -euo pipefail

read -r -a PORTS <<<"${JOBCHAT_REDIS_CLUSTER_PORTS:-7101 7102 7103}"
DIR="${JOBCHAT_REDIS_CLUSTER_DIR:-/tmp/jobchat-redis-cluster}"
WAIT_SECONDS=30

log() { printf 'redis-cluster.sh: %s\n' "$*" >&2; }
die() { printf 'redis-cluster.sh: FAIL: %s\n' "$*" >&2; exit 1; }

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
pid_of() { cat "$DIR/redis-$1.pid" 2>/dev/null; }
running() { local pid; pid="$(pid_of "$1")" && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
answers() { cli "$1" ping 2>/dev/null | grep -q PONG; }
cluster_ok() { cli "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
all_ok() {
  local p
  for p in "${PORTS[@]}"; do
    running "$p" && cluster_ok "$p" || return 1
  done
}

exports() {
  local addrs="" p
  for p in "${PORTS[@]}"; do addrs="${addrs:+$addrs,}127.0.0.1:$p"; done
  printf 'export JOBCHAT_TEST_REDIS_CLUSTER_ADDRS=%s\n' "$addrs"
}

stop() {
  local p pid
  for p in "${PORTS[@]}"; do
    if running "$p"; then
      pid="$(pid_of "$p")"
      log "stopping the node on port $p (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/redis-$p.pid"
  done
}

start() {
  command -v redis-server >/dev/null || die "redis-server is not installed"
  command -v redis-cli >/dev/null || die "redis-cli is not installed"
  if all_ok; then
    log "the cluster is already running on ports ${PORTS[*]}"
    exports
    return 0
  fi
  stop
  local p
  for p in "${PORTS[@]}"; do
    answers "$p" && die "port $p answers PING but is not a node this script started; set JOBCHAT_REDIS_CLUSTER_PORTS"
  done
  # A fresh cluster each time: a nodes.conf of an earlier one would make
  # `--cluster create` refuse the nodes.
  rm -rf "$DIR"
  mkdir -p "$DIR"
  for p in "${PORTS[@]}"; do
    redis-server --port "$p" --bind 127.0.0.1 --dir "$DIR" \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --cluster-node-timeout 2000 --cluster-require-full-coverage no \
      --save "" --appendonly no \
      --daemonize yes --pidfile "$DIR/redis-$p.pid" --logfile "$DIR/redis-$p.log" ||
      die "redis-server did not start on port $p"
  done
  local deadline=$(( $(date +%s) + WAIT_SECONDS ))
  for p in "${PORTS[@]}"; do
    until answers "$p"; do
      [ "$(date +%s)" -ge "$deadline" ] && { tail -n 20 "$DIR/redis-$p.log" >&2 || true; stop; die "the node on port $p does not answer PING"; }
      sleep 0.2
    done
  done
  local nodes=()
  for p in "${PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
  log "creating the cluster on ${nodes[*]}"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >&2 ||
    { stop; die "redis-cli --cluster create failed"; }
  until all_ok; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for p in "${PORTS[@]}"; do cli "$p" cluster info 2>&1 | head -n 3 >&2 || true; done
      stop
      die "the nodes did not all report cluster_state:ok within ${WAIT_SECONDS}s"
    fi
    sleep 0.2
  done
  log "the cluster is up on ports ${PORTS[*]} (logs in $DIR)"
  exports
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 [start|stop]" ;;
esac
