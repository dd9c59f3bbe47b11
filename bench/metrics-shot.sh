#!/usr/bin/env bash
# bench/metrics-shot.sh: the README's picture of jobchat's metrics under
# load. It runs a real Prometheus (Debian's `prometheus` package) scraping
# a jobchat spawned by jobchat-bench every second, drives a fan-out
# benchmark through it, then photographs Prometheus's own graph page with
# headless Chromium (e2e/tools/prom-shot.mjs, puppeteer-core from e2e/).
#   bench/metrics-shot.sh [docs/metrics.png] [jobchat-bench flags...]
# Everything listens on loopback; the load is bounded by the bench's
# -duration.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/metrics.png}"
shift || true
command -v prometheus >/dev/null || { echo "prometheus is not installed (apt-get install prometheus)" >&2; exit 1; }
[ -d e2e/node_modules/puppeteer-core ] || npm --prefix e2e ci
work="$(mktemp -d)"
prom_pid=""
cleanup() { [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

metrics_port=19101
prom_port=19090
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: jobchat
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null || { cat "$work/prometheus.log" >&2; exit 1; }

go build -o "$work/jobchat-bench" ./cmd/jobchat-bench
go build -o "$work/jobchat" ./cmd/jobchat
start=$(date +%s)
"$work/jobchat-bench" -spawn -server-bin "$work/jobchat" -server-env "JOBCHAT_METRICS_ADDR=127.0.0.1:$metrics_port" \
  -scenario custom -conversations 50 -subscribers 2000 -rate 200 -duration 60s -senders 16 "$@" | tee "$work/bench.txt" | grep -v '^\['
end=$(date +%s)
# Let the last scrape land before the picture.
sleep 2
node e2e/tools/prom-shot.mjs "http://127.0.0.1:$prom_port" "$start" "$((end + 2))" "$out"
echo "wrote $out"
