#!/usr/bin/env bash
# Starts a real S3-compatible server on loopback for the S3 store's tests:
# SeaweedFS ("weed mini": master, volume, filer and S3 gateway in one
# process), built once from its Go module into a cache outside the repo.
#
#   eval "$(.ci/s3.sh)"     # build if needed, start (or reuse), print the test variables
#   .ci/s3.sh stop          # stop the server this script started
#
# Only the export lines go to stdout; progress goes to stderr. It waits a
# bounded time for the server to store and return an object, and fails
# loudly if it does not. Settings (environment): JOBCHAT_CI_CACHE (where
# the binary is kept; /var/cache/jobchat-ci, else ~/.cache/jobchat-ci),
# JOBCHAT_S3_DIR (its data, pid and log; /tmp/jobchat-s3), JOBCHAT_S3_PORT
# (8333; the other components take 9333, 9340 and 8888 and those plus 10000
# for gRPC, or free ports nearby when those are taken).
set -euo pipefail

WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
ACCESS_KEY=jobchat-test
SECRET_KEY=jobchat-test-secret-0123456789
PORT="${JOBCHAT_S3_PORT:-8333}"
DIR="${JOBCHAT_S3_DIR:-/tmp/jobchat-s3}"
ENDPOINT="http://127.0.0.1:$PORT"
WAIT_SECONDS=90

log() { printf 's3.sh: %s\n' "$*" >&2; }
die() { printf 's3.sh: FAIL: %s\n' "$*" >&2; exit 1; }

cache_dir() {
  local c="${JOBCHAT_CI_CACHE:-/var/cache/jobchat-ci}"
  if ! mkdir -p "$c/bin" 2>/dev/null || [ ! -w "$c/bin" ]; then
    c="${XDG_CACHE_HOME:-$HOME/.cache}/jobchat-ci"
    mkdir -p "$c/bin"
  fi
  printf '%s' "$c"
}

running() { [ -f "$DIR/weed.pid" ] && kill -0 "$(cat "$DIR/weed.pid")" 2>/dev/null; }

stop() {
  if running; then
    local pid
    pid="$(cat "$DIR/weed.pid")"
    log "stopping SeaweedFS (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/weed.pid"
}

# build installs the pinned weed binary unless the cache has it. The module
# carries replace directives, so `go install module@version` refuses it:
# it is built inside its own (read-only) module directory instead.
build() {
  local bin="$1"
  [ -x "$bin" ] && return 0
  command -v go >/dev/null || die "go is not on PATH"
  log "building SeaweedFS $WEED_VERSION (the first time takes minutes)"
  local src start
  start=$(date +%s)
  src="$(GOFLAGS= GOWORK=off go mod download -json "$WEED_MODULE@$WEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -d "$src" ] || die "go mod download gave no source directory for $WEED_MODULE@$WEED_VERSION"
  (cd "$src" && GOFLAGS=-mod=readonly GOWORK=off go build -o "$bin.tmp.$$" ./weed) ||
    { rm -f "$bin.tmp.$$"; die "building SeaweedFS failed"; }
  mv "$bin.tmp.$$" "$bin"
  log "built $bin in $(( $(date +%s) - start ))s"
}

# probe stores an object through the S3 API with a signed request and
# reads it back: the server is up only when the whole path works.
probe() {
  # S3 wants x-amz-content-sha256, which curl does not add itself.
  local sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -fsS --max-time 5)
  curl "${sig[@]}" -X PUT "$ENDPOINT/ci-probe" -o /dev/null 2>/dev/null || true
  curl "${sig[@]}" -X PUT --data-binary "ok" -H 'Content-Type: text/plain' "$ENDPOINT/ci-probe/probe" -o /dev/null 2>/dev/null &&
    [ "$(curl "${sig[@]}" "$ENDPOINT/ci-probe/probe" 2>/dev/null)" = "ok" ]
}

exports() {
  printf 'export JOBCHAT_TEST_S3_ENDPOINT=%q\n' "$ENDPOINT"
  printf 'export JOBCHAT_TEST_S3_ACCESS_KEY=%q\n' "$ACCESS_KEY"
  printf 'export JOBCHAT_TEST_S3_SECRET_KEY=%q\n' "$SECRET_KEY"
}

start() {
  command -v curl >/dev/null || die "curl is needed to check the server"
  if running && probe; then
    log "SeaweedFS already running at $ENDPOINT (pid $(cat "$DIR/weed.pid"))"
    exports
    return 0
  fi
  stop
  local bin
  bin="$(cache_dir)/bin/weed-$WEED_VERSION"
  build "$bin"
  rm -rf "$DIR/data" "$DIR/weed.log"
  mkdir -p "$DIR/data"
  log "starting SeaweedFS S3 at $ENDPOINT (data and log in $DIR)"
  # Admin credentials through the environment (no IAM file needed); the
  # extra gateways and the admin UI are off; all of it on loopback only.
  AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
    setsid "$bin" mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$PORT" -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -admin.ui=false \
    -master.volumeSizeLimitMB=64 \
    </dev/null >"$DIR/weed.log" 2>&1 &
  echo $! >"$DIR/weed.pid"
  local deadline=$(( $(date +%s) + WAIT_SECONDS ))
  until probe; do
    if ! running; then
      tail -n 30 "$DIR/weed.log" >&2 || true
      die "SeaweedFS exited while starting (log: $DIR/weed.log)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 30 "$DIR/weed.log" >&2 || true
      stop
      die "SeaweedFS did not store and return an object within ${WAIT_SECONDS}s (log above)"
    fi
    sleep 1
  done
  log "SeaweedFS is up (pid $(cat "$DIR/weed.pid"))"
  exports
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  build) build "$(cache_dir)/bin/weed-$WEED_VERSION" ;;
  *) die "usage: $0 [start|stop|build]" ;;
esac
