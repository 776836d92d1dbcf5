#!/bin/sh
# reporting's benchmark (docs/performance.md): a private redis-server, the reference
# (redis-benchmark XADD, the bus's append, measured in the same run), the in-process ingest and
# report times over a year of history, then gl-reporting fed through the bus (events/s applied,
# wallboard freshness).
#   bench/reporting/run.sh [BUILD_DIR] [DAYS]      (default build/reporting, 365 days)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build/reporting}
DAYS=${2:-365}
BIN=$BUILD/services/reporting
WORK=$(mktemp -d /tmp/gl-bench-reporting.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROUTER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PUB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    [ -n "${REP:-}" ] && kill "$REP" 2>/dev/null || true
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --save '' --appendonly yes \
    --appendfsync everysec --daemonize yes --logfile "$WORK/redis.log" >/dev/null
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reference: redis-benchmark XADD (one client, no pipelining, then 16 pipelined):"
redis-benchmark -p "$PORT" -q -n 100000 -c 1 XADD gl:bench:ref '*' e x 2>/dev/null | tr '\r' '\n' | tail -1
redis-benchmark -p "$PORT" -q -n 200000 -c 1 -P 16 XADD gl:bench:ref '*' e x 2>/dev/null | tr '\r' '\n' | tail -1
redis-cli -p "$PORT" del gl:bench:ref >/dev/null
"$BIN/bench_reporting" ingest "$DAYS"
E2E_DAYS=${E2E_DAYS:-20}
GL_REDIS_PORT=$PORT GL_LOG_LEVEL=warn "$BIN/bench_reporting" publish "$E2E_DAYS"
N=$(redis-cli -p "$PORT" hget 'gl:src:{intake-1}' seq)
GL_REDIS_PORT=$PORT GL_BUS_BIND_ROUTER=tcp://127.0.0.1:$ROUTER_PORT GL_BUS_BIND_PUB=tcp://127.0.0.1:* \
    GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:$PUB_PORT GL_BUS_TOKENS=bench GL_HEALTH_PORT=0 \
    GL_LOG_LEVEL=warn "$BIN/gl-reporting" 2>"$WORK/reporting.log" &
REP=$!
GL_BUS_TOKENS=bench "$BIN/bench_reporting" catchup tcp://127.0.0.1:$ROUTER_PORT "$N" "$REP"
GL_REDIS_PORT=$PORT GL_BUS_TOKENS=bench GL_LOG_LEVEL=warn "$BIN/bench_reporting" fresh \
    tcp://127.0.0.1:$ROUTER_PORT tcp://127.0.0.1:$PUB_PORT
