#!/usr/bin/env bash
# What the firewall client's hooks cost a long-lived program as its remoted connections pile up:
# getpeername() of a local connection and of the first remoted one, a local connect(), and a
# 64-byte write()+read(), after 0, 1,000 and 10,000 remoted connections made in the same process
# (the first kept open), against the same calls without the library. Needs root: three network
# namespaces (client, gateway with IP forwarding off, external), a fwgate gateway between them and
# a sink on the external side that closes every connection. Rounds interleave with and without.
#
#   bash bench/client-table.sh [ROUNDS]        (default 3; needs a build in build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FWGATE_BUILD:-$repo/build}
rounds=${1:-3}
bench=$build/bench/fwgate-client-table-bench
lib=$build/src/client/libfwgate-client.so
fwgate=$build/apps/fwgate/fwgate
for f in "$bench" "$lib" "$fwgate"; do
  [[ -e $f ]] || { echo "client-table: $f is missing (cmake --build build)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "client-table: needs root (network namespaces)" >&2; exit 1; }

tag=fwb$$
c=${tag}c g=${tag}g e=${tag}e
source "$repo/bench/topology.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  topology_delete "$tag" "${pids[@]}"
  rm -rf "$tmp"
}
trap cleanup EXIT

topology_create "$tag" 10.254

topology_gateway "$tag" 10.254 "$tmp" "$fwgate"
ip netns exec "$e" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.254.2.2", 9000)); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' &
pids+=($!)
for _ in $(seq 100); do
  ip netns exec "$c" bash -c 'exec 3<>/dev/tcp/10.254.1.1/1745' 2>/dev/null && break
  sleep 0.1
done

cpu=$(($(nproc) > 1 ? 1 : 0))
run() {
  local mode=$1
  local env=()
  [[ $mode == with ]] && env=(LD_PRELOAD="$lib" FWGATE_SERVER=10.254.1.1:1745 FWGATE_CACHE="$tmp/cache"
    FWGATE_CONFIG_DIR="$tmp" FWGATE_USER_CONFIG="$tmp/none.ini")
  ip netns exec "$c" env "${env[@]}" taskset -c "$cpu" "$bench" 10.254.1.2 10.254.2.2:9000 \
    0,1000,10000 30 2000
}

declare -A samples
keys=(getpeername_local_ns getpeername_remoted_ns connect_local_ns write_read_64_ns)
for ((r = 1; r <= rounds; r++)); do
  for mode in without with; do
    while read -r line; do
      n=$(sed -E 's/.*"remoted":([0-9]+).*/\1/' <<<"$line")
      ((n <= 1)) && n=0  # the checkpoint before any more: the kept connection only
      [[ $(sed -E 's/.*"remoted_peer_right":([a-z]+).*/\1/' <<<"$line") == true || $mode == without ]] ||
        { echo "client-table: the first remoted connection's peer is wrong: $line" >&2; exit 1; }
      for k in "${keys[@]}"; do
        samples[$mode,$n,$k]+="$(sed -E "s/.*\"$k\":(-?[0-9]+).*/\1/" <<<"$line") "
      done
      echo "round $r $mode: $line" >&2
    done < <(run "$mode")
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
label() {
  case $1 in
    getpeername_local_ns) echo "getpeername() of a local connection" ;;
    getpeername_remoted_ns) echo "getpeername() of the first remoted connection" ;;
    connect_local_ns) echo "socket()+connect()+close() to this host's address (LAT lookup)" ;;
    write_read_64_ns) echo "64-byte write()+read() over a socketpair" ;;
  esac
}
echo
echo "| call (ns) | without the library | with it, 0 remoted | 1,000 remoted | 10,000 remoted | ratio at 10,000 vs without | 10,000 vs 0 |"
echo "|---|---|---|---|---|---|---|"
for k in "${keys[@]}"; do
  without=$(median <<<"${samples[without,0,$k]}")
  w0=$(median <<<"${samples[with,0,$k]:-}")
  w1=$(median <<<"${samples[with,1000,$k]}")
  w10=$(median <<<"${samples[with,10000,$k]}")
  [[ -z $w0 ]] && w0=-1
  awk -v l="$(label "$k")" -v a="$without" -v b0="$w0" -v b1="$w1" -v b10="$w10" 'BEGIN {
    base = a > 0 ? sprintf("%d", a) : "—"
    ratio = a > 0 ? sprintf("×%.3f", b10 / a) : "—"
    flat = b0 > 0 ? sprintf("×%.3f", b10 / b0) : "—"
    printf "| %s | %s | %d | %d | %d | %s | %s |\n", l, base, b0, b1, b10, ratio, flat }'
done
echo
echo "Medians over $rounds rounds (each the median of 30 batches of 2,000 calls; 201 for connects),"
echo "pinned to CPU $cpu. With the library, checkpoint 0 has one remoted connection: the one kept."
