#!/usr/bin/env bash
# Bytes on the wire per delivered tick with the ticker fields (bid, ask, 24 h figures): a fake
# Kraken WS feed on 127.0.0.1 pushes a ticker per pair every PUSH_MS (default 1000), the service
# (PRICE_SOURCES=kraken, its REST endpoint pointed at a closed port) publishes each, and N
# subscribers per transport count the socket bytes they receive (the `bytes per delivered tick` line).
# Two runs back to back on the same feed: full ticks, then per-pair deltas (`--delta`, docs/api.md
# "Deltas": the subscribers ask for them and apply them); MODES="full" or MODES="delta" runs one.
# (The simulated source gives the price alone: `npm run bench` without this measures smaller ticks.)
#   bash bench/bytes-per-tick.sh [subscribers per transport, default 200] [seconds, default 15] [more bench options]
# Run `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS="${1:-200}"
DURATION="${2:-15}"
shift $(($# < 2 ? $# : 2))
PUSH_MS="${PUSH_MS:-1000}"
log="$(mktemp)"
PAIRS=BTC-USD,ETH-USD PUSH_MS="$PUSH_MS" node bench/dist/bench/fake-push-server.js > "$log" &
feed=$!
trap 'kill $feed 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 50); do [ -s "$log" ] && break; sleep 0.1; done
url="$(head -1 "$log")"
for mode in ${MODES:-full delta}; do
  flag=()
  [ "$mode" = delta ] && flag=(--delta)
  echo "== $mode ticks =="
  node bench/dist/bench/cli.js --sse "$SUBS" --socketio "$SUBS" --ws "$SUBS" --pair-list BTC-USD,ETH-USD --duration "$DURATION" \
    --time-field sourceTimestamp --label "bytes-ticker-${PUSH_MS}ms-$mode" "${flag[@]}" \
    --env PRICE_SOURCES=kraken --env "KRAKEN_WS_URL=$url" --env KRAKEN_URL=http://127.0.0.1:1 --env POLL_INTERVAL_MS=1000 --env PUSH_STALE_MS=5000 "$@"
done
