#!/usr/bin/env bash
# REST under wrk: starts dist/main.js (npm run build first) with the measurement settings, warms
# up, runs `wrk -t2 -c100 -d10s --latency` on each path given, and stops the service.
#   bench/rest-wrk.sh [/api/prices/BTC-USD ...]      (default: the four latest-price routes)
#   PROFILE_DIR=dir bench/rest-wrk.sh /api/prices/BTC-USD   also writes a --cpu-prof profile
#   PORT, WRK_ARGS ("-t2 -c100 -d10s"), WARMUP_S (3) and EXTRA_ENV ("K=V ...") override.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18931}
WRK_ARGS=${WRK_ARGS:--t2 -c100 -d10s}
WARMUP_S=${WARMUP_S:-3}
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(/api/prices/BTC-USD "/api/prices?pairs=BTC-USD" /api/price/current "/api/v1/ltp?pair=BTC/USD")
node_args=()
[ -n "${PROFILE_DIR:-}" ] && mkdir -p "$PROFILE_DIR" && node_args=(--cpu-prof "--cpu-prof-dir=$PROFILE_DIR")
# shellcheck disable=SC2086
env LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=1000000 PRICE_SOURCES=simulated PAIRS=BTC-USD POLL_INTERVAL_MS=1000 \
  HOST=127.0.0.1 PORT="$PORT" ${EXTRA_ENV:-} node "${node_args[@]}" dist/main.js >/tmp/rest-wrk-service.log 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT${paths[0]}" >/dev/null && break; sleep 0.1; done
echo "service pid $pid; machine before load: $(uptime)"
for p in "${paths[@]}"; do
  wrk -t2 -c100 -d"${WARMUP_S}s" "http://127.0.0.1:$PORT$p" >/dev/null
  echo "== GET $p"
  # shellcheck disable=SC2086
  wrk $WRK_ARGS --latency "http://127.0.0.1:$PORT$p" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors|Latency '
done
