#!/usr/bin/env bash
# deploy/check.sh: validate the deployment files on a machine that may have
# no container registry. It checks what can be checked here:
#   1. the binary built exactly as the Dockerfile builds it is static, and
#      serves as the image's non-root user (65532) from an empty data dir;
#   2. the image's final stage builds (podman or docker), from that binary,
#      and runs, where the container runtime allows it;
#   3. deploy/compose.yaml is valid Compose (docker-compose config);
#   4. deploy/nginx.conf is valid nginx (nginx -t, upstreams on loopback).
# A tool that is missing is reported as not checked, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
chmod 755 "$work" # uid 65532 must reach the data dir below it
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
unchecked=()

echo "==> binary, as the Dockerfile builds it"
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
# The same flags as the Dockerfile's build stage; a change there must be
# made here too (the grep keeps them together).
grep -q 'CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}"' Dockerfile \
  || { echo "FAIL: the Dockerfile's build line changed; update deploy/check.sh" >&2; exit 1; }
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "$work/out/jobchat" ./cmd/jobchat
if readelf -l "$work/out/jobchat" | grep -q INTERP; then
  echo "FAIL: the binary is dynamically linked" >&2; exit 1
fi
ls -l "$work/out/jobchat" | awk '{printf "static binary, %.1f MiB\n", $5/1048576}'
mkdir -p "$work/out/data" && chown 65532:65532 "$work/out/data"
port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 18080)"
JOBCHAT_ADDR="127.0.0.1:$port" JOBCHAT_DATA_DIR="$work/out/data" JOBCHAT_LOG_FORMAT=json \
  setpriv --reuid 65532 --regid 65532 --clear-groups "$work/out/jobchat" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/serve.log" >&2; echo "FAIL: not ready as uid 65532" >&2; exit 1; }
kill -TERM "$pid"; wait "$pid" || true; pid=""
grep -q '"stopped"\|stopped' "$work/serve.log" || { cat "$work/serve.log" >&2; echo "FAIL: no clean stop on SIGTERM" >&2; exit 1; }
echo "serves as uid 65532 from an empty data dir; stops cleanly on SIGTERM"

echo "==> image, final stage"
engine=""
for e in podman docker; do
  if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine="$e"; break; fi
done
if [ -z "$engine" ]; then
  unchecked+=("image (no podman or docker engine)")
else
  # The final stage as written, its inputs taken from the binary above
  # instead of the build stage, which needs a golang image from a registry.
  mkdir -p "$work/ctx/out" "$work/ctx/etc/ssl/certs"
  cp -a "$work/out/jobchat" "$work/out/data" "$work/ctx/out/"
  cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/etc/ssl/certs/"
  awk '/^FROM scratch/{f=1} f' Dockerfile | sed 's/--from=build //; s| /out/| out/|; s| /etc/ssl| etc/ssl|' >"$work/ctx/Containerfile"
  "$engine" build -q -t jobchat-check:latest -f "$work/ctx/Containerfile" "$work/ctx" >/dev/null
  "$engine" image inspect jobchat-check:latest --format 'image {{.Size}} user {{.Config.User}}, entrypoint {{.Config.Entrypoint}} {{.Config.Cmd}}' \
    | awk '{ $2 = sprintf("%.1f MiB", $2/1048576); print }'
  if out="$("$engine" run --rm jobchat-check:latest version 2>&1)"; then
    echo "runs: $out"
  else
    echo "built, but this machine's container runtime cannot run it: $out"
    unchecked+=("running the image ($engine: $out)")
  fi
fi

echo "==> deploy/compose.yaml"
if command -v docker-compose >/dev/null; then
  JOBCHAT_JWT_SECRET=check docker-compose -f deploy/compose.yaml config -q && echo "valid Compose"
elif docker compose version >/dev/null 2>&1; then
  JOBCHAT_JWT_SECRET=check docker compose -f deploy/compose.yaml config -q && echo "valid Compose"
else
  unchecked+=("compose.yaml (no docker-compose)")
fi

echo "==> deploy/nginx.conf"
if command -v nginx >/dev/null; then
  mkdir -p "$work/nginx/conf.d"
  sed 's/jobchat[12]:8080/127.0.0.1:8080/' deploy/nginx.conf >"$work/nginx/conf.d/default.conf"
  printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp { include %s/nginx/conf.d/*.conf; }\n' "$work" "$work" >"$work/nginx/nginx.conf"
  nginx -t -q -c "$work/nginx/nginx.conf" && echo "valid nginx"
else
  unchecked+=("nginx.conf (no nginx)")
fi

echo
if [ "${#unchecked[@]}" -gt 0 ]; then
  printf 'not checked here: %s\n' "${unchecked[@]}"
fi
echo "deploy checks passed"
