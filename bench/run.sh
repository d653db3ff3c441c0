#!/usr/bin/env bash
# bench/run.sh: fwgate against Dante sockd, microsocks and a direct connection, in one run on
# loopback, interleaved round-robin. Prints a Markdown table and writes bench/results/latest.md.
# See bench/README.md for what is measured and how to read it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ROUNDS=5
BULK_SECONDS=5
SESSION_SECONDS=5
WARMUP=1
IDLE_COUNTS="5000,9000"
TARGETS="direct,fwgate,dante,microsocks"
FWGATE="$ROOT/build/apps/fwgate/fwgate"
FWGATE_LOG=/dev/null
BENCH=""
DANTED=""
MICROSOCKS=""
# Dante binds every upstream socket to "external" with port 0 before connecting, and bind() must
# avoid every port held on that address, TIME_WAIT included. On 127.0.0.1 it would share that port
# space with the upstream TIME_WAITs of the other proxies run just before it; its own address keeps
# the interference out (its own TIME_WAITs still count: see README, caveats).
DANTE_EXTERNAL=127.0.0.3
OUT_DIR="$ROOT/bench/results"
PROXY_CPU=0
LOAD_CPU=1
QUICK=0
NICE=0

usage() {
  cat <<EOF
usage: bash bench/run.sh [options]
  --quick             1 round, 2 s windows, 0.5 s warm-up (for checking the harness)
  --rounds N          rounds, each visiting every target once per measurement (default $ROUNDS)
  --seconds S         measured window of each bulk and sessions run (default $BULK_SECONDS)
  --warmup S          unmeasured lead-in of each run (default $WARMUP)
  --idle LIST         idle connection counts (default $IDLE_COUNTS)
  --targets LIST      subset of direct,fwgate,dante,microsocks (default all)
  --fwgate PATH       fwgate binary (default $FWGATE)
  --fwgate-log FILE   where fwgate's stderr (per-session JSON lines) goes (default /dev/null)
  --bench PATH        prebuilt fwgate-bench (default: build it in build-bench/)
  --danted PATH       Dante server (default: sockd or danted from PATH, /usr/sbin)
  --microsocks PATH   microsocks (default: from PATH)
  --dante-external IP Dante's "external" address (default $DANTE_EXTERNAL)
  --nice N            run proxies and load at this nice level (root may go below 0 to stand up
                      to background load on a shared machine; default 0)
  --out DIR           results directory (default bench/results)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) BULK_SECONDS=$2; SESSION_SECONDS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --idle) IDLE_COUNTS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --fwgate) FWGATE=$2; shift ;;
    --fwgate-log) FWGATE_LOG=$2; shift ;;
    --bench) BENCH=$2; shift ;;
    --danted) DANTED=$2; shift ;;
    --microsocks) MICROSOCKS=$2; shift ;;
    --dante-external) DANTE_EXTERNAL=$2; shift ;;
    --nice) NICE=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $QUICK == 1 ]]; then
  ROUNDS=1; BULK_SECONDS=2; SESSION_SECONDS=2; WARMUP=0.5
fi

log() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes we own, and cleanup
declare -a OWNED=()
TMP=$(mktemp -d /tmp/fwgate-bench.XXXXXX)

# stop_tree, cleanup (trapped on EXIT), start_on_cpu, build_bench.
source "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------- binaries
build_bench
if [[ -z $DANTED ]]; then
  DANTED=$(command -v sockd || command -v danted || true)
  [[ -z $DANTED && -x /usr/sbin/sockd ]] && DANTED=/usr/sbin/sockd
  [[ -z $DANTED && -x /usr/sbin/danted ]] && DANTED=/usr/sbin/danted
fi
[[ -z $MICROSOCKS ]] && MICROSOCKS=$(command -v microsocks || true)

# ---------------------------------------------------------------- limits and results
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MAX_IDLE=$(tr ',' '\n' <<<"$IDLE_COUNTS" | sort -n | tail -1)
if (( NOFILE < 2 * MAX_IDLE + 500 )); then
  log "WARNING: fd limit $NOFILE is below 2 x $MAX_IDLE + 500: a proxy cannot hold $MAX_IDLE relayed connections"
fi
mkdir -p "$OUT_DIR"
[[ -f $OUT_DIR/.gitignore ]] || printf 'latest*\n' >"$OUT_DIR/.gitignore"
JSONL="$OUT_DIR/latest.jsonl"
: >"$JSONL"
record() { "$BENCH" note "$@" >>"$JSONL"; }

# ---------------------------------------------------------------- far ends (on the load CPU)
start_on_cpu "$LOAD_CPU" "$TMP/sink.out" "$TMP/sink.err" "$BENCH" sink --lifetime 86400
SINK_PID=$LAST_PID
# Two echo servers. "hold" keeps connections open (idle runs, probes) and on SIGUSR1 closes them
# all first; "close" closes each connection first once it has echoed the 64 bytes of a session.
# Either way the far end closes first, so the TIME_WAIT lands on its own listening port instead
# of on an ephemeral port of the proxy (see README: TIME_WAIT). Each target has its own address
# (same port), so one target's leftovers never share 4-tuples with the next target's connections.
declare -A TARGET_NO=([direct]=1 [fwgate]=2 [dante]=3 [microsocks]=4)
HOLD_PORT=$("$BENCH" free-port)
CLOSE_PORT=$("$BENCH" free-port)
listen_flags() {  # prefix port
  local t
  for t in direct fwgate dante microsocks; do printf -- '--listen %s.%s:%s ' "$1" "${TARGET_NO[$t]}" "$2"; done
}
read -r -a HOLD_LISTEN <<<"$(listen_flags 127.0.10 "$HOLD_PORT")"
read -r -a CLOSE_LISTEN <<<"$(listen_flags 127.0.11 "$CLOSE_PORT")"
start_on_cpu "$LOAD_CPU" "$TMP/echo.out" "$TMP/echo.err" "$BENCH" echo --lifetime 86400 \
  "${HOLD_LISTEN[@]}"
ECHO_PID=$LAST_PID
start_on_cpu "$LOAD_CPU" "$TMP/echo-close.out" "$TMP/echo-close.err" "$BENCH" echo \
  --lifetime 86400 --close-after 64 "${CLOSE_LISTEN[@]}"
ECHO_CLOSE_PID=$LAST_PID
json_port() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }
for _ in $(seq 1 50); do
  [[ -s $TMP/sink.out && -s $TMP/echo.out && -s $TMP/echo-close.out ]] && break
  sleep 0.1
done
SINK_PORT=$(json_port "$TMP/sink.out" port)
STATS_PORT=$(json_port "$TMP/sink.out" stats_port)
[[ -n $SINK_PORT && -n $STATS_PORT ]] && grep -q '"ports"' "$TMP/echo.out" &&
  grep -q '"ports"' "$TMP/echo-close.out" ||
  die "sink/echo did not start: $(cat "$TMP/sink.err" "$TMP/echo.err" "$TMP/echo-close.err")"
SINK="127.0.0.1:$SINK_PORT"
echo_for() { echo "127.0.10.${TARGET_NO[$1]}:$HOLD_PORT"; }
echo_close_for() { echo "127.0.11.${TARGET_NO[$1]}:$CLOSE_PORT"; }
log "sink $SINK (stats $STATS_PORT, pid $SINK_PID), echo 127.0.10.1-4:$HOLD_PORT (pid $ECHO_PID)," \
  "closing echo 127.0.11.1-4:$CLOSE_PORT (pid $ECHO_CLOSE_PID), fd limit $NOFILE"

# ---------------------------------------------------------------- proxies (on the proxy CPU)
IFS=, read -r -a WANTED <<<"$TARGETS"
declare -a ACTIVE=()
declare -A MISSING=()

binary_for() {
  case "$1" in
    fwgate) echo "$FWGATE" ;;
    dante) echo "$DANTED" ;;
    microsocks) echo "$MICROSOCKS" ;;
  esac
}

for t in "${WANTED[@]}"; do
  case "$t" in
    direct) ACTIVE+=(direct) ;;
    fwgate|dante|microsocks)
      bin=$(binary_for "$t")
      if [[ -n $bin && -x $bin ]]; then
        ACTIVE+=("$t")
      else
        MISSING[$t]="binary not found (${bin:-not in PATH}); build it or pass --$([[ $t == dante ]] && echo danted || echo "$t") PATH"
        log "!!! SKIPPING $t: ${MISSING[$t]}"
        record --event skip --tag "target=$t" --tag "reason=${MISSING[$t]}"
      fi
      ;;
    *) die "unknown target $t" ;;
  esac
done

write_dante_conf() {
  local port=$1 dir=$2 priv unpriv
  if [[ $(id -u) == 0 ]]; then priv=root; unpriv=nobody; else priv=$(id -un); unpriv=$priv; fi
  cat >"$dir/sockd.$port.conf" <<EOF
# Written by bench/run.sh. Errors only: per-connection logging would distort the numbers.
logoutput: $dir/dante.$port.log
errorlog: $dir/dante.$port.err
internal: 127.0.0.1 port = $port
external: $DANTE_EXTERNAL
socksmethod: none
clientmethod: none
user.privileged: $priv
user.unprivileged: $unpriv
# 0 = a child process is never retired after N requests (no fork churn during the runs).
child.maxrequests: 0
timeout.negotiate: 30
timeout.io: 0
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: error
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: error
}
EOF
}

# Why the proxy did not come up, with the last lines it wrote (stderr or Dante's log).
PROXY_STATUS=""
proxy_log_tail() {
  if [[ $PROXY_LOG == /dev/null || ! -s $PROXY_LOG ]]; then
    echo "$PROXY_STATUS; no log (its output goes to /dev/null)"
  else
    echo "$PROXY_STATUS; log: $(tail -n 3 "$PROXY_LOG" | tail -c 400 | tr '\n' ' ')"
  fi
}

# Starts one instance of a proxy on a free port; sets PROXY_PID and PROXY_ADDR; 1 if not ready.
start_proxy() {
  local target=$1 port
  port=$("$BENCH" free-port)
  PROXY_ADDR="127.0.0.1:$port"
  PROXY_LOG="$TMP/$target.$port.stderr"
  case "$target" in
    fwgate)
      PROXY_LOG=$FWGATE_LOG
      # The embedded default also serves the control channel (1745) and the Web Proxy (8080):
      # on kernel-picked ports, so that a second instance (the idle runs') can start beside it.
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_LOG" "$FWGATE" gateway --listen "$PROXY_ADDR" \
        --control-listen 127.0.0.1:0 --web-listen 127.0.0.1:0 ;;
    dante)
      write_dante_conf "$port" "$TMP"
      PROXY_LOG="$TMP/dante.$port.log"
      # -N 1: one mother process; the proxy has one CPU, so more would only compete for it.
      start_on_cpu "$PROXY_CPU" /dev/null "$TMP/dante.$port.stderr" \
        "$DANTED" -f "$TMP/sockd.$port.conf" -N 1 -p "$TMP/dante.$port.pid" ;;
    microsocks)
      # microsocks logs every connection to stderr and has no switch to stop it: /dev/null is
      # the cheapest place for those lines (as for fwgate's per-session lines).
      PROXY_LOG=/dev/null
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_LOG" "$MICROSOCKS" -i 127.0.0.1 -p "$port" ;;
  esac
  PROXY_PID=$LAST_PID
  local probe="" rc=0
  for _ in $(seq 1 50); do
    if probe=$("$BENCH" probe --proxy "$PROXY_ADDR" --target "$(echo_for "$target")" --timeout 1 2>&1); then
      return 0
    fi
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PROXY_PID" 2>/dev/null; then
    PROXY_STATUS="running, but no probe session got through in 5 s; last probe: $(grep -o '"error_reasons":{[^}]*}' <<<"$probe")"
  else
    wait "$PROXY_PID" 2>/dev/null || rc=$?
    PROXY_STATUS="process exited with status $rc"
    (( rc > 128 )) && PROXY_STATUS+=" (killed by signal $((rc - 128))$( ((rc == 139)) && echo ", SIGSEGV"))"
  fi
  return 1
}

declare -A PID_OF=() ADDR_OF=()
START_FAILURE=""
ensure_proxy() {
  local target=$1
  [[ $target == direct ]] && return 0
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
}

# ---------------------------------------------------------------- one measurement
# Runs fwgate-bench on the load CPU with a time bound; appends its JSON or a failure record.
measure() {
  local target=$1 kase=$2 bound=$3
  shift 3
  local out="$TMP/run.out" err="$TMP/run.err" rc=0
  timeout -k 5 "$bound" nice -n "$NICE" taskset -c "$LOAD_CPU" "$BENCH" "$@" \
    --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" <"${STDIN_FOR:-/dev/null}" \
    >"$out" 2>"$err" || rc=$?
  if grep -q '^{' "$out"; then
    grep '^{' "$out" >>"$JSONL"
  else
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=exit $rc, no result: $(tail -c 300 "$err" | tr '\n' ' ')"
  fi
  (( rc == 0 )) || log "  $target $kase: exit $rc ($(tail -c 200 "$out" | tr '\n' ' '))"
}

proxy_flags() {
  local target=$1
  if [[ $target == direct ]]; then
    echo "--proxy none"
  else
    echo "--proxy ${ADDR_OF[$target]} --watch-pid ${PID_OF[$target]}"
  fi
}

run_case() {
  local target=$1 kase=$2 flags
  if ! ensure_proxy "$target"; then
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=proxy did not start or did not relay a probe session: $START_FAILURE"
    return
  fi
  read -r -a flags <<<"$(proxy_flags "$target")"
  local bulk_bound sess_bound
  bulk_bound=$(awk "BEGIN{print int($BULK_SECONDS + $WARMUP + 60)}")
  sess_bound=$(awk "BEGIN{print int($SESSION_SECONDS + $WARMUP + 60)}")
  log "round $ROUND: $kase via $target"
  case "$kase" in
    bulk1|bulk8)
      measure "$target" "$kase" "$bulk_bound" bulk "${flags[@]}" --target "$SINK" --far-pid "$SINK_PID" \
        --stats "127.0.0.1:$STATS_PORT" --streams "${kase#bulk}" --seconds "$BULK_SECONDS" \
        --warmup "$WARMUP" ;;
    sess64|sess1)
      measure "$target" "$kase" "$sess_bound" sessions "${flags[@]}" \
        --target "$(echo_close_for "$target")" --await-close --far-pid "$ECHO_CLOSE_PID" \
        --concurrency "${kase#sess}" --seconds "$SESSION_SECONDS" --warmup "$WARMUP" ;;
  esac
}

# Memory per idle connection: a fresh proxy instance, N connections, then it is stopped.
run_idle() {
  local target=$1 n=$2 kase="idle$2"
  [[ $target == direct ]] && return
  log "round $ROUND: $kase via $target"
  if ! start_proxy "$target"; then
    stop_tree "$PROXY_PID"
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=fresh proxy instance did not start: $(proxy_log_tail)"
    return
  fi
  sleep 1  # let a forking server finish its start-up pool before the "before" sample
  measure "$target" "$kase" 600 idle --proxy "$PROXY_ADDR" --watch-pid "$PROXY_PID" \
    --target "$(echo_for "$target")" --connections "$n" --settle 2 --open-timeout 300 \
    --far-pid "$ECHO_PID" --far-close
  stop_tree "$PROXY_PID"
}

# ---------------------------------------------------------------- the run
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${ACTIVE[*]:-none}; rounds $ROUNDS; windows bulk ${BULK_SECONDS}s sessions ${SESSION_SECONDS}s"
IFS=, read -r -a IDLE_NS <<<"$IDLE_COUNTS"
for ROUND in $(seq 1 "$ROUNDS"); do
  # Rotate the starting target each round so no target always runs first or last.
  declare -a ORDER=()
  for i in "${!ACTIVE[@]}"; do
    ORDER+=("${ACTIVE[$(( (i + ROUND - 1) % ${#ACTIVE[@]} ))]}")
  done
  for kase in bulk1 bulk8 sess64 sess1; do
    for target in "${ORDER[@]}"; do run_case "$target" "$kase"; done
  done
  for n in "${IDLE_NS[@]}"; do
    for target in "${ORDER[@]}"; do run_idle "$target" "$n"; done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
version_of() {
  case "$1" in
    fwgate) "$FWGATE" --version 2>/dev/null | head -1 ;;
    dante) "$DANTED" -v 2>/dev/null | head -1 | cut -d. -f1-3 ;;
    microsocks) dpkg-query -W -f 'microsocks ${Version}' microsocks 2>/dev/null || echo "microsocks (version unknown)" ;;
  esac
}
declare -a META=(
  --tag "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  --tag "host=$(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  --tag "pinning=proxy on CPU $PROXY_CPU (taskset, children inherit); load generator, sink and echo on CPU $LOAD_CPU; nice $NICE"
  --tag "rounds=$ROUNDS (targets interleaved round-robin, start rotated per round)"
  --tag "windows=bulk ${BULK_SECONDS}s, sessions ${SESSION_SECONDS}s, each after ${WARMUP}s warm-up; idle held 2s before sampling"
  --tag "idle_counts=$IDLE_COUNTS"
  --tag "targets=$TARGETS"
  --tag "fd_limit=$NOFILE per process (hard $(ulimit -Hn))"
  --tag "loadavg=start $LOAD_START, end $LOAD_END"
  --tag "dante_settings=danted -N 1; external $DANTE_EXTERNAL; child.maxrequests 0; socksmethod/clientmethod none; log: error only; timeout.io 0"
  --tag "addresses=load generator connects from 127.2.0.1-254 in turn (IP_BIND_ADDRESS_NO_PORT); echo servers for direct/fwgate/dante/microsocks on 127.0.10.1-4 (idle) and 127.0.11.1-4 (sessions); sink 127.0.0.1"
  --tag "closing=the echo servers close first (sessions: after the 64-byte echo; idle: on release), so TIME_WAITs land on their listening ports"
)
for t in fwgate dante microsocks; do
  if [[ " ${ACTIVE[*]} " == *" $t "* ]]; then
    META+=(--tag "binary_$t=$(binary_for "$t") ($(version_of "$t"))")
  fi
done
load1=${LOAD_START%% *}
if awk "BEGIN{exit !($load1 > 0.5)}"; then
  META+=(--tag "WARNING=the machine was busy at start (load $load1): numbers are not trustworthy")
fi
record --event meta "${META[@]}"
"$BENCH" report --in "$JSONL" --out "$OUT_DIR/latest.md"
log "wrote $OUT_DIR/latest.md and $JSONL"
