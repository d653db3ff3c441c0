#!/usr/bin/env bash
# What a login costs per method (issue 16): SOCKS 5 sessions one after the other (greeting,
# authentication, CONNECT to a sink, reply, close) through fwgate with no authentication, RFC 1929
# (the gateway remembers a verified password, so a returning user costs a keyed hash, not
# argon2id) and Kerberos (RFC 1961, a realm of the run's own: krb5kdc, a keytab with
# rcmd/127.0.0.1), and side by side microsocks (none, and its own plain user/password) and
# Dante (none; Debian's Dante has no GSS-API and checks passwords through the system's accounts).
# Per method: the session's median and 90th percentile from one client, sessions per second, and
# the proxy's CPU per session (utime + stime of its process tree over the round) as logins per
# CPU-second: one core's worth. One network namespace; the proxy on CPU 0, the client on CPU 1.
#
#   bash bench/auth-methods.sh [ROUNDS] [COUNT]   (default 3 rounds of 500; needs root and a
#                                                  build in build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FWGATE_BUILD:-$repo/build}
rounds=${1:-3}
count=${2:-500}
bench=$build/bench/fwgate-socks-login-bench
fwgate=$build/apps/fwgate/fwgate
for f in "$bench" "$fwgate"; do
  [[ -e $f ]] || { echo "auth-methods: $f is missing (cmake --build build)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "auth-methods: needs root (a network namespace)" >&2; exit 1; }
danted=$(command -v danted || command -v sockd || echo /usr/sbin/danted)
microsocks=$(command -v microsocks || true)
for tool in krb5kdc kdb5_util kadmin.local kinit "$danted" "$microsocks"; do
  command -v "$tool" >/dev/null || { echo "auth-methods: $tool is missing (scripts/setup-deps.sh)" >&2; exit 1; }
done

ns=fwa$$
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    for k in $(ps -o pid= --ppid "$p" 2>/dev/null); do kill "$k" 2>/dev/null || true; done
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "auth-methods: failed; the gateway said:" >&2; tail -20 "$tmp/gateway.log" >&2' ERR
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up

# The realm: its database, a user with a password, the proxy's service key.
source "$repo/bench/realm.sh"
realm=BENCH.TEST
password=bench-$$
realm_create "$tmp" "$realm" 127.0.0.1
realm_user alice "$password"
realm_service rcmd/127.0.0.1 "$tmp/gateway.keytab"
realm_start "$ns"
pids+=("$REALM_PID")
realm_kinit "$ns" alice "$password"

printf '%s\n' "$password" | "$fwgate" passwd --users-file "$tmp/users" --stdin alice >/dev/null
cat >"$tmp/gateway.toml" <<TOML
[gateway]
users_file = "$tmp/users"
[kerberos]
keytab = "$tmp/gateway.keytab"
local_realms = ["$realm"]
[[listeners]]
address = "127.0.0.1"
port = 1080
methods = ["none"]
[[listeners]]
address = "127.0.0.1"
port = 1081
methods = ["password"]
[[listeners]]
address = "127.0.0.1"
port = 1082
methods = ["kerberos"]
[control]
listen = ["127.0.0.1:1745"]
[web_proxy]
listen = []
[limits]
max_sessions = 65536
[log]
sessions = "$tmp/sessions.jsonl"
[[rules]]
name = "bench"
action = "allow"
sources = ["loopback"]
destinations = ["any"]
TOML
in_ns taskset -c 0 "$fwgate" gateway --config "$tmp/gateway.toml" --state-dir "$tmp/state" \
  >"$tmp/gateway.log" 2>&1 &
pids+=($!)
gateway=$!
in_ns taskset -c 0 "$microsocks" -i 127.0.0.1 -p 1090 >/dev/null 2>&1 &
pids+=($!)
microsocks_none=$!
in_ns taskset -c 0 "$microsocks" -i 127.0.0.1 -p 1091 -u alice -P "$password" >/dev/null 2>&1 &
pids+=($!)
microsocks_password=$!
cat >"$tmp/sockd.conf" <<EOF
logoutput: $tmp/dante.log
internal: 127.0.0.1 port = 1092
external: lo
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
child.maxrequests: 0
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
in_ns taskset -c 0 "$danted" -f "$tmp/sockd.conf" -N 1 -p "$tmp/dante.pid" >/dev/null 2>&1 &
pids+=($!)
dante=$!
in_ns python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9000)); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' &
pids+=($!)
for _ in $(seq 100); do
  ok=1
  for port in 1080 1081 1082 1090 1091 1092 9000; do
    in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || ok=0
  done
  ((ok)) && break
  sleep 0.1
done

# CPU ticks (utime + stime) of a process and its children.
ticks() {
  local total=0 p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    read -r -a f <"/proc/$p/stat" 2>/dev/null || continue
    total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

declare -A port_of=([fwgate-none]=1080 [fwgate-password]=1081 [fwgate-kerberos]=1082
  [microsocks-none]=1090 [microsocks-password]=1091 [dante-none]=1092)
declare -A pid_of=([fwgate-none]=$gateway [fwgate-password]=$gateway [fwgate-kerberos]=$gateway
  [microsocks-none]=$microsocks_none [microsocks-password]=$microsocks_password [dante-none]=$dante)
modes=(fwgate-none fwgate-password fwgate-kerberos microsocks-none microsocks-password dante-none)
declare -A p50 p90 rate cpu
for ((r = 1; r <= rounds; r++)); do
  for mode in "${modes[@]}"; do
    before=$(ticks "${pid_of[$mode]}")
    line=$(in_ns env BENCH_USER=alice BENCH_PASSWORD="$password" taskset -c 1 "$bench" \
      "${mode#*-}" 127.0.0.1 "${port_of[$mode]}" 127.0.0.1 9000 "$count")
    after=$(ticks "${pid_of[$mode]}")
    # µs of the proxy's CPU per session (the warm-up sessions included: 20 more than COUNT).
    per=$(awk -v t=$((after - before)) -v hz="$hz" -v n=$((count + 20)) 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "round $r $mode: $line cpu_us=$per" >&2
    p50[$mode]+="$(sed -E 's/.*"p50_us":([0-9.]+).*/\1/' <<<"$line") "
    p90[$mode]+="$(sed -E 's/.*"p90_us":([0-9.]+).*/\1/' <<<"$line") "
    rate[$mode]+="$(sed -E 's/.*"per_second":([0-9.]+).*/\1/' <<<"$line") "
    cpu[$mode]+="$per "
  done
done
grep -q '"auth":"kerberos","bytes_down":0,"bytes_up":0.*"outcome":"succeeded".*"user":"alice"' \
  "$tmp/sessions.jsonl" ||
  { echo "auth-methods: no Kerberos login of alice in the gateway's log" >&2; exit 1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo
echo "| $count SOCKS 5 sessions one after the other, median of $rounds rounds | p50 µs | p90 µs | sessions/s, one client | proxy CPU µs per session | logins per CPU-second |"
echo "|---|---|---|---|---|---|"
for mode in "${modes[@]}"; do
  c=$(median <<<"${cpu[$mode]}")
  per_core=$(awk -v c="$c" 'BEGIN { if (c > 0) printf "%.0f", 1e6 / c; else print "—" }')
  echo "| ${mode/-/ } | $(median <<<"${p50[$mode]}") | $(median <<<"${p90[$mode]}") | $(median <<<"${rate[$mode]}") | $c | $per_core |"
done
