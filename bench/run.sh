#!/usr/bin/env bash
# bench/run.sh: fwgate against Dante sockd, microsocks and a direct connection, in one run on
# loopback, interleaved round-robin: SOCKS5 bulk, sessions and idle memory; fwgate's workers 1
# and 2 unpinned; the firewall client's path (libfwgate-client.so against Dante's socksify);
# SOCKS5 UDP ASSOCIATE. Prints a Markdown table and writes bench/results/latest.md.
# See bench/README.md for what is measured and how to read it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ROUNDS=5
BULK_SECONDS=5
SESSION_SECONDS=5
WARMUP=1
IDLE_COUNTS="5000,9000"
TARGETS="direct,fwgate,dante,microsocks"
ALL_CASES="bulk1,bulk8,sess64,sess1,fwc-connect,fwc-bulk1,fwc-bulk8,udp64,udp1400,sess64-w1,sess64-w2,idle"
CASES=$ALL_CASES
FWGATE="$ROOT/build/apps/fwgate/fwgate"
FWGATE_LOG=/dev/null
BENCH=""
DANTED=""
MICROSOCKS=""
CLIENT_LIB=""
SOCKSIFY=""
NETNS=1""
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
  --cases LIST        subset of $ALL_CASES
                      (default all; "idle" is both idle counts)
  --fwgate PATH       fwgate binary (default $FWGATE)
  --client-lib PATH   libfwgate-client.so for the firewall client's rows (default: the one
                      'fwgate run' takes beside the fwgate binary: ../../src/client/ in a build
                      tree, ../lib/fwgate/ when installed)
  --socksify PATH     Dante's socksify for Dante's column of those rows (default: from PATH)
  --no-netns          stay in this network namespace (the firewall client's rows are then
                      skipped: they need destinations on lo that are not loopback, see README)
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

ORIGINAL_ARGS=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) BULK_SECONDS=$2; SESSION_SECONDS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --idle) IDLE_COUNTS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --cases) CASES=$2; shift ;;
    --fwgate) FWGATE=$2; shift ;;
    --client-lib) CLIENT_LIB=$2; shift ;;
    --socksify) SOCKSIFY=$2; shift ;;
    --no-netns) NETNS=0 ;;
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

# ---------------------------------------------------------------- a network namespace of its own
# The firewall client's rows need destinations that the client library treats as remote: not
# loopback, not on a directly connected route, not in the LAT. The run moves into a network
# namespace of its own (as root), where it puts 198.18.0.1-3/32 (RFC 2544's benchmarking range)
# on lo: /32 addresses add no route to /proc/net/route, so for the library they are remote, and
# they are reached over the same loopback device as everything else. The other rows run there
# too, on 127.0.0.0/8 as before; nothing of the host's network is touched, and the namespace
# goes away with the last process of the run.
IN_NETNS=${FWGATE_BENCH_IN_NETNS:-0}
NETNS_PROBLEM=""
if [[ $NETNS == 1 && $IN_NETNS == 0 ]]; then
  if [[ $(id -u) == 0 ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
    unshare --net true 2>/dev/null; then
    exec env FWGATE_BENCH_IN_NETNS=1 unshare --net -- bash "${BASH_SOURCE[0]}" "${ORIGINAL_ARGS[@]}"
  fi
  NETNS_PROBLEM="no network namespace of its own (needs root, unshare and ip)"
elif [[ $NETNS == 0 ]]; then
  NETNS_PROBLEM="--no-netns"
fi
REMOTE_PREFIX=198.18.0
if [[ $IN_NETNS == 1 ]]; then
  ip link set lo up || die "ip link set lo up failed in the run's network namespace"
  for n in 1 2 3; do
    ip addr add "$REMOTE_PREFIX.$n/32" dev lo || die "ip addr add $REMOTE_PREFIX.$n/32 dev lo failed"
  done
fi

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
[[ -z $SOCKSIFY ]] && SOCKSIFY=$(command -v socksify || true)
if [[ -z $CLIENT_LIB ]]; then
  # Where 'fwgate run' looks beside its executable (docs/firewall-client.md); passed to it
  # explicitly as FWGATE_CLIENT_LIB, so that the library measured is the one named in Setup.
  for candidate in "$(dirname "$FWGATE")/../lib/fwgate/libfwgate-client.so" \
    "$(dirname "$FWGATE")/../../src/client/libfwgate-client.so"; do
    if [[ -f $candidate ]]; then CLIENT_LIB=$(realpath "$candidate"); break; fi
  done
fi

# Cases of this run, and the ones that cannot run here (a loud SKIPPED in their cells).
has_case() { [[ ",$CASES," == *",$1,"* ]]; }
for c in ${CASES//,/ }; do
  [[ ",$ALL_CASES," == *",$c,"* ]] || die "unknown case $c (known: $ALL_CASES)"
done
declare -A CASE_SKIP=()  # "target case" -> reason
skip_case() {  # target case reason; only for the cases of this run
  has_case "$2" || return 0
  CASE_SKIP["$1 $2"]=$3
}
FWGATE_WORKERS=0
if [[ -x $FWGATE ]] && "$FWGATE" gateway --help 2>/dev/null | grep -q -- '--workers'; then
  FWGATE_WORKERS=1
fi
for c in fwc-connect fwc-bulk1 fwc-bulk8; do
  if [[ -n $NETNS_PROBLEM ]]; then
    for t in direct fwgate dante; do skip_case "$t" "$c" "$NETNS_PROBLEM: no destination the firewall client would remote"; done
  fi
  [[ -n $CLIENT_LIB && -f $CLIENT_LIB ]] ||
    skip_case fwgate "$c" "libfwgate-client.so not found beside $FWGATE (pass --client-lib PATH)"
  [[ -n $SOCKSIFY && -x $SOCKSIFY ]] ||
    skip_case dante "$c" "socksify not found (Debian: apt-get install dante-client; or --socksify PATH)"
done
for c in sess64-w1 sess64-w2; do
  ((FWGATE_WORKERS)) || skip_case fwgate "$c" "this fwgate has no --workers ($FWGATE gateway --help)"
done

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
for key in "${!CASE_SKIP[@]}"; do
  log "!!! SKIPPING ${key% *} ${key#* }: ${CASE_SKIP[$key]}"
  record --event case_skipped --tag "target=${key% *}" --tag "case=${key#* }" \
    --tag "reason=${CASE_SKIP[$key]}"
done

# ---------------------------------------------------------------- far ends (on the load CPU)
# The firewall client's rows reach the sink on port 443 and the closing echo server on port 80 of
# 198.18.0.1 / .2 / .3 (direct / fwgate / Dante): ports fwgate's built-in protocol definitions
# cover (HTTPS, HTTP), as a remoted connect needs with the default require_definition = true.
declare -a SINK_REMOTE=() ECHO_REMOTE=()
if [[ $IN_NETNS == 1 ]]; then
  for n in 1 2 3; do
    SINK_REMOTE+=(--listen "$REMOTE_PREFIX.$n:443")
    ECHO_REMOTE+=(--listen "$REMOTE_PREFIX.$n:80")
  done
fi
start_on_cpu "$LOAD_CPU" "$TMP/sink.out" "$TMP/sink.err" "$BENCH" sink --lifetime 86400 \
  --listen 127.0.0.1:0 "${SINK_REMOTE[@]}"
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
  --lifetime 86400 --close-after 64 "${CLOSE_LISTEN[@]}" "${ECHO_REMOTE[@]}"
ECHO_CLOSE_PID=$LAST_PID
# UDP echo for the UDP ASSOCIATE rows: one port on 127.0.13.1-4, one address per target.
UDP_PORT=$("$BENCH" free-port)
read -r -a UDP_LISTEN <<<"$(listen_flags 127.0.13 "$UDP_PORT")"
start_on_cpu "$LOAD_CPU" "$TMP/udp-echo.out" "$TMP/udp-echo.err" "$BENCH" udp-echo \
  --lifetime 86400 "${UDP_LISTEN[@]}"
UDP_ECHO_PID=$LAST_PID
json_port() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }
for _ in $(seq 1 50); do
  [[ -s $TMP/sink.out && -s $TMP/echo.out && -s $TMP/echo-close.out && -s $TMP/udp-echo.out ]] &&
    break
  sleep 0.1
done
SINK_PORT=$(json_port "$TMP/sink.out" port)
STATS_PORT=$(json_port "$TMP/sink.out" stats_port)
[[ -n $SINK_PORT && -n $STATS_PORT ]] && grep -q '"ports"' "$TMP/echo.out" &&
  grep -q '"ports"' "$TMP/echo-close.out" && grep -q '"ports"' "$TMP/udp-echo.out" ||
  die "sink/echo did not start: $(cat "$TMP/sink.err" "$TMP/echo.err" "$TMP/echo-close.err" "$TMP/udp-echo.err")"
SINK="127.0.0.1:$SINK_PORT"
echo_for() { echo "127.0.10.${TARGET_NO[$1]}:$HOLD_PORT"; }
echo_close_for() { echo "127.0.11.${TARGET_NO[$1]}:$CLOSE_PORT"; }
udp_echo_for() { echo "127.0.13.${TARGET_NO[$1]}:$UDP_PORT"; }
remote_echo_for() { echo "$REMOTE_PREFIX.${TARGET_NO[$1]}:80"; }
remote_sink_for() { echo "$REMOTE_PREFIX.${TARGET_NO[$1]}:443"; }
log "sink $SINK (stats $STATS_PORT, pid $SINK_PID), echo 127.0.10.1-4:$HOLD_PORT (pid $ECHO_PID)," \
  "closing echo 127.0.11.1-4:$CLOSE_PORT (pid $ECHO_CLOSE_PID), UDP echo 127.0.13.1-4:$UDP_PORT" \
  "(pid $UDP_ECHO_PID), fd limit $NOFILE"

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
  command: connect udpassociate
  log: error
}
# The echo server's datagrams back to the client (the UDP ASSOCIATE rows).
socks pass {
  from: 0.0.0.0/0 to: 127.0.0.0/8
  command: udpreply
  log: error
}
EOF
}

# Dante's client configuration for socksify (SOCKS_CONF): the firewall client's destinations go
# through the Dante instance on port $1, 127.0.0.0/8 directly. No logoutput line: the client library's default is to
# log nothing (a logoutput file would get several info lines per connect).
write_socksify_conf() {
  cat >"$TMP/dante-client.$1.conf" <<EOF
# Written by bench/run.sh for socksify (Dante's client library).
route {
  from: 0.0.0.0/0 to: $REMOTE_PREFIX.0/24 via: 127.0.0.1 port = $1
  proxyprotocol: socks_v5
  method: none
  protocol: tcp
}
# Without the auto-added routes, a destination no route names is refused: the sink's counter.
route {
  from: 0.0.0.0/0 to: 127.0.0.0/8 via: direct
  protocol: tcp
}
EOF
  echo "$TMP/dante-client.$1.conf"
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

# Starts one instance of a proxy on a free port; sets PROXY_PID, PROXY_ADDR and PROXY_CONTROL
# (fwgate's control channel); 1 if not ready. fwgate-w1 / fwgate-w2: fwgate with --workers 1 / 2,
# not pinned (the workers rows).
start_proxy() {
  local target=$1 port
  port=$("$BENCH" free-port)
  PROXY_ADDR="127.0.0.1:$port"
  PROXY_LOG="$TMP/$target.$port.stderr"
  PROXY_CONTROL=""
  case "$target" in
    fwgate)
      PROXY_LOG=$FWGATE_LOG
      PROXY_CONTROL="127.0.0.1:$("$BENCH" free-port)"
      # The embedded default also serves the control channel (1745) and the Web Proxy (8080):
      # on free ports, so that a second instance (the idle runs') can start beside it. The
      # control channel's port is the firewall client's rows' FWGATE_SERVER.
      start_on_cpu "$PROXY_CPU" /dev/null "$PROXY_LOG" "$FWGATE" gateway --listen "$PROXY_ADDR" \
        --control-listen "$PROXY_CONTROL" --web-listen 127.0.0.1:0 --state-dir "$TMP/state" ;;
    fwgate-w1|fwgate-w2)
      PROXY_LOG=$FWGATE_LOG
      # Not under taskset: the scheduler may put its workers on either CPU (the load side stays
      # on CPU $LOAD_CPU).
      nice -n "$NICE" "$FWGATE" gateway --workers "${target#fwgate-w}" --listen "$PROXY_ADDR" \
        --control-listen 127.0.0.1:0 --web-listen 127.0.0.1:0 --state-dir "$TMP/state" >/dev/null 2>"$PROXY_LOG" &
      LAST_PID=$!
      OWNED+=("$LAST_PID") ;;
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
    if probe=$("$BENCH" probe --proxy "$PROXY_ADDR" --target "$(echo_for "${target%-w?}")" --timeout 1 2>&1); then
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

declare -A PID_OF=() ADDR_OF=() CONTROL_OF=()
START_FAILURE=""
# ensure_proxy KEY: KEY is a target, or fwgate-w1 / fwgate-w2 (reported as fwgate).
ensure_proxy() {
  local key=$1
  [[ $key == direct ]] && return 0
  if [[ -n ${PID_OF[$key]:-} ]] && kill -0 "${PID_OF[$key]}" 2>/dev/null; then return 0; fi
  if [[ -n ${PID_OF[$key]:-} ]]; then
    record --event run_failed --tag "target=${key%-w?}" --tag "case=-" --tag "round=$ROUND" \
      --tag "reason=proxy process $key ${PID_OF[$key]} had exited; restarted"
  fi
  if ! start_proxy "$key"; then
    stop_tree "$PROXY_PID"
    START_FAILURE=$(proxy_log_tail)
    return 1
  fi
  PID_OF[$key]=$PROXY_PID
  ADDR_OF[$key]=$PROXY_ADDR
  CONTROL_OF[$key]=$PROXY_CONTROL
}

# ---------------------------------------------------------------- one measurement
# Runs fwgate-bench on the load CPU with a time bound; appends its JSON or a failure record.
# WRAP (an array, usually empty) goes between taskset and fwgate-bench: 'fwgate run --' or
# socksify, for the firewall client's rows.
declare -a WRAP=()
measure() {
  local target=$1 kase=$2 bound=$3
  shift 3
  local out="$TMP/run.out" err="$TMP/run.err" rc=0
  timeout -k 5 "$bound" nice -n "$NICE" taskset -c "$LOAD_CPU" "${WRAP[@]}" "$BENCH" "$@" \
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
  local key=$1
  if [[ $key == direct ]]; then
    echo "--proxy none"
  else
    echo "--proxy ${ADDR_OF[$key]} --watch-pid ${PID_OF[$key]}"
  fi
}

# The firewall client's rows: the load generator connects to 198.18.0.N itself (--proxy none);
# under 'fwgate run' the library remotes each connect through fwgate's control channel, under
# socksify Dante's library through the Dante instance; direct has no wrapper. Each connection's
# kernel peer is checked (--expect): a path that silently went direct would be counted as an
# error. Sets WRAP and CLIENT_FLAGS (no --source: Dante's library turns a bind() before connect()
# into a SOCKS BIND request).
client_path() {
  local target=$1
  WRAP=()
  CLIENT_FLAGS=(--source none)
  case "$target" in
    direct) CLIENT_FLAGS+=(--expect direct) ;;
    fwgate)
      mkdir -p "$TMP/fwc/etc"
      : >"$TMP/fwc/user.ini"
      # A configuration of the run's own: no /etc/fwgate, no ~/.config or ~/.cache of the user.
      WRAP=(env "FWGATE_CLIENT_LIB=$CLIENT_LIB" "FWGATE_CONFIG_DIR=$TMP/fwc/etc"
        "FWGATE_USER_CONFIG=$TMP/fwc/user.ini" "FWGATE_CACHE=$TMP/fwc/client.cache"
        "$FWGATE" run --server "${CONTROL_OF[fwgate]}" --)
      CLIENT_FLAGS+=(--expect relayed --watch-pid "${PID_OF[fwgate]}") ;;
    dante)
      # SOCKS_AUTOADD_LANROUTES=no: Dante's client otherwise adds a direct route for every
      # address of this host's interfaces (198.18.0.N on lo included) ahead of the configured one.
      WRAP=(env "SOCKS_CONF=$(write_socksify_conf "${ADDR_OF[dante]##*:}")"
        SOCKS_AUTOADD_LANROUTES=no "$SOCKSIFY")
      CLIENT_FLAGS+=(--expect relayed --watch-pid "${PID_OF[dante]}") ;;
  esac
}

run_case() {
  local target=$1 kase=$2 flags key=$1
  [[ $kase == sess64-w* ]] && key="fwgate-w${kase#sess64-w}"
  if [[ -n ${CASE_SKIP["$target $kase"]:-} ]]; then return; fi
  if ! ensure_proxy "$key"; then
    record --event run_failed --tag "target=$target" --tag "case=$kase" --tag "round=$ROUND" \
      --tag "reason=proxy did not start or did not relay a probe session: $START_FAILURE"
    return
  fi
  read -r -a flags <<<"$(proxy_flags "$key")"
  local bulk_bound sess_bound
  bulk_bound=$(awk "BEGIN{print int($BULK_SECONDS + $WARMUP + 60)}")
  sess_bound=$(awk "BEGIN{print int($SESSION_SECONDS + $WARMUP + 60)}")
  log "round $ROUND: $kase via $target"
  case "$kase" in
    fwc-connect)
      client_path "$target"
      measure "$target" "$kase" "$sess_bound" connects "${CLIENT_FLAGS[@]}" \
        --target "$(remote_echo_for "$target")" --await-close --far-pid "$ECHO_CLOSE_PID" \
        --seconds "$SESSION_SECONDS" --warmup "$WARMUP"
      WRAP=() ;;
    fwc-bulk1|fwc-bulk8)
      client_path "$target"
      measure "$target" "$kase" "$bulk_bound" bulk --blocking-connect "${CLIENT_FLAGS[@]}" \
        --target "$(remote_sink_for "$target")" --far-pid "$SINK_PID" \
        --stats "127.0.0.1:$STATS_PORT" --streams "${kase#fwc-bulk}" --seconds "$BULK_SECONDS" \
        --warmup "$WARMUP"
      WRAP=() ;;
    udp64|udp1400)
      measure "$target" "$kase" "$sess_bound" udp "${flags[@]}" --target "$(udp_echo_for "$target")" \
        --far-pid "$UDP_ECHO_PID" --payload "${kase#udp}" --window 64 \
        --seconds "$SESSION_SECONDS" --warmup "$WARMUP" ;;
    sess64-w1|sess64-w2)
      measure "$target" "$kase" "$sess_bound" sessions "${flags[@]}" \
        --target "$(echo_close_for "$target")" --await-close --far-pid "$ECHO_CLOSE_PID" \
        --concurrency 64 --seconds "$SESSION_SECONDS" --warmup "$WARMUP" ;;
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
    has_case "$kase" || continue
    for target in "${ORDER[@]}"; do run_case "$target" "$kase"; done
  done
  # The firewall client's path (no client library for microsocks) and UDP ASSOCIATE (which
  # microsocks does not implement).
  for kase in fwc-connect fwc-bulk1 fwc-bulk8 udp64 udp1400; do
    has_case "$kase" || continue
    for target in "${ORDER[@]}"; do
      [[ $target == microsocks ]] || run_case "$target" "$kase"
    done
  done
  # fwgate with 1 and 2 workers, unpinned; which goes first alternates by round.
  if [[ " ${ACTIVE[*]} " == *" fwgate "* ]]; then
    WORKER_CASES=(sess64-w1 sess64-w2)
    (( ROUND % 2 == 0 )) && WORKER_CASES=(sess64-w2 sess64-w1)
    for kase in "${WORKER_CASES[@]}"; do
      has_case "$kase" && run_case fwgate "$kase"
    done
  fi
  for n in "${IDLE_NS[@]}"; do
    has_case idle || continue
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
  --tag "pinning=proxy on CPU $PROXY_CPU (taskset, children inherit); load generator, sink and echo on CPU $LOAD_CPU; nice $NICE; the workers rows' fwgate (--workers 1 / 2) not pinned, its load side still on CPU $LOAD_CPU"
  --tag "rounds=$ROUNDS (targets interleaved round-robin, start rotated per round)"
  --tag "windows=bulk ${BULK_SECONDS}s, sessions ${SESSION_SECONDS}s, each after ${WARMUP}s warm-up; idle held 2s before sampling"
  --tag "idle_counts=$IDLE_COUNTS"
  --tag "targets=$TARGETS"
  --tag "cases=$CASES"
  --tag "fd_limit=$NOFILE per process (hard $(ulimit -Hn))"
  --tag "loadavg=start $LOAD_START, end $LOAD_END"
  --tag "dante_settings=danted -N 1; external $DANTE_EXTERNAL; child.maxrequests 0; socksmethod/clientmethod none; log: error only; timeout.io 0; commands connect, udpassociate (and udpreply to 127.0.0.0/8)"
  --tag "addresses=load generator connects from 127.2.0.1-254 in turn (IP_BIND_ADDRESS_NO_PORT); echo servers for direct/fwgate/dante/microsocks on 127.0.10.1-4 (idle) and 127.0.11.1-4 (sessions); sink 127.0.0.1"
  --tag "closing=the echo servers close first (sessions: after the 64-byte echo; idle: on release), so TIME_WAITs land on their listening ports"
  --tag "network=$( ((IN_NETNS)) && echo "a network namespace of the run's own (unshare --net), lo only, with $REMOTE_PREFIX.1-3/32 on lo for the firewall client's rows" || echo "the host's ($NETNS_PROBLEM)")"
  --tag "client_path=connects to $REMOTE_PREFIX.1/.2/.3 (direct/fwgate/dante), echo port 80 (64-byte echo, then the echo server closes), sink port 443; fwgate: fwgate run --server <control channel> with FWGATE_CLIENT_LIB=${CLIENT_LIB:-none}; dante: socksify ${SOCKSIFY:-none} (SOCKS_AUTOADD_LANROUTES=no, SOCKS_CONF routing $REMOTE_PREFIX.0/24 via the Dante instance); each connection's kernel peer checked (relayed, or direct for direct)"
  --tag "udp=SOCKS5 UDP ASSOCIATE from 127.0.0.1 to the UDP echo server on 127.0.13.1-4 (direct: no proxy), 64 datagrams in flight, each echo checked; a datagram not echoed in 1 s is lost (an error) and replaced"
)
if [[ -n $SOCKSIFY && -x $SOCKSIFY ]]; then
  META+=(--tag "binary_socksify=$SOCKSIFY ($(dpkg-query -W -f 'dante-client ${Version}' dante-client 2>/dev/null || echo "version unknown"))")
fi
if ((FWGATE_WORKERS)); then
  META+=(--tag "fwgate_workers=the workers rows pass --workers 1 / --workers 2 (unpinned); the pinned rows run fwgate's default ([gateway] workers = 0: one per CPU the process may run on, so 1 under taskset -c $PROXY_CPU)")
fi
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
