#!/usr/bin/env bash
# What the kernel-level firewall client costs (issue 17): `fwgate run --kernel` (eBPF on a cgroup,
# the helper relaying with splice) against `fwgate run` (the preload library: the program's own
# socket is the control connection) and against no client at all, in one run.
#
#   remote  sequential connect + 64-byte echo + close to an echo server on the external side,
#           through a fwgate gateway (IP forwarding off): preload and kernel. In kernel mode
#           connect() returns once the helper on 127.0.0.1 has the connection, before the gateway
#           is asked, so the time that compares is until the destination's echo is back.
#   local   the same to an echo server on the internal segment (in the LAT): direct, preload and
#           kernel. The kernel mode's programs leave it alone (no helper on the way).
#   bulk    one stream of 1 MiB writes for 5 s to a sink on the external side, rate at the sink
#           (fwgate-bench bulk): preload and kernel.
#
# Three network namespaces (client, gateway, external) on 198.18.0.0/15 (RFC 2544, which
# fwgate-bench's servers take beside loopback); rounds interleave the modes; the client
# side runs on CPU 1, the gateway and the servers where the scheduler puts them.
#
#   bash bench/kernel-client.sh [ROUNDS] [COUNT]    (default 5 rounds of 400; needs root and a
#                                                    build in build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FWGATE_BUILD:-$repo/build}
rounds=${1:-5}
count=${2:-400}
bench=$build/bench/fwgate-remote-connect-bench
loadgen=$build/bench/fwgate-bench
lib=$build/src/client/libfwgate-client.so
fwgate=$build/apps/fwgate/fwgate
for f in "$bench" "$loadgen" "$lib" "$fwgate"; do
  [[ -e $f ]] || { echo "kernel-client: $f is missing (cmake --build build)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "kernel-client: needs root (namespaces, eBPF)" >&2; exit 1; }

tag=fwkc$$
c=${tag}c g=${tag}g e=${tag}e
source "$repo/bench/topology.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  topology_delete "$tag" "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "kernel-client: failed; the gateway said:" >&2; tail -20 "$tmp/gateway.log" >&2' ERR

topology_create "$tag" 198.18

topology_gateway "$tag" 198.18 "$tmp" "$fwgate"
ip netns exec "$e" "$loadgen" echo --listen 198.18.2.2:9000 >/dev/null 2>&1 &
pids+=($!)
ip netns exec "$e" "$loadgen" sink --listen 198.18.2.2:9001 --stats 198.18.2.2:9002 >/dev/null 2>&1 &
pids+=($!)
ip netns exec "$g" "$loadgen" echo --listen 198.18.1.1:9100 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  ip netns exec "$c" bash -c 'exec 3<>/dev/tcp/198.18.1.1/1745 && exec 4<>/dev/tcp/198.18.1.1/9100' \
    2>/dev/null && ip netns exec "$g" bash -c 'exec 3<>/dev/tcp/198.18.2.2/9000' 2>/dev/null && break
  sleep 0.1
done

client_env=(FWGATE_SERVER=198.18.1.1:1745 FWGATE_CACHE="$tmp/cache" FWGATE_CONFIG_DIR="$tmp"
  FWGATE_USER_CONFIG="$tmp/none.ini" HOME="$tmp" FWGATE_KERBEROS=no)
# The gateway's LAT in the cache first, as an installed client has it (fwgate detect).
ip netns exec "$c" env "${client_env[@]}" "$fwgate" detect >/dev/null

cpu=$(($(nproc) > 1 ? 1 : 0))
# run MODE: one measurement, one JSON line on stdout.
run() {
  local mode=$1 wrap=()
  case $mode in
    *-preload) wrap=("$fwgate" run --) ;;
    *-kernel) wrap=("$fwgate" run --kernel --) ;;
  esac
  case $mode in
    remote-*) ip netns exec "$c" env "${client_env[@]}" taskset -c "$cpu" "${wrap[@]}" \
      "$bench" 198.18.2.2 9000 "$count" 20 64 ;;
    local-*) ip netns exec "$c" env "${client_env[@]}" taskset -c "$cpu" "${wrap[@]}" \
      "$bench" 198.18.1.1 9100 "$count" 20 64 ;;
    bulk-*) ip netns exec "$c" env "${client_env[@]}" taskset -c "$cpu" "${wrap[@]}" \
      "$loadgen" bulk --proxy none --source none --blocking-connect --expect any \
      --target 198.18.2.2:9001 --stats 198.18.2.2:9002 --streams 1 --seconds 5 --warmup 1 |
      tail -1 ;;
  esac
}

modes=(remote-preload remote-kernel local-direct local-preload local-kernel bulk-preload bulk-kernel)
: >"$tmp/results.jsonl"
for ((r = 1; r <= rounds; r++)); do
  # Interleaved, the order turned each round, so that a change of load hits every mode alike.
  for ((i = 0; i < ${#modes[@]}; i++)); do
    mode=${modes[$(((i + r) % ${#modes[@]}))]}
    line=$(run "$mode")
    echo "{\"mode\":\"$mode\",\"round\":$r,\"result\":$line}" >>"$tmp/results.jsonl"
  done
  echo "kernel-client: round $r of $rounds done" >&2
done

python3 - "$tmp/results.jsonl" "$rounds" "$count" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["mode"], []).append(r["result"])
def med(mode, key):
    return statistics.median(x[key] for x in by[mode])
print(f"{sys.argv[2]} rounds; latency rows: {sys.argv[3]} sequential connect + 64-byte echo + close, median of the rounds' values\n")
print("| remote destination (through the gateway) | p50 µs | p90 µs | per s, one thread | p50 vs preload |")
print("|---|---|---|---|---|")
base = med("remote-preload", "p50_us")
for mode, name in (("remote-preload", "preload library (fwgate run)"), ("remote-kernel", "kernel (fwgate run --kernel)")):
    print(f"| {name} | {med(mode, 'p50_us'):.0f} | {med(mode, 'p90_us'):.0f} | {med(mode, 'per_second'):.0f} | ×{med(mode, 'p50_us') / base:.3f} |")
print("\n| local destination (internal segment, in the LAT) | p50 µs | p90 µs | per s, one thread | p50 vs direct |")
print("|---|---|---|---|---|")
base = med("local-direct", "p50_us")
for mode, name in (("local-direct", "direct (no client)"), ("local-preload", "preload library"), ("local-kernel", "kernel")):
    print(f"| {name} | {med(mode, 'p50_us'):.0f} | {med(mode, 'p90_us'):.0f} | {med(mode, 'per_second'):.0f} | ×{med(mode, 'p50_us') / base:.3f} |")
def gbps(mode):
    vals = [x["gbytes_per_s"] for x in by[mode]]
    return statistics.median(vals), min(vals), max(vals)
print("\n| bulk, 1 stream, 1 MiB writes, to the external side | GB/s (min–max) | vs preload |")
print("|---|---|---|")
base = gbps("bulk-preload")[0]
for mode, name in (("bulk-preload", "preload library"), ("bulk-kernel", "kernel")):
    m, lo, hi = gbps(mode)
    print(f"| {name} | {m:.3f} ({lo:.3f}–{hi:.3f}) | ×{m / base:.3f} |")
PY
