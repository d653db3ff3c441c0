#!/usr/bin/env bash
# What the firewall client costs a program for a LOCAL destination. First connect() + close() to a
# listener on this host, with and without libfwgate-client.so preloaded, interleaved round by
# round, pinned to one CPU. Two destinations: the host's own non-loopback address (local because it
# is on a directly connected route: the library's LAT lookup) and 127.0.0.1 (always local: no
# lookup at all). The library is configured with a gateway that is not there, so it loads its
# configuration (routes, locallat.txt) and decides "local" without ever talking to a gateway.
# Then local I/O through the hooks that UDP through the gateway needs (read/write, sendto/recvfrom):
# 64-byte round trips over a socketpair and over UDP on 127.0.0.1.
#
#   bash bench/client-overhead.sh [ROUNDS]        (default 5; needs a build in build/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FWGATE_BUILD:-$repo/build}
rounds=${1:-5}
bench=$build/bench/fwgate-connect-bench
iobench=$build/bench/fwgate-io-bench
lib=$build/src/client/libfwgate-client.so
for f in "$bench" "$iobench" "$lib"; do
  [[ -e $f ]] || { echo "client-overhead: $f is missing (cmake --build build)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

own=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
targets=(127.0.0.1)
[[ -n $own ]] && targets=("$own" 127.0.0.1)
cpu=$(($(nproc) > 1 ? 1 : 0))

preloaded() {
  env LD_PRELOAD="$lib" FWGATE_SERVER=127.0.0.1:9 FWGATE_CACHE="$tmp/cache" \
    FWGATE_CONFIG_DIR="$tmp" FWGATE_USER_CONFIG="$tmp/none.ini" "$@"
}

declare -A samples
for ((r = 1; r <= rounds; r++)); do
  for target in "${targets[@]}"; do
    for mode in without with; do
      if [[ $mode == with ]]; then
        line=$(preloaded taskset -c "$cpu" "$bench" "$target" 40 1000)
      else
        line=$(taskset -c "$cpu" "$bench" "$target" 40 1000)
      fi
      ns=$(sed -E 's/.*"ns_per_connect_p50":([0-9]+).*/\1/' <<<"$line")
      samples[$target,$mode]+="$ns "
      echo "round $r: $target $mode: $ns ns" >&2
    done
  done
  for mode in without with; do
    if [[ $mode == with ]]; then
      line=$(preloaded taskset -c "$cpu" "$iobench" 40 10000)
    else
      line=$(taskset -c "$cpu" "$iobench" 40 10000)
    fi
    pair=$(sed -E 's/.*"ns_per_pair_roundtrip_p50":([0-9]+).*/\1/' <<<"$line")
    udp=$(sed -E 's/.*"ns_per_udp_roundtrip_p50":([0-9]+).*/\1/' <<<"$line")
    samples[pair,$mode]+="$pair "
    samples[udp,$mode]+="$udp "
    echo "round $r: io $mode: socketpair $pair ns, udp $udp ns" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| destination | without the library (ns/connect) | with it (ns/connect) | ratio | difference |"
echo "|---|---|---|---|---|"
for target in "${targets[@]}"; do
  without=$(median <<<"${samples[$target,without]}")
  with=$(median <<<"${samples[$target,with]}")
  label=$target
  [[ $target == "$own" ]] && label="$target (this host, directly connected route: LAT lookup)"
  [[ $target == 127.0.0.1 ]] && label="127.0.0.1 (loopback: always local)"
  awk -v l="$label" -v a="$without" -v b="$with" \
    'BEGIN {printf "| %s | %d | %d | ×%.3f | %+d ns |\n", l, a, b, b / a, b - a}'
done
echo
echo "Medians over $rounds rounds of 40 batches × 1000 socket()+connect()+close(), pinned to CPU $cpu."
echo
echo "| local I/O, 64-byte round trip | without the library (ns) | with it (ns) | ratio | difference |"
echo "|---|---|---|---|---|"
for kind in pair udp; do
  without=$(median <<<"${samples[$kind,without]}")
  with=$(median <<<"${samples[$kind,with]}")
  label="write()+read() over a socketpair"
  [[ $kind == udp ]] && label="sendto()+recvfrom() over UDP on 127.0.0.1"
  awk -v l="$label" -v a="$without" -v b="$with" \
    'BEGIN {printf "| %s | %d | %d | ×%.3f | %+d ns |\n", l, a, b, b / a, b - a}'
done
echo
echo "Medians over $rounds rounds of 40 batches × 10000 round trips, pinned to CPU $cpu."

# Then the same calls in a long-lived program as its remoted connections pile up (needs root:
# it builds network namespaces and a gateway).
echo
if [[ $(id -u) == 0 ]]; then
  bash "$repo/bench/client-table.sh" "$rounds"
else
  echo "(the table after 0, 1,000 and 10,000 remoted connections needs root: bench/client-table.sh)"
fi
