#!/usr/bin/env bash
#  run-intake.sh — intake's HTTP API benchmark: the HTTP library beside nginx (hello world), the
#  framework's own cost, authenticated contact writes and queue operations under appendfsync
#  everysec and always, and p99 at a fixed 1,000 requests/s.
#
#      bench/intake/run-intake.sh [--quick] [--profile]
#
#  Starts, each on a free loopback port: a private redis-server (AOF on, data in a temporary
#  folder on disk), nginx (1 worker, a fixed JSON reply), the two hello-world candidates
#  (intake_evhttp_hello: libevent's evhttp, one loop; intake_mhd_hello: libmicrohttpd, one
#  internal epoll thread) and gl-intake built from this tree. It signs in an admin, makes 50
#  agents and an API client, then measures with wrk (2 threads, 50 connections) and with
#  intake_fixedrate (bench/intake/fixedrate.c: open loop at a fixed rate, or closed loop).
#  wrk, intake_fixedrate and the servers share the machine's cores: every row says how much CPU
#  the server, redis-server, the load generator and everything else took.
#
#  Every answer's status is counted (bench/intake/intake.lua, fixedrate.c); after each contact
#  row the script checks that Redis gained exactly as many contacts as there were 201 answers.
#  --quick: 3 s rows instead of 10 (checks that everything runs; figures not worth quoting).
#  --profile: also record gl-intake with perf (call graphs) during 5 s of contact writes and
#  print the top functions. Takes about 3 minutes (a little more with --profile).
#
#  Environment: GL_BENCH_PERF_CALLGRAPH (perf record's call-graph option for --profile, default
#  -g; "--call-graph dwarf" sees through libraries built without frame pointers),
#  GL_BENCH_BUILD (default build/bench; RelWithDebInfo), GL_BENCH_OUT (the folder
#  for raw output; default a new /tmp/gl-intake-bench-*), GREENLINE_NO_INSTALL=1 to refuse to
#  apt-get missing packages, GL_INTAKE_SESSION_CACHE_MS passed to gl-intake when set (0: measure
#  without the session cache). See bench/intake/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/intake
BUILD=${GL_BENCH_BUILD:-$ROOT/build/bench}
BIN=$BUILD/bench
QUICK=0 PROFILE=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        --profile) PROFILE=1 ;;
        *) echo "usage: bench/intake/run-intake.sh [--quick] [--profile]" >&2; exit 2 ;;
    esac
done
DUR=10
((QUICK)) && DUR=3
THREADS=2 CONNS=50              #  wrk
AGENTS=50                       #  one per connection in the call cycle
FIXED_RATE=1000 FIXED_CONNS=16  #  the fixed-rate rows
LOW_RATE=200                    #  and one under appendfsync always at a rate it can take
TARGET_RPS=10000                #  the issue: authenticated contact writes/s
TARGET_P99_MS=10                #  and p99 at 1,000 requests/s

say () { echo "run-intake: $*" >&2; }
die () { say "$*"; exit 1; }

#  ---- dependencies ----------------------------------------------------------------------------

#  Install the Debian packages named that are not installed yet, as greenline's launcher does.
s_install () {
    command -v dpkg-query >/dev/null || { say "no dpkg-query: make sure these are installed: $*"; return 0; }
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    local cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    local sudo=()
    if [[ -n ${GREENLINE_NO_INSTALL:-} ]]; then
        die "missing Debian packages: ${missing[*]}; install them with: $cmd"
    elif ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing Debian packages: ${missing[*]}; as root, run: $cmd"
        sudo=(sudo)
    fi
    say "installing missing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" >&2
}
PKGS=(redis-server redis-tools wrk nginx-light libmicrohttpd-dev curl jq cmake gcc pkg-config)
((PROFILE)) && PKGS+=(linux-perf)
s_install "${PKGS[@]}"

say "building gl-intake and the benchmark programs in $BUILD ..."
[[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target gl-intake intake_fixedrate intake_evhttp_hello intake_mhd_hello \
    -j"$(nproc)" >/dev/null || die "the build failed (cmake --build $BUILD)"
INTAKE=$BUILD/services/intake/gl-intake
for b in "$INTAKE" "$BIN/intake_fixedrate" "$BIN/intake_evhttp_hello" "$BIN/intake_mhd_hello"; do
    [[ -x $b ]] || die "$b was not built"
done

#  ---- processes ------------------------------------------------------------------------------

OUT=${GL_BENCH_OUT:-$(mktemp -d /tmp/gl-intake-bench-XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"
TMP=$(mktemp -d /tmp/gl-intake-bench-run-XXXXXX)     #  on disk, not tmpfs: fsync really waits
PIDS=()
cleanup () {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

#  Ports below the kernel's ephemeral range (other processes' outgoing connections take those
#  at any moment, and one did take a port between our check and intake's bind), each used once.
#  free_port sets PORT (not $(...): a subshell would forget USED_PORTS).
USED_PORTS=" "
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_HIGH=$((EPHEMERAL_LOW - 1))
((PORT_HIGH > 12000)) || PORT_HIGH=59999
free_port () {
    local p
    for p in $(shuf -i 10000-"$PORT_HIGH" -n 100); do
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            USED_PORTS+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port"
}
wait_http () {    #  url [seconds]
    local i
    for i in $(seq $((${2:-30} * 10))); do
        curl -s -o /dev/null -m 1 "$1" && return 0
        sleep 0.1
    done
    die "nothing answers at $1"
}

free_port; REDIS_PORT=$PORT
#  Automatic AOF rewrites and RDB saves off, so no fork lands inside a row.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP" --appendonly yes \
    --appendfsync everysec --auto-aof-rewrite-percentage 0 --save "" --daemonize no \
    --latency-monitor-threshold 5 --logfile "$TMP/redis.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
rcli () { redis-cli -p "$REDIS_PORT" "$@"; }
for _ in $(seq 100); do [[ "$(rcli PING 2>/dev/null)" == PONG ]] && break; sleep 0.1; done
[[ "$(rcli PING 2>/dev/null)" == PONG ]] \
    || die "redis-server did not start on port $REDIS_PORT: $(tail -3 "$TMP/redis.log" 2>/dev/null)"

free_port; NGINX_PORT=$PORT
mkdir -p "$TMP/nginx"
#  One worker (compared with one-thread servers), no access log, keep-alive without a request
#  limit (nginx's default closes a connection after 1,000 requests; the others never do).
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            default_type application/json;
            return 200 '{"status":"ok","service":"hello"}';
        }
    }
}
EOF
nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

free_port; EVHTTP_PORT=$PORT
"$BIN/intake_evhttp_hello" "$EVHTTP_PORT" &
EVHTTP_PID=$!
PIDS+=("$EVHTTP_PID")
free_port; MHD_PORT=$PORT
"$BIN/intake_mhd_hello" "$MHD_PORT" epoll &
MHD_PID=$!
PIDS+=("$MHD_PID")

free_port; HTTP_PORT=$PORT
free_port; HEALTH_PORT=$PORT
ADMIN_PASS=bench-admin-password
#  Production settings except: a cheap Argon2 cost (only logins pay it, and the benchmark logs in
#  51 users before it starts), sessions that do not expire during the run, and room for the
#  offers of the queue rows (GL_INTAKE_QUEUE_MAX).
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
    GL_REDIS_HOST=127.0.0.1 GL_REDIS_PORT="$REDIS_PORT" \
    GL_HTTP_HOST=127.0.0.1 GL_HTTP_PORT="$HTTP_PORT" GL_HEALTH_PORT="$HEALTH_PORT" \
    GL_BUS_BIND_PUB='tcp://127.0.0.1:*' GL_BUS_BIND_ROUTER='tcp://127.0.0.1:*' \
    GL_SOURCE=intake-1 GL_BUS_TOKENS=bench-bus-token GL_LOG_LEVEL=info \
    GL_INTAKE_BOOTSTRAP_ADMIN="admin:$ADMIN_PASS" \
    GL_INTAKE_ARGON2_OPSLIMIT=1 GL_INTAKE_ARGON2_MEMLIMIT=8192 \
    GL_INTAKE_SESSION_IDLE_S=86400 GL_INTAKE_SESSION_MAX_S=86400 \
    GL_INTAKE_QUEUE_MAX=100000 GL_INTAKE_PHONE_COUNTRY_CODE=962 \
    ${GL_INTAKE_SESSION_CACHE_MS:+GL_INTAKE_SESSION_CACHE_MS="$GL_INTAKE_SESSION_CACHE_MS"} \
    "$INTAKE" >"$OUT/intake.log" 2>&1 &
INTAKE_PID=$!
PIDS+=("$INTAKE_PID")

wait_http "http://127.0.0.1:$NGINX_PORT/"
wait_http "http://127.0.0.1:$EVHTTP_PORT/"
wait_http "http://127.0.0.1:$MHD_PORT/"
for _ in $(seq 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/ready") == 200 ]] && break
    kill -0 "$INTAKE_PID" 2>/dev/null || die "gl-intake stopped; its log: $OUT/intake.log"
    sleep 0.1
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/ready") == 200 ]] \
    || die "gl-intake is not ready; its log: $OUT/intake.log"
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1) || true

#  ---- accounts -------------------------------------------------------------------------------

API=http://127.0.0.1:$HTTP_PORT/api/v1
api () {    #  method path token [body] -> body; dies on a non-2xx answer
    local out code
    out=$(curl -s -w '\n%{http_code}' -X "$1" "$API$2" -H "Authorization: Bearer $3" \
        ${4:+-H 'Content-Type: application/json' --data "$4"})
    code=${out##*$'\n'}
    [[ $code == 2* ]] || die "$1 $2 answered $code: ${out%$'\n'*}"
    echo "${out%$'\n'*}"
}
login () {    #  username password -> "id token"
    curl -s -X POST "$API/auth/login" -H 'Content-Type: application/json' \
        --data "{\"username\":\"$1\",\"password\":\"$2\"}" | jq -r '.user.id + " " + .token'
}
say "creating $AGENTS agents and an API client ..."
read -r _ ADMIN_TOKEN <<<"$(login admin "$ADMIN_PASS")"
[[ $ADMIN_TOKEN == gls_* ]] || die "the admin cannot log in; intake's log: $OUT/intake.log"
AGENTS_FILE=$OUT/agents.txt
: >"$AGENTS_FILE"
for i in $(seq -w 1 $AGENTS); do
    api POST /users "$ADMIN_TOKEN" "{\"username\":\"agent$i\",\"password\":\"agent-password-$i\",\"roles\":[\"agent\"],\"units\":[\"hotline\"],\"languages\":[\"ar\",\"en\"],\"display_name\":\"Agent $i\"}" >/dev/null
    login "agent$i" "agent-password-$i" >>"$AGENTS_FILE"
done
[[ $(grep -c ' gls_' "$AGENTS_FILE") == "$AGENTS" ]] || die "not every agent could log in"
read -r AGENT_ID AGENT_TOKEN <"$AGENTS_FILE"
CLIENT_TOKEN=$(api POST /clients "$ADMIN_TOKEN" '{"name":"bench pbx","roles":["api_client"]}' | jq -r .token)
[[ $CLIENT_TOKEN == glc_* ]] || die "no API client token"

#  ---- measuring ------------------------------------------------------------------------------

HZ=$(getconf CLK_TCK)
ticks () {    #  pid... -> CPU ticks (user + system) of these processes, all threads
    local t=0 p s
    for p in "$@"; do
        [[ -n $p && -r /proc/$p/stat ]] || continue
        s=$(cat "/proc/$p/stat"); s=${s##*) }
        t=$((t + $(awk '{print $12 + $13}' <<<"$s")))
    done
    echo $t
}
machine () {    #  -> busy ticks, steal ticks, all ticks
    local cpu user nice sys idle iowait irq softirq steal rest
    read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo "$((user + nice + sys + irq + softirq)) $steal $((user + nice + sys + idle + iowait + irq + softirq + steal))"
}
kv () {    #  line key
    local v
    v=$(grep -o " $2=[^ ]*" <<<" $1" | head -1) || true
    echo "${v#*=}"
}
contacts_in_redis () { rcli ZCARD 'intake:{intake}:contacts:time'; }
empty_queue () {
    #  The offer rows leave tens of thousands of calls waiting; drop the queue's indexes (this
    #  Redis is the benchmark's own) so that every row starts with an empty queue, as a real
    #  day does. The call records stay, unreferenced.
    rcli DEL 'intake:{intake}:queue' 'intake:{intake}:queue:ar' 'intake:{intake}:route:ar' \
        'intake:{intake}:langs' >/dev/null
}

#  row NAME SERVER_PIDS -- command...: run one measurement, add its RESULT line with the CPU
#  figures (percent of one core: server, redis-server, load generator, everything else on this
#  machine, and the hypervisor's steal) and the worst Redis stall to $RESULTS.
row () {
    local name=$1 spids=$2
    shift 3
    local m0 m1 s0 s1 r0 r1 g line stall cpu
    rcli LATENCY RESET >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    read -r m0 st0 t0 <<<"$(machine)"
    s0=$(ticks $spids)
    r0=$(ticks "$REDIS_PID")
    local TIMEFORMAT='%U %S'
    { time "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; } 2>"$OUT/$name.time" || true
    read -r m1 st1 t1 <<<"$(machine)"
    s1=$(ticks $spids)
    r1=$(ticks "$REDIS_PID")
    g=$(awk -v hz="$HZ" '{printf "%d", ($1 + $2) * hz}' "$OUT/$name.time")
    cpu=$(awk -v hz="$HZ" -v s=$((s1 - s0)) -v r=$((r1 - r0)) -v g="$g" -v b=$((m1 - m0)) \
        -v st=$((st1 - st0)) -v t=$((t1 - t0)) 'BEGIN {
            secs = t / hz / '"$(nproc)"'; if (secs <= 0) secs = 1
            o = b - s - r - g; if (o < 0) o = 0
            printf "cpu_server=%.0f cpu_redis=%.0f cpu_gen=%.0f cpu_other=%.0f cpu_steal=%.0f",
                100 * s / hz / secs, 100 * r / hz / secs, 100 * g / hz / secs, 100 * o / hz / secs,
                100 * st / hz / secs }')
    rcli INFO commandstats >"$OUT/$name.cmdstats"
    stall=$(rcli LATENCY LATEST | paste - - - - | sort -k4,4n | tail -1 | awk '{ print ($4 ? $1 ":" $4 : "-") }')
    line=$(grep '^RESULT' "$OUT/$name.out" | head -1) || true
    [[ -n $line ]] || line="RESULT failed=1"
    line="ROW name=$name fsync=$(rcli CONFIG GET appendfsync | tail -1) ${line#RESULT } $cpu stall=${stall:--}"
    echo "$line" >>"$RESULTS"
    say "$name: $(kv "$line" rps) req/s, p99 $(kv "$line" p99_us) µs, non-2xx $(kv "$line" non2xx), codes $(kv "$line" codes)"
}
WRK=(wrk -t$THREADS -c$CONNS -d${DUR}s --latency -s "$HERE/intake.lua")
FIXED=("$BIN/intake_fixedrate" --port "$HTTP_PORT" --seconds "$DUR")

#  A contact row, then the check: Redis gained as many contacts as there were 201 answers.
CHECKS=()
contact_row () {    #  name command...
    local name=$1 before after created line open gained
    shift
    before=$(contacts_in_redis)
    row "$name" "$INTAKE_PID" -- "$@"
    sleep 1                     #  requests still in flight when the load generator stopped
    after=$(contacts_in_redis)
    line=$(grep "name=$name " "$RESULTS") || true
    created=$(grep -o 'codes=[^ ]*' <<<"$line" | grep -o '201:[0-9]*' | cut -d: -f2) || true
    created=${created:-0}
    open=$(kv "$line" unfinished)
    open=${open:-0}
    gained=$((after - before))
    #  Every 201 must be in Redis; a request the generator stopped waiting for may be too.
    if ((gained >= created && gained <= created + open)); then
        CHECKS+=("$name: Redis gained $gained contacts; answers 201: $created, unanswered when the generator stopped: $open: ok")
    else
        CHECKS+=("$name: Redis gained $gained contacts; answers 201: $created, unanswered when the generator stopped: $open: MISMATCH")
    fi
}

say "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); rows of ${DUR} s; raw output in $OUT"
T0=$(date +%s)

#  1. The library: hello world, same run.
row nginx "$NGINX_PID $NGINX_WORKER" -- "${WRK[@]}" "http://127.0.0.1:$NGINX_PORT/" -- get /
row evhttp "$EVHTTP_PID" -- "${WRK[@]}" "http://127.0.0.1:$EVHTTP_PORT/" -- get /
row mhd "$MHD_PID" -- "${WRK[@]}" "http://127.0.0.1:$MHD_PORT/" -- get /

#  2. intake's framework: /health (no Redis), /auth/me (authentication + one read).
row health "$INTAKE_PID" -- "${WRK[@]}" "http://127.0.0.1:$HTTP_PORT/" -- get /health
row me "$INTAKE_PID" -- "${WRK[@]}" "http://127.0.0.1:$HTTP_PORT/" -- get /api/v1/auth/me "$AGENT_TOKEN"

for fsync in everysec always; do
    rcli CONFIG SET appendfsync $fsync >/dev/null
    #  3. Contact writes, closed loop (wrk), 50 connections, each request a random agent's.
    contact_row "contacts-$fsync" "${WRK[@]}" "http://127.0.0.1:$HTTP_PORT/" -- contact "$AGENTS_FILE"
    #  4. Queue: offers (wrk), then the whole life of a call, one agent per connection.
    empty_queue
    row "offers-$fsync" "$INTAKE_PID" -- "${WRK[@]}" "http://127.0.0.1:$HTTP_PORT/" -- offer "$CLIENT_TOKEN"
    empty_queue
    row "cycle-$fsync" "$INTAKE_PID" -- "${FIXED[@]}" --scenario cycle --rate 0 --conns $AGENTS \
        --client-token "$CLIENT_TOKEN" --agents "$AGENTS_FILE"
    cp "$OUT/cycle-$fsync.out" "$OUT/cycle-$fsync.steps"
    #  5. Contact writes at a fixed 1,000/s, open loop.
    contact_row "fixed-$fsync" "${FIXED[@]}" --scenario contact --rate $FIXED_RATE \
        --conns $FIXED_CONNS --agents "$AGENTS_FILE"
done
#  Under always intake cannot take 1,000 writes/s; the latency at a rate it can take.
contact_row "fixedlow-always" "${FIXED[@]}" --scenario contact --rate $LOW_RATE \
    --conns $FIXED_CONNS --agents "$AGENTS_FILE"
rcli CONFIG SET appendfsync everysec >/dev/null

#  Where a contact write's time goes: the commands intake sends Redis for 200 writes
#  (MONITOR; EVALSHA counted once, the commands its script runs listed apart).
say "counting Redis commands per request (MONITOR, 200 contact writes, 200 GET /auth/me) ..."
monitor_sample () {    #  name fixedrate-args...
    local name=$1 mon
    shift
    redis-cli -p "$REDIS_PORT" MONITOR >"$OUT/monitor-$name.txt" &
    mon=$!
    sleep 0.3
    "${FIXED[@]}" "$@" >"$OUT/monitor-$name.load" 2>&1 || true
    sleep 0.3
    kill "$mon" 2>/dev/null || true
    wait "$mon" 2>/dev/null || true
}
monitor_sample contact --scenario contact --rate 200 --seconds 1 --conns 1 --agents "$AGENTS_FILE"
monitor_sample me --scenario get --path /api/v1/auth/me --token "$AGENT_TOKEN" --rate 200 --seconds 1 --conns 1
if ((PROFILE)); then
    say "perf record ${GL_BENCH_PERF_CALLGRAPH:--g} on gl-intake during 5 s of contact writes ..."
    # shellcheck disable=SC2086
    perf record ${GL_BENCH_PERF_CALLGRAPH:--g} -o "$OUT/perf.data" -p "$INTAKE_PID" -- sleep 5 >/dev/null 2>&1 &
    PERF_PID=$!
    wrk -t$THREADS -c$CONNS -d5s -s "$HERE/intake.lua" "http://127.0.0.1:$HTTP_PORT/" -- contact "$AGENTS_FILE" >"$OUT/perf-load.out" 2>&1 || true
    wait "$PERF_PID" || true
    perf report -i "$OUT/perf.data" --no-children --stdio --sort symbol 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -25 >"$OUT/perf-top.txt" || true
    perf report -i "$OUT/perf.data" --children --stdio --sort symbol -g none 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -40 >"$OUT/perf-children.txt" || true
fi
T1=$(date +%s)
OUTBOX=$(rcli HLEN 'intake:{intake}:outbox')

#  ---- the report -----------------------------------------------------------------------------

set +e      #  a figure missing from a failed row leaves a gap in the table, not a half report

fmt () { awk -v x="${1:-0}" 'BEGIN { printf "%.0f", x }' | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
ms () { awk -v x="${1:-0}" 'BEGIN { printf (x < 10000 ? "%.2f" : "%.1f"), x / 1000 }'; }
get () { grep "name=$1 " "$RESULTS" | head -1 || true; }
NGINX_RPS=$(kv "$(get nginx)" rps)
ratio () { awk -v a="${1:-0}" -v b="${NGINX_RPS:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
table_row () {    #  label name [extra]
    local line
    line=$(get "$2")
    [[ -n $line ]] || return 0
    local bad err
    bad=$(kv "$line" non2xx)
    err=$(kv "$line" errors)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s/%s/%s/%s/%s | %s |\n' \
        "$1" "$(kv "$line" fsync)" "$(fmt "$(kv "$line" rps)")" "$(ratio "$(kv "$line" rps)")" \
        "$(ms "$(kv "$line" p50_us)")" "$(ms "$(kv "$line" p99_us)")" "$(ms "$(kv "$line" max_us)")" \
        "${bad:-?}$( ((${err:-0} > 0)) && echo " +$err err")" \
        "$(kv "$line" cpu_server)" "$(kv "$line" cpu_redis)" "$(kv "$line" cpu_gen)" "$(kv "$line" cpu_other)" "$(kv "$line" cpu_steal)" \
        "$(kv "$line" stall)"
}

echo "# Greenline intake HTTP API benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), Linux $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "servers: nginx $(nginx -v 2>&1 | grep -o '[0-9.]*$') (1 worker), libevent $(pkg-config --modversion libevent), libmicrohttpd $(pkg-config --modversion libmicrohttpd) (internal epoll thread), redis $(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2) (AOF on $(df --output=fstype "$TMP" | tail -1))"
echo "intake:  tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), build $(grep -m1 CMAKE_BUILD_TYPE: "$BUILD/CMakeCache.txt" | cut -d= -f2); $AGENTS agents, 1 API client"
echo "load:    wrk $THREADS threads $CONNS connections ${DUR} s (closed loop, latency from the send); fixedrate open loop $FIXED_RATE/s on $FIXED_CONNS connections (latency from the scheduled time)"
echo "         load generator and servers share the $(nproc) cores; CPU = % of one core: server/redis/load generator/other processes/hypervisor steal"
echo "took:    $((T1 - T0)) s of measuring; raw output in $OUT"
echo
echo "| measurement | fsync | req/s | ratio to nginx | p50 ms | p99 ms | max ms | non-2xx | CPU % srv/redis/gen/other/steal | redis stall |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
table_row "nginx hello (reference)" nginx
table_row "evhttp hello" evhttp
table_row "libmicrohttpd hello" mhd
table_row "intake GET /health" health
table_row "intake GET /api/v1/auth/me (agent)" me
for fsync in everysec always; do
    table_row "POST /contacts, wrk" "contacts-$fsync"
    table_row "POST /calls (offer), wrk" "offers-$fsync"
    table_row "call cycle, 4 requests, 50 agents" "cycle-$fsync"
    table_row "POST /contacts at $FIXED_RATE/s, open loop" "fixed-$fsync"
done
table_row "POST /contacts at $LOW_RATE/s, open loop" fixedlow-always
echo
echo "Call cycle per step (closed loop, 50 connections, one agent each):"
echo
echo "| fsync | step | req/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---:|---:|---:|---:|"
for fsync in everysec always; do
    while read -r line; do
        printf '| %s | %s | %s | %s | %s | %s |\n' "$fsync" "$(kv "$line" kind)" "$(fmt "$(kv "$line" rps)")" \
            "$(ms "$(kv "$line" p50_us)")" "$(ms "$(kv "$line" p99_us)")" "$(kv "$line" non2xx)"
    done < <(grep '^RESULT' "$OUT/cycle-$fsync.steps" | grep -v 'kind=all')
done
echo
echo "Targets (issue 3):"
for fsync in everysec always; do
    line=$(get "contacts-$fsync")
    rps=$(kv "$line" rps)
    echo "- >= $(fmt $TARGET_RPS) authenticated contact writes/s, $fsync: $(fmt "$rps")/s ($(awk -v a="${rps:-0}" -v b=$TARGET_RPS 'BEGIN { print (a >= b ? "met" : "MISSED") }'))"
    line=$(get "fixed-$fsync")
    p99=$(kv "$line" p99_us)
    echo "- p99 < $TARGET_P99_MS ms at $FIXED_RATE/s, $fsync: $(ms "$p99") ms ($(awk -v a="${p99:-999999999}" -v b=$TARGET_P99_MS 'BEGIN { print (a < b * 1000 ? "met" : "MISSED") }'); a due request waited for a free connection at most $(ms "$(kv "$line" lag_max_us)") ms; never sent: $(kv "$line" unsent))"
done
echo
echo "Checks:"
for c in "${CHECKS[@]}"; do echo "- $c"; done
echo "- outbox entries left after the run (events not yet published): $OUTBOX"
echo
echo "Redis commands intake sent per request (MONITOR, 200 requests each; \"script:\" = run inside EVALSHA):"
for name in contact me; do
    f=$OUT/monitor-$name.txt
    n=$(grep -o 'ok=[0-9]*' "$OUT/monitor-$name.load" | head -1 | cut -d= -f2) || true
    [[ -s $f && ${n:-0} -gt 0 ]] || continue
    top=$(grep -v '\[0 lua\]' "$f" | grep -v '"PING"' | grep -o '\] "[A-Za-z]*"' | tr -d '"]' | tr a-z A-Z \
        | sort | uniq -c | sort -rn | awk -v n="$n" '{ printf "%s %.2f, ", $2, $1 / n }')
    lua=$(grep '\[0 lua\]' "$f" | grep -o '\] "[A-Za-z]*"' | tr -d '"]' | tr a-z A-Z \
        | sort | uniq -c | sort -rn | awk -v n="$n" '{ printf "%s %.2f, ", $2, $1 / n }')
    echo "- $name ($n answered 2xx): ${top%, }; script: ${lua%, }"
done
echo
echo "Redis time per contact write (INFO commandstats of the wrk rows: µs inside redis-server per request, by command):"
for fsync in everysec always; do
    f=$OUT/contacts-$fsync.cmdstats
    n=$(kv "$(get "contacts-$fsync")" ok)
    [[ -s $f && ${n:-0} -gt 0 ]] || continue
    echo "- $fsync: $(tr -d '\r' <"$f" | grep '^cmdstat_' | sed 's/^cmdstat_//; s/:calls=/ /; s/,usec=/ /; s/,.*//' \
        | awk -v n="$n" '{ t += $3; if ($3 / n >= 1) s = s sprintf("%s %.0f, ", $1, $3 / n) } END { printf "total %.0f µs: %s", t / n, substr(s, 1, length(s) - 2) }')"
done
echo
echo "Round trips per contact write under load (INFO commandstats of the wrk rows: calls per 201):"
for fsync in everysec always; do
    f=$OUT/contacts-$fsync.cmdstats
    n=$(kv "$(get "contacts-$fsync")" ok)
    [[ -s $f && ${n:-0} -gt 0 ]] || continue
    #  EVALSHA: the create scripts plus the bus appends; HDEL: one per outbox batch; HMGET: the
    #  session reads (2 per read; the session cache makes them rare).
    echo "- $fsync: $(tr -d '\r' <"$f" | grep -E '^cmdstat_(evalsha|hdel|hmget):' | sed 's/^cmdstat_//; s/:calls=/ /; s/,.*//' \
        | awk -v n="$n" '{ c[$1] = $2 } END { h = c["hdel"];
            printf "evalsha %.2f, hdel %.3f, hmget %.3f; outbox batches: %d for %d writes (%.1f events each)",
                c["evalsha"] / n, h / n, c["hmget"] / n, h, n, (h > 0 ? n / h : 0) }')"
done
if ((PROFILE)) && [[ -s $OUT/perf-top.txt ]]; then
    echo
    echo "perf: gl-intake's top functions (self time) during 5 s of contact writes:"
    echo
    sed 's/^/    /' "$OUT/perf-top.txt" | head -20
fi
