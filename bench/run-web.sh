#!/usr/bin/env bash
# bench/run-web.sh: fwgate's Web Proxy against squid and tinyproxy (and a direct connection, and
# fwgate's own SOCKS relay for bulk), in one run on loopback, interleaved round-robin. Prints a
# Markdown table and writes bench/results/latest-web.md. See bench/README.md, "The Web Proxy".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ROUNDS=3
SECONDS_PER_RUN=5
WARMUP=1
IDLE_COUNTS="5000"
TARGETS="direct,fwgate,fwgate-socks,squid,tinyproxy"
CASES="ka64,ka1,nc64,nc1,bulk1,bulk8"
FWGATE="$ROOT/build-bench/apps/fwgate/fwgate"
BENCH=""
SQUID=""
TINYPROXY=""
BODY_BYTES=128
ORIGIN_POOL=""
OUT_DIR="$ROOT/bench/results"
PROXY_CPU=0
LOAD_CPU=1
QUICK=0
NICE=0

usage() {
  cat <<EOF
usage: bash bench/run-web.sh [options]
  --quick             1 round, 2 s windows, 0.5 s warm-up, 1,000 idle (for checking the harness)
  --rounds N          rounds, each visiting every target once per measurement (default $ROUNDS)
  --seconds S         measured window of each run (default $SECONDS_PER_RUN)
  --warmup S          unmeasured lead-in of each run (default $WARMUP)
  --idle LIST         idle keep-alive client connection counts (default $IDLE_COUNTS; "" for none)
  --targets LIST      subset of $TARGETS
  --cases LIST        subset of $CASES
  --fwgate PATH       fwgate binary (default $FWGATE)
  --bench PATH        prebuilt fwgate-bench (default: build it in build-bench/)
  --squid PATH        squid (default: from PATH, /usr/sbin)
  --tinyproxy PATH    tinyproxy (default: from PATH, /usr/bin)
  --body-bytes N      body of every GET response (default $BODY_BYTES)
  --origin-pool N     fwgate [web_proxy] origin_pool_size (default: fwgate's own default)
  --nice N            run proxies and load at this nice level (default 0)
  --out DIR           results directory (default bench/results)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_PER_RUN=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --idle) IDLE_COUNTS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --cases) CASES=$2; shift ;;
    --fwgate) FWGATE=$2; shift ;;
    --bench) BENCH=$2; shift ;;
    --squid) SQUID=$2; shift ;;
    --tinyproxy) TINYPROXY=$2; shift ;;
    --body-bytes) BODY_BYTES=$2; shift ;;
    --origin-pool) ORIGIN_POOL=$2; shift ;;
    --nice) NICE=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-web.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $QUICK == 1 ]]; then
  ROUNDS=1; SECONDS_PER_RUN=2; WARMUP=0.5; IDLE_COUNTS=1000
fi

log() { printf '[run-web.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes we own, and cleanup
declare -a OWNED=()
# In tmpfs when there is one: the proxies' per-request logs live here, and a disk would put other
# users' I/O into the numbers (tinyproxy fsync()s every log line).
TMP_PARENT=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && TMP_PARENT=/dev/shm
TMP=$(mktemp -d "$TMP_PARENT/fwgate-bench-web.XXXXXX")
# squid and tinyproxy drop to an unprivileged user when started as root: their own
# directories below must be theirs to write.
chmod 755 "$TMP"

# stop_tree, cleanup (trapped on EXIT), start_on_cpu, build_bench.
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- binaries
build_bench
if [[ -z $SQUID ]]; then
  SQUID=$(command -v squid || true)
  [[ -z $SQUID && -x /usr/sbin/squid ]] && SQUID=/usr/sbin/squid
fi
if [[ -z $TINYPROXY ]]; then
  TINYPROXY=$(command -v tinyproxy || true)
  [[ -z $TINYPROXY && -x /usr/bin/tinyproxy ]] && TINYPROXY=/usr/bin/tinyproxy
  [[ -z $TINYPROXY && -x /usr/sbin/tinyproxy ]] && TINYPROXY=/usr/sbin/tinyproxy
fi

# ---------------------------------------------------------------- limits and results
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MAX_IDLE=$(tr ',' '\n' <<<"${IDLE_COUNTS:-0}" | sort -n | tail -1)
if (( NOFILE < 2 * MAX_IDLE + 500 )); then
  log "WARNING: fd limit $NOFILE is below 2 x $MAX_IDLE + 500: a proxy may not hold $MAX_IDLE client connections"
fi
mkdir -p "$OUT_DIR"
[[ -f $OUT_DIR/.gitignore ]] || printf 'latest*\n' >"$OUT_DIR/.gitignore"
JSONL="$OUT_DIR/latest-web.jsonl"
: >"$JSONL"
record() { "$BENCH" note "$@" >>"$JSONL"; }

# ---------------------------------------------------------------- far ends (on the load CPU)
# The sink takes the CONNECT (and SOCKS, and direct) bulk streams on 127.0.0.1. The origin
# listens on one port on 127.0.12.1-4, one address per target (direct, fwgate, squid,
# tinyproxy), so that no target's leftovers (TIME_WAIT) share a 4-tuple with the next one's.
declare -A TARGET_NO=([direct]=1 [fwgate]=2 [squid]=3 [tinyproxy]=4)
start_on_cpu "$LOAD_CPU" "$TMP/sink.out" "$TMP/sink.err" "$BENCH" sink --lifetime 86400
SINK_PID=$LAST_PID
ORIGIN_PORT=$("$BENCH" free-port)
declare -a ORIGIN_LISTEN=()
for t in direct fwgate squid tinyproxy; do
  ORIGIN_LISTEN+=(--listen "127.0.12.${TARGET_NO[$t]}:$ORIGIN_PORT")
done
start_on_cpu "$LOAD_CPU" "$TMP/origin.out" "$TMP/origin.err" "$BENCH" http-origin \
  --lifetime 86400 --body-bytes "$BODY_BYTES" "${ORIGIN_LISTEN[@]}"
ORIGIN_PID=$LAST_PID
json_port() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }
for _ in $(seq 1 50); do
  [[ -s $TMP/sink.out && -s $TMP/origin.out ]] && break
  sleep 0.1
done
SINK_PORT=$(json_port "$TMP/sink.out" port)
SINK_STATS=$(json_port "$TMP/sink.out" stats_port)
ORIGIN_STATS=$(json_port "$TMP/origin.out" stats_port)
[[ -n $SINK_PORT && -n $SINK_STATS && -n $ORIGIN_STATS ]] ||
  die "sink/origin did not start: $(cat "$TMP/sink.err" "$TMP/origin.err")"
SINK="127.0.0.1:$SINK_PORT"
origin_for() { echo "127.0.12.${TARGET_NO[$1]}:$ORIGIN_PORT"; }
log "sink $SINK (stats $SINK_STATS, pid $SINK_PID), origin 127.0.12.1-4:$ORIGIN_PORT" \
  "(stats $ORIGIN_STATS, pid $ORIGIN_PID), fd limit $NOFILE"

# ---------------------------------------------------------------- proxies (on the proxy CPU)
IFS=, read -r -a WANTED <<<"$TARGETS"
IFS=, read -r -a CASE_LIST <<<"$CASES"
declare -a ACTIVE=()

binary_for() {
  case "$1" in
    fwgate|fwgate-socks) echo "$FWGATE" ;;
    squid) echo "$SQUID" ;;
    tinyproxy) echo "$TINYPROXY" ;;
  esac
}

for t in "${WANTED[@]}"; do
  case "$t" in
    direct) ACTIVE+=(direct) ;;
    fwgate|fwgate-socks|squid|tinyproxy)
      bin=$(binary_for "$t")
      if [[ -n $bin && -x $bin ]]; then
        ACTIVE+=("$t")
      else
        log "WARNING: $t SKIPPED: no executable (${bin:-not found})"
        record --event skip --tag "target=$t" --tag "reason=binary not found: ${bin:-not on PATH}"
      fi ;;
    *) die "unknown target $t" ;;
  esac
done

if [[ $(id -u) == 0 ]]; then SQUID_USER=proxy; TP_USER=nobody; TP_GROUP=nogroup; fi

write_fwgate_conf() {  # dir socks_port web_port
  cat >"$1/fwgate.toml" <<EOF
# Written by bench/run-web.sh. One process serves both targets: fwgate (the Web Proxy) and
# fwgate-socks (its SOCKS relay, bulk only). Session log to a file, one line per request.
[[listeners]]
address = "127.0.0.1"
port = $2
methods = ["none"]

[web_proxy]
listen = ["127.0.0.1:$3"]
tunnel_ports = ["1-65535"]
${ORIGIN_POOL:+origin_pool_size = $ORIGIN_POOL}

[log]
level = "warn"
sessions = "$1/sessions.log"

[[rules]]
name = "bench"
action = "allow"
sources = ["loopback"]
EOF
}

write_squid_conf() {  # dir port
  cat >"$1/squid.conf" <<EOF
# Written by bench/run-web.sh: a forward proxy with caching off, access for the load client.
http_port 127.0.0.1:$2
acl bench src 127.0.0.0/8
http_access allow bench
http_access deny all
cache deny all
cache_mem 0
access_log stdio:$1/access.log
cache_log $1/cache.log
pid_filename $1/squid.pid
coredump_dir $1
pinger_enable off
max_filedescriptors $NOFILE
shutdown_lifetime 0 seconds
${SQUID_USER:+cache_effective_user $SQUID_USER}
EOF
}

write_tinyproxy_conf() {  # dir port
  cat >"$1/tinyproxy.conf" <<EOF
# Written by bench/run-web.sh. LogLevel Connect: the least that still logs every request.
Port $2
Listen 127.0.0.1
Timeout 600
LogFile "$1/tinyproxy.log"
LogLevel Connect
PidFile "$1/tinyproxy.pid"
MaxClients $(( MAX_IDLE + 1000 ))
Allow 127.0.0.0/8
ViaProxyName "tinyproxy"
${TP_USER:+User $TP_USER}
${TP_GROUP:+Group $TP_GROUP}
EOF
}

# Why the proxy did not come up, with the last lines it wrote.
PROXY_STATUS=""
proxy_log_tail() {
  local f out=""
  for f in "$PROXY_DIR"/*.log "$PROXY_DIR"/*.stderr; do
    [[ -s $f ]] && out+="$(basename "$f"): $(tail -n 3 "$f" | tail -c 300 | tr '\n' ' ') "
  done
  echo "$PROXY_STATUS; ${out:-no log}"
}

# Starts one instance of a proxy on free ports; sets PROXY_PID, PROXY_ADDR (HTTP) and SOCKS_ADDR
# (fwgate only); 1 if it did not relay a probe GET in 10 s.
start_proxy() {
  local target=$1 port socks_port
  [[ $target == fwgate-socks ]] && target=fwgate
  port=$("$BENCH" free-port)
  PROXY_ADDR="127.0.0.1:$port"
  SOCKS_ADDR=""
  PROXY_DIR="$TMP/$target.$port"
  mkdir -p "$PROXY_DIR"
  case "$target" in
    fwgate)
      socks_port=$("$BENCH" free-port)
      while [[ $socks_port == "$port" ]]; do socks_port=$("$BENCH" free-port); done
      SOCKS_ADDR="127.0.0.1:$socks_port"
      write_fwgate_conf "$PROXY_DIR" "$socks_port" "$port"
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_DIR/fwgate.stderr" \
        "$FWGATE" gateway --config "$PROXY_DIR/fwgate.toml" --state-dir "$PROXY_DIR/state" ;;
    squid)
      [[ -n ${SQUID_USER:-} ]] && chown "$SQUID_USER" "$PROXY_DIR"
      write_squid_conf "$PROXY_DIR" "$port"
      # -N: no daemon, no kid processes: the process started here is the one that serves.
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_DIR/squid.stderr" \
        "$SQUID" -N -f "$PROXY_DIR/squid.conf" ;;
    tinyproxy)
      [[ -n ${TP_USER:-} ]] && chown "$TP_USER:$TP_GROUP" "$PROXY_DIR"
      write_tinyproxy_conf "$PROXY_DIR" "$port"
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_DIR/tinyproxy.stderr" \
        "$TINYPROXY" -d -c "$PROXY_DIR/tinyproxy.conf" ;;
  esac
  PROXY_PID=$LAST_PID
  local probe="" rc=0
  for _ in $(seq 1 100); do
    if probe=$("$BENCH" probe --proxy "$PROXY_ADDR" --proxy-protocol http-get \
        --body-bytes "$BODY_BYTES" --target "$(origin_for "$target")" --timeout 1 2>&1); then
      return 0
    fi
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PROXY_PID" 2>/dev/null; then
    PROXY_STATUS="running, but no probe GET got through in 10 s; last probe: $(grep -o '"error_reasons":{[^}]*}' <<<"$probe")"
  else
    wait "$PROXY_PID" 2>/dev/null || rc=$?
    PROXY_STATUS="process exited with status $rc"
  fi
  return 1
}

# One long-lived instance per proxy (fwgate-socks is fwgate's), restarted if it died.
declare -A PID_OF=() ADDR_OF=() SOCKS_OF=() DIR_OF=()
START_FAILURE=""
ensure_proxy() {
  local target=$1
  [[ $target == direct ]] && return 0
  [[ $target == fwgate-socks ]] && target=fwgate
  if [[ -n ${PID_OF[$target]:-} ]] && kill -0 "${PID_OF[$target]}" 2>/dev/null; then return 0; fi
  if [[ -n ${PID_OF[$target]:-} ]]; then
    record --event run_failed --tag "target=$target" --tag "case=-" --tag "round=$ROUND" \
      --tag "reason=proxy process ${PID_OF[$target]} had exited; restarted"
  fi
  if ! start_proxy "$target"; then
    stop_tree "$PROXY_PID"
    START_FAILURE=$(proxy_log_tail)
    return 1
  fi
  PID_OF[$target]=$PROXY_PID
  ADDR_OF[$target]=$PROXY_ADDR
  SOCKS_OF[$target]=$SOCKS_ADDR
  DIR_OF[$target]=$PROXY_DIR
}

# The per-request logs grow by hundreds of MB over a run: empty them between runs (a writer
# without O_APPEND then leaves a sparse file, which takes no space).
trim_logs() {
  local f
  for f in "$TMP"/*/sessions.log "$TMP"/*/access.log "$TMP"/*/tinyproxy.log; do
    [[ -f $f ]] && truncate -s 0 "$f"
  done
  return 0
}

# ---------------------------------------------------------------- one measurement
# Share of each CPU busy over 2 s, from /proc/stat (user to steal, less idle and iowait):
# "cpu0 3%, cpu1 1%".
cpu_busy_now() {
  local a b
  a=$(grep '^cpu[0-9]' /proc/stat)
  sleep 2
  b=$(grep '^cpu[0-9]' /proc/stat)
  paste -d' ' <(echo "$a") <(echo "$b") | awk '{
    t0 = 0; t1 = 0
    for (i = 2; i <= 9; i++) t0 += $i
    for (i = 13; i <= 20; i++) t1 += $i
    idle = ($16 + $17) - ($5 + $6)
    printf "%s%s %.0f%%", (NR > 1 ? ", " : ""), $1, (t1 > t0 ? 100 * ((t1 - t0) - idle) / (t1 - t0) : 0)
  }'
}

# Runs fwgate-bench on the load CPU with a time bound; appends its JSON or a failure record.
measure() {
  local target=$1 kase=$2 bound=$3
  shift 3
  local out="$TMP/run.out" err="$TMP/run.err" rc=0
  timeout -k 5 "$bound" nice -n "$NICE" taskset -c "$LOAD_CPU" "$BENCH" "$@" \
    --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" </dev/null \
    >"$out" 2>"$err" || rc=$?
  if grep -q '^{' "$out"; then
    grep '^{' "$out" >>"$JSONL"
  else
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=exit $rc, no result: $(tail -c 300 "$err" | tr '\n' ' ')"
  fi
  (( rc == 0 )) || log "  $target $kase: exit $rc ($(tail -c 200 "$out" | tr '\n' ' '))"
  trim_logs
}

applies() {  # target case
  case "$1:$2" in
    fwgate-socks:bulk*) return 0 ;;
    fwgate-socks:*) return 1 ;;
  esac
  return 0
}

run_case() {
  local target=$1 kase=$2 proxy_flags=()
  applies "$target" "$kase" || return 0
  if ! ensure_proxy "$target"; then
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=proxy did not start or did not relay a probe GET: $START_FAILURE"
    return
  fi
  local owner=${target/fwgate-socks/fwgate}
  case "$target" in
    direct) proxy_flags=(--proxy none) ;;
    fwgate-socks) proxy_flags=(--proxy "${SOCKS_OF[$owner]}" --proxy-protocol socks5 --watch-pid "${PID_OF[$owner]}") ;;
    *) proxy_flags=(--proxy "${ADDR_OF[$owner]}" --watch-pid "${PID_OF[$owner]}") ;;
  esac
  local bound
  bound=$(awk "BEGIN{print int($SECONDS_PER_RUN + $WARMUP + 60)}")
  log "round $ROUND: $kase via $target"
  case "$kase" in
    bulk1|bulk8)
      local proto=()
      [[ $target == fwgate || $target == squid || $target == tinyproxy ]] && proto=(--proxy-protocol http-connect)
      measure "$target" "$kase" "$bound" bulk "${proxy_flags[@]}" "${proto[@]}" --target "$SINK" \
        --far-pid "$SINK_PID" --stats "127.0.0.1:$SINK_STATS" --streams "${kase#bulk}" \
        --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" ;;
    ka*|nc*)
      local each=()
      [[ $kase == nc* ]] && each=(--new-connection)
      measure "$target" "$kase" "$bound" requests "${proxy_flags[@]}" --proxy-protocol http-get \
        --target "$(origin_for "$target")" --far-pid "$ORIGIN_PID" \
        --origin-stats "127.0.0.1:$ORIGIN_STATS" --body-bytes "$BODY_BYTES" \
        --concurrency "${kase#[a-z][a-z]}" "${each[@]}" --seconds "$SECONDS_PER_RUN" \
        --warmup "$WARMUP" ;;
    *) die "unknown case $kase" ;;
  esac
}

# Memory per idle keep-alive client connection: a fresh instance, N clients that each made one
# GET and keep their connection, then the instance is stopped.
run_idle() {
  local target=$1 n=$2 kase="idle$2"
  [[ $target == direct || $target == fwgate-socks ]] && return
  log "round $ROUND: $kase via $target"
  if ! start_proxy "$target"; then
    stop_tree "$PROXY_PID"
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=fresh proxy instance did not start: $(proxy_log_tail)"
    return
  fi
  sleep 1  # let start-up finish before the "before" sample
  measure "$target" "$kase" 600 idle --proxy "$PROXY_ADDR" --proxy-protocol http-get \
    --body-bytes "$BODY_BYTES" --watch-pid "$PROXY_PID" --target "$(origin_for "$target")" \
    --connections "$n" --settle 2 --open-timeout 300
  stop_tree "$PROXY_PID"
}

# ---------------------------------------------------------------- the run
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_START=$(cpu_busy_now)
TREE_START=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
log "before the run: load $LOAD_START; CPUs busy over 2 s: $BUSY_START"
log "targets: ${ACTIVE[*]:-none}; cases ${CASE_LIST[*]}; rounds $ROUNDS; windows ${SECONDS_PER_RUN}s; idle ${IDLE_COUNTS:-none}"
IFS=, read -r -a IDLE_NS <<<"$IDLE_COUNTS"
for ROUND in $(seq 1 "$ROUNDS"); do
  # Rotate the starting target each round so no target always runs first or last.
  declare -a ORDER=()
  for i in "${!ACTIVE[@]}"; do
    ORDER+=("${ACTIVE[$(( (i + ROUND - 1) % ${#ACTIVE[@]} ))]}")
  done
  for kase in "${CASE_LIST[@]}"; do
    for target in "${ORDER[@]}"; do run_case "$target" "$kase"; done
  done
  for n in "${IDLE_NS[@]}"; do
    for target in "${ORDER[@]}"; do run_idle "$target" "$n"; done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(cpu_busy_now)

# ---------------------------------------------------------------- report
version_of() {
  case "$1" in
    fwgate) echo "$("$FWGATE" --version 2>/dev/null | head -1), built $(date -u -r "$FWGATE" +%Y-%m-%dT%H:%MZ); tree at the start of the run $TREE_START" ;;
    squid) "$SQUID" -v 2>/dev/null | head -1 ;;
    tinyproxy) "$TINYPROXY" -v 2>/dev/null | head -1 ;;
  esac
}
declare -a META=(
  --tag "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  --tag "host=$(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  --tag "proxy_cpu=$PROXY_CPU"
  --tag "load_cpu=$LOAD_CPU"
  --tag "pinning=proxy on CPU $PROXY_CPU (taskset, threads and children inherit); load generator, sink and origin on CPU $LOAD_CPU; nice $NICE"
  --tag "rounds=$ROUNDS (targets interleaved round-robin, start rotated per round)"
  --tag "windows=${SECONDS_PER_RUN}s each after ${WARMUP}s warm-up; idle held 2s before sampling"
  --tag "idle_counts=$IDLE_COUNTS"
  --tag "targets=$TARGETS"
  --tag "cases=$CASES (ka: keep-alive, nc: new connection per request; the number is the concurrency)"
  --tag "requests=GET of a ${BODY_BYTES}-byte body, absolute form through the proxies, origin form direct; the load generator connects from 127.2.0.1-254 in turn; origin on 127.0.12.1-4 (direct, fwgate, squid, tinyproxy)"
  --tag "fd_limit=$NOFILE per process (hard $(ulimit -Hn))"
  --tag "logs=each proxy's per-request log in $TMP_PARENT ($(stat -f -c %T "$TMP_PARENT")), emptied after every run"
  --tag "load=loadavg $LOAD_START at start, $LOAD_END at end (the run's own processes count); CPUs busy over 2 s before the run: $BUSY_START; after it: $BUSY_END"
  --tag "fwgate_settings=fwgate gateway --config (SOCKS and Web Proxy listeners in one process), tunnel_ports 1-65535, session log to a file in the temp dir, log level warn${ORIGIN_POOL:+, origin_pool_size $ORIGIN_POOL}"
  --tag "squid_settings=squid -N; cache deny all, cache_mem 0, no cache_dir; access_log stdio: file; pinger off; other settings default"
  --tag "tinyproxy_settings=tinyproxy -d; LogLevel Connect to a file; MaxClients $(( MAX_IDLE + 1000 )); other settings default"
)
for t in fwgate squid tinyproxy; do
  if [[ " ${ACTIVE[*]} " == *" $t "* ]]; then
    META+=(--tag "binary_$t=$(binary_for "$t") ($(version_of "$t"))")
  fi
done
# The load average also counts this script's previous runs: the CPU sample says more.
if grep -Eq '([2-9][0-9]|1[0-9]{2})%' <<<"$BUSY_START"; then
  META+=(--tag "WARNING=the machine was busy at start ($BUSY_START): numbers are noisy; see the 'busy with other processes' rows")
fi
record --event meta "${META[@]}"
"$BENCH" report --suite web --in "$JSONL" --out "$OUT_DIR/latest-web.md"
log "wrote $OUT_DIR/latest-web.md and $JSONL"
