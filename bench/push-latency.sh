#!/usr/bin/env bash
# Push latency: a fake Kraken WS feed on 127.0.0.1 sends a trade every PUSH_MS (default 300);
# the service (PRICE_SOURCES=kraken, its REST endpoint pointed at a closed port) publishes each
# trade at once; SSE subscribers measure arrival − sourceTimestamp (the fake's send time).
#   bash bench/push-latency.sh [SSE subscribers, default 1000] [seconds, default 30]
# Run `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS="${1:-1000}"
DURATION="${2:-30}"
PUSH_MS="${PUSH_MS:-300}"
log="$(mktemp)"
PAIRS=BTC-USD PUSH_MS="$PUSH_MS" node bench/dist/bench/fake-push-server.js > "$log" &
feed=$!
trap 'kill $feed 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 50); do [ -s "$log" ] && break; sleep 0.1; done
url="$(head -1 "$log")"
node bench/dist/bench/cli.js --sse "$SUBS" --socketio 0 --ws 0 --pair-list BTC-USD --duration "$DURATION" \
  --time-field sourceTimestamp --label "push-${PUSH_MS}ms" \
  --env PRICE_SOURCES=kraken --env "KRAKEN_WS_URL=$url" --env KRAKEN_URL=http://127.0.0.1:1 --env POLL_INTERVAL_MS=1000 --env PUSH_STALE_MS=5000
