#!/usr/bin/env bash
# REST and probes with and without streams open: starts dist/main.js (npm run build first) as
# `npm run bench` would for --sse N --pairs 2 --tick-ms 1000, measures with wrk alone, then opens
# N SSE subscribers with the harness (--url/--pid) and measures again while they stream.
#   bench/rest-under-sse.sh [N=15000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-15000}
PORT=${PORT:-18934}
URL="http://127.0.0.1:$PORT"
out=$(mktemp -d /tmp/rest-under-sse.XXXX)
env PAIRS=BTC-USD,ETH-USD PRICE_SOURCES=simulated POLL_INTERVAL_MS=1000 HISTORY_SIZE=100000 \
  MAX_STREAM_CONNECTIONS=$((N + 100)) MAX_STREAM_CONNECTIONS_PER_IP=$((N + 100)) RATE_LIMIT_PER_MINUTE=1000000 LOG_LEVEL=warn \
  HOST=127.0.0.1 PORT=$PORT node dist/main.js >"$out/service.log" 2>&1 &
pid=$!
bench_pid=
trap 'kill -INT $pid 2>/dev/null || true; [ -n "$bench_pid" ] && kill $bench_pid 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "$URL/api/prices/BTC-USD" >/dev/null && break; sleep 0.1; done
measure() { # label
  echo "---- $1 (machine: $(cut -d' ' -f1-3 /proc/loadavg))"
  for p in /health/ready /health/live; do
    echo "== GET $p, one connection (a probe as fast as it is answered)"
    wrk -t1 -c1 -d8s --latency "$URL$p" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Latency '
  done
  for p in /api/prices/BTC-USD /api/price/current "/api/prices?pairs=BTC-USD" "/api/v1/ltp?pair=BTC/USD" "/api/prices/BTC-USD/candles?interval=1m&limit=1000"; do
    wrk -t2 -c100 -d2s "$URL$p" >/dev/null
    echo "== GET $p, wrk -t2 -c100 -d8s"
    wrk -t2 -c100 -d8s --latency "$URL$p" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors|Latency '
  done
}
measure "no streams"
node bench/dist/bench/cli.js --url "$URL" --pid $pid --sse "$N" --socketio 0 --ws 0 --pairs 2 --tick-ms 1000 --duration 75 --label rest-under-sse >"$out/bench.log" 2>&1 &
bench_pid=$!
until grep -q 'ramp done' "$out/bench.log"; do
  kill -0 $bench_pid 2>/dev/null || { cat "$out/bench.log"; exit 1; }
  sleep 1
done
grep 'ramp done' "$out/bench.log"
sleep 5
measure "$N SSE subscribers streaming 2 pairs at 1 tick/s"
wait $bench_pid || true
bench_pid=
grep -E 'SSE|delivered|latency|busy|cpu|CPU' "$out/bench.log" | head -20
echo "logs in $out"
