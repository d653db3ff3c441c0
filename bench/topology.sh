# shellcheck shell=bash
# Sourced by the benchmarks that measure the firewall client through a gateway
# (control-channel.sh, kernel-client.sh): three network namespaces and their teardown.
#
# topology_create TAG NET: namespaces TAGc (the client), TAGg (the gateway, IP forwarding off)
# and TAGe (the external host), linked by veth pairs, the client's default route through the
# gateway:  TAGc NET.1.2 -- NET.1.1 TAGg NET.2.1 -- NET.2.2 TAGe.
topology_create() {
  local tag=$1 net=$2 n pair
  local c=${tag}c g=${tag}g e=${tag}e
  for n in "$c" "$g" "$e"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add "${tag}cg" netns "$c" type veth peer name "${tag}gc" netns "$g"
  ip link add "${tag}ge" netns "$g" type veth peer name "${tag}eg" netns "$e"
  ip -n "$c" addr add "$net.1.2/24" dev "${tag}cg"
  ip -n "$g" addr add "$net.1.1/24" dev "${tag}gc"
  ip -n "$g" addr add "$net.2.1/24" dev "${tag}ge"
  ip -n "$e" addr add "$net.2.2/24" dev "${tag}eg"
  for pair in "$c:${tag}cg" "$g:${tag}gc" "$g:${tag}ge" "$e:${tag}eg"; do
    ip -n "${pair%%:*}" link set "${pair#*:}" up
  done
  ip -n "$c" route add default via "$net.1.1"
  ip netns exec "$g" sysctl -qw net.ipv4.ip_forward=0
}

# topology_delete TAG PID...: stops the PIDs (and waits for them), deletes the namespaces.
topology_delete() {
  local tag=$1 p n
  shift
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for n in "${tag}c" "${tag}g" "${tag}e"; do ip netns del "$n" 2>/dev/null || true; done
}

# topology_gateway TAG NET DIR FWGATE [TOML]: the gateway of these benchmarks, started in TAGg,
# its PID added to the caller's `pids`: SOCKS without authentication on NET.1.1:1080, the control
# channel on NET.1.1:1745, NET.1.0/24 the firewall clients' network and allowed everything, the
# session log in DIR/sessions.jsonl, its output in DIR/gateway.log, its key under DIR/state.
# TOML (sections of the caller's own, such as [gateway] and [kerberos]) comes first.
topology_gateway() {
  local tag=$1 net=$2 dir=$3 fwgate=$4 extra=${5:-}
  cat >"$dir/gateway.toml" <<TOML
$extra
[[listeners]]
address = "$net.1.1"
port = 1080
methods = ["none"]

[limits]
max_sessions = 65536

[log]
sessions = "$dir/sessions.jsonl"

[control]
listen = ["$net.1.1:1745"]

[firewall_client]
require_definition = false

[networks.internal]
ranges = ["$net.1.0/24"]
firewall_clients = true

[[rules]]
name = "internal clients"
action = "allow"
sources = ["internal"]
TOML
  ip netns exec "${tag}g" "$fwgate" gateway --config "$dir/gateway.toml" --state-dir "$dir/state" \
    >"$dir/gateway.log" 2>&1 &
  pids+=($!)
}
