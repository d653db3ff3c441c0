#!/usr/bin/env bash
# What the encrypted control channel costs a remoted connect (issue 16): sequential blocking
# connect()+close() from a program under the preload library, through a fwgate gateway to a sink
# on the external side, with the channel in clear (fwgate run --clear) and encrypted (the agent:
# the one fwgate run serves, and a host's agent already running), anonymous and with a password
# (the gateway remembers a verified password, so repeated logins cost a keyed hash, not
# argon2id), and with alice's Kerberos ticket (fwgate run's agent: a token per connection,
# bound to its channel; a realm of the run's own, bench/realm.sh, its KDC on the client's side).
# And the round trip itself: a plain TCP connect to the gateway. Three network namespaces
# (client, gateway with IP forwarding off, external); rounds interleave the modes.
#
#   bash bench/control-channel.sh [ROUNDS] [COUNT]    (default 3 rounds of 400; needs root and a
#                                                      build in build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FWGATE_BUILD:-$repo/build}
rounds=${1:-3}
count=${2:-400}
bench=$build/bench/fwgate-remote-connect-bench
lib=$build/src/client/libfwgate-client.so
fwgate=$build/apps/fwgate/fwgate
for f in "$bench" "$lib" "$fwgate"; do
  [[ -e $f ]] || { echo "control-channel: $f is missing (cmake --build build)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "control-channel: needs root (network namespaces)" >&2; exit 1; }

tag=fwk$$
c=${tag}c g=${tag}g e=${tag}e
source "$repo/bench/topology.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  topology_delete "$tag" "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "control-channel: failed; the gateway said:" >&2; tail -20 "$tmp/gateway.log" >&2; tail -5 "$tmp/agent.log" >&2' ERR

topology_create "$tag" 10.253

password=bench-$$
printf '%s\n' "$password" | "$fwgate" passwd --users-file "$tmp/users" --stdin alice >/dev/null
source "$repo/bench/realm.sh"
realm_create "$tmp" BENCH.TEST 10.253.1.2
realm_user alice "$password"
realm_service fwgate/10.253.1.1 "$tmp/gateway.keytab"
realm_start "$c"
pids+=("$REALM_PID")
realm_kinit "$c" alice "$password"
topology_gateway "$tag" 10.253 "$tmp" "$fwgate" "[gateway]
users_file = \"$tmp/users\"

[kerberos]
keytab = \"$tmp/gateway.keytab\"
local_realms = [\"BENCH.TEST\"]
"
ip netns exec "$e" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.253.2.2", 9000)); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' &
pids+=($!)
for _ in $(seq 100); do
  ip netns exec "$c" bash -c 'exec 3<>/dev/tcp/10.253.1.1/1745' 2>/dev/null &&
    ip netns exec "$g" bash -c 'exec 3<>/dev/tcp/10.253.2.2/9000' 2>/dev/null && break
  sleep 0.1
done

# Kerberos only where a mode asks for it (KRB5CCNAME holds alice's ticket for every mode).
client_env=(FWGATE_SERVER=10.253.1.1:1745 FWGATE_CACHE="$tmp/cache" FWGATE_CONFIG_DIR="$tmp"
  FWGATE_USER_CONFIG="$tmp/none.ini" HOME="$tmp" FWGATE_KERBEROS=no)
# A host's agent, already running (as /run/fwgate/agent.sock would be).
ip netns exec "$c" env "${client_env[@]}" "$fwgate" agent --socket "$tmp/agent/agent.sock" \
  >"$tmp/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -S $tmp/agent/agent.sock ]] && break; sleep 0.05; done

cpu=$(($(nproc) > 1 ? 1 : 0))
run() {
  local mode=$1 env=("${client_env[@]}")
  case $mode in
    *password*) env+=(FWGATE_USER=alice FWGATE_PASSWORD="$password") ;;
    *kerberos*) env+=(FWGATE_KERBEROS=yes) ;;
  esac
  case $mode in
    tcp) ip netns exec "$c" taskset -c "$cpu" "$bench" 10.253.1.1 1080 "$count" ;;
    clear*) ip netns exec "$c" env "${env[@]}" taskset -c "$cpu" "$fwgate" run --clear -- \
      "$bench" 10.253.2.2 9000 "$count" ;;
    run-agent*) ip netns exec "$c" env "${env[@]}" taskset -c "$cpu" "$fwgate" run -- \
      "$bench" 10.253.2.2 9000 "$count" ;;
    host-agent*) ip netns exec "$c" env "${env[@]}" FWGATE_AGENT_SOCKET="$tmp/agent/agent.sock" \
      LD_PRELOAD="$lib" taskset -c "$cpu" "$bench" 10.253.2.2 9000 "$count" ;;
  esac
}

modes=(tcp clear run-agent host-agent clear-password host-agent-password run-agent-kerberos)
declare -A p50 p90 rate
for ((r = 1; r <= rounds; r++)); do
  for mode in "${modes[@]}"; do
    line=$(run "$mode")
    echo "round $r $mode: $line" >&2
    p50[$mode]+="$(sed -E 's/.*"p50_us":([0-9.]+).*/\1/' <<<"$line") "
    p90[$mode]+="$(sed -E 's/.*"p90_us":([0-9.]+).*/\1/' <<<"$line") "
    rate[$mode]+="$(sed -E 's/.*"per_second":([0-9.]+).*/\1/' <<<"$line") "
  done
done
grep -q '"channel":"encrypted"' "$tmp/sessions.jsonl" ||
  { echo "control-channel: no encrypted session in the gateway's log" >&2; exit 1; }
grep -q '"channel":"clear"' "$tmp/sessions.jsonl" ||
  { echo "control-channel: no clear session in the gateway's log" >&2; exit 1; }
grep -q '"auth":"kerberos".*"user":"alice"' "$tmp/sessions.jsonl" ||
  { echo "control-channel: no Kerberos login of alice in the gateway's log" >&2; exit 1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
label() {
  case $1 in
    tcp) echo "TCP connect to the gateway (one round trip, no fwgate client)" ;;
    clear) echo "remoted connect, channel in clear (fwgate run --clear)" ;;
    run-agent) echo "remoted connect, encrypted (fwgate run's own agent)" ;;
    host-agent) echo "remoted connect, encrypted (a host's agent running)" ;;
    clear-password) echo "remoted connect with a password, in clear" ;;
    host-agent-password) echo "remoted connect with a password, encrypted (host's agent)" ;;
    run-agent-kerberos) echo "remoted connect with a Kerberos ticket, encrypted (fwgate run's agent)" ;;
  esac
}
base=$(median <<<"${p50[clear]}")
rtt=$(median <<<"${p50[tcp]}")
echo
echo "| $count sequential connects, median of $rounds rounds | p50 µs | p90 µs | connects/s, one thread | p50 vs clear | p50 − clear, in round trips |"
echo "|---|---|---|---|---|---|"
for mode in "${modes[@]}"; do
  a=$(median <<<"${p50[$mode]}")
  b=$(median <<<"${p90[$mode]}")
  s=$(median <<<"${rate[$mode]}")
  awk -v l="$(label "$mode")" -v a="$a" -v b="$b" -v s="$s" -v base="$base" -v rtt="$rtt" -v m="$mode" 'BEGIN {
    ratio = m == "tcp" ? "—" : sprintf("×%.3f", a / base)
    trips = m == "tcp" ? "—" : sprintf("%+.2f", (a - base) / rtt)
    printf "| %s | %.0f | %.0f | %.0f | %s | %s |\n", l, a, b, s, ratio, trips }'
done
echo
