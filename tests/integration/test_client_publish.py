"""A published listen on a dynamic port (PublishBindTcp, [[firewall_client.publish_listens]]),
with real programs in the namespace topology of test_client.py (internal host / gateway with IP
forwarding off / external host):

- a program with no remoted connection binds 0.0.0.0:0, listens and announces its address: it is
  the gateway's external address and a port of the dynamic range; the external host connects
  there and is echoed; a peer the rules do not allow is refused; the gateway logs the listen and
  both peers;
- without a publish_listens entry, or with one naming another program, the gateway refuses (and
  logs why) and the bind stays on the internal host: nothing listens on the gateway.
"""

from __future__ import annotations

import subprocess

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import DNS, EXTERNAL, client_env, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)

pytestmark = pytest.mark.fwgate_only

GATEWAY_OUTSIDE = "203.0.113.1"

# Binds the wildcard address (IPv4, or IPv6 with argv[2] = "6") and port 0, listens, says where,
# echoes argv[1] connections.
PUBLISHER = r"""
import socket, sys, time
v6 = len(sys.argv) > 2 and sys.argv[2] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
s.bind(("::" if v6 else "0.0.0.0", 0))
s.listen(4)
print("listening", *s.getsockname()[:2], flush=True)
s.settimeout(30)
for i in range(int(sys.argv[1])):
    c, peer = s.accept()
    c.settimeout(10)
    data = c.recv(100)
    c.sendall(b"echo " + data)
    c.close()
    print("accepted", peer[0].removeprefix("::ffff:"), flush=True)
print("done", flush=True)
"""

# Connects to argv[1]:argv[2] once from each source address that follows.
KNOCK = r"""
import socket, sys
results = []
for source in sys.argv[3:]:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10,
                                     source_address=(source, 0))
        c.settimeout(10)
        c.sendall(b"knock from " + source.encode())
        results.append(c.recv(200).decode() or "closed")
        c.close()
    except OSError as e:
        results.append(repr(e))
print("|".join(results))
"""

PEER_RULES = [{"name": "published peers", "action": "allow", "sources": ["internal"],
               "destinations": ["partner"], "commands": ["bind"]}]
PARTNER = '\n[networks.partner]\nranges = ["203.0.113.7"]\n'
SETTING = '\n[firewall_client.applications.python3]\nPublishBindTcp = 1\n'


def publish_entry(app: str) -> str:
    return f'\n[[firewall_client.publish_listens]]\nname = "lobby"\napplications = ["{app}"]\n'


def start_publisher(topo, connections: int, family: str = "4", **env) -> subprocess.Popen:
    prog = subprocess.Popen(["ip", "netns", "exec", topo.ns["internal"], FWGATE_BIN, "run", "--",
                             fwit.PYTHON, "-c", PUBLISHER, str(connections), family],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=client_env(topo, **env))
    topo.procs.append(prog)
    return prog


def first_line(prog) -> list[str]:
    line = fwit.read_pipe(prog.stdout, 200, 20, until=b"\n").decode()
    if not line.startswith("listening "):
        prog.kill()
        pytest.fail(f"{line!r} {prog.stderr.read().decode(errors='replace')}")
    return line.split()


def gateway_listeners(topo) -> list[str]:
    cp = topo.run_in("gateway", ["ss", "-Htln"], timeout=10)
    return [line.split()[3] for line in cp.stdout.decode().splitlines() if len(line.split()) > 3]


@pytest.mark.parametrize("family", ["4", "6"])
def test_published_listen_on_a_dynamic_port(topo, gateway, family):
    gw = start_gateway(gateway, topo, rules=PEER_RULES, extra=SETTING + publish_entry("python3") + PARTNER)
    prog = start_publisher(topo, 1, family, FWGATE_DEBUG="2")
    _, host, port = first_line(prog)
    # The gateway's external address (IPv4-mapped on an IPv6 socket) and a port of its dynamic
    # range ([bind] dynamic_ports).
    expected = GATEWAY_OUTSIDE if family == "4" else f"::ffff:{GATEWAY_OUTSIDE}"
    assert host == expected and 1024 <= int(port) <= 5000, (host, port)
    assert f"{GATEWAY_OUTSIDE}:{port}" in gateway_listeners(topo), gateway_listeners(topo)
    # .53 is no partner: refused by the rules; the partner is echoed.
    cp = topo.run_in("external", [fwit.PYTHON, "-c", KNOCK, GATEWAY_OUTSIDE, port, DNS, EXTERNAL],
                     timeout=60)
    results = cp.stdout.decode().strip().split("|")
    assert len(results) == 2, out(cp)
    assert "echo" not in results[0], results
    assert results[1] == f"echo knock from {EXTERNAL}", (results, out(cp))
    rest = fwit.read_pipe(prog.stdout, 4096, 30, until=b"done\n").decode()
    assert f"accepted {EXTERNAL}" in rest, rest
    assert prog.wait(timeout=30) == 0, prog.stderr.read().decode(errors="replace")
    refused = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "refused")
    assert refused["resolved"].startswith(f"{DNS}:") and "denied by default-deny" in refused["error"], refused
    assert refused["outcome"] == "refused-peer" and refused["denial"]["peer"] is True, refused
    accepted = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "succeeded")
    assert accepted["resolved"].startswith(f"{EXTERNAL}:") and accepted["rule"] == "published peers", accepted
    assert accepted["bound"] == f"{GATEWAY_OUTSIDE}:{port}" and accepted["bytes_up"] > 0, accepted
    listen = gw.wait_session(lambda s: s.get("command") == "listen-publish")
    assert listen["rule"] == "lobby" and listen["bound"] == f"{GATEWAY_OUTSIDE}:{port}", listen
    assert listen["application"] == "python3", listen
    assert listen["requested"] == ("0.0.0.0:0" if family == "4" else "[::]:0"), listen
    # The port is closed again once the program is gone.
    assert f"{GATEWAY_OUTSIDE}:{port}" not in gateway_listeners(topo)


@pytest.mark.parametrize("case", ["not configured", "another application"])
def test_a_publish_the_gateway_refuses_stays_local(topo, gateway, case):
    if case == "not configured":
        # The setting comes from the gateway, which names no program in publish_listens.
        gw = start_gateway(gateway, topo, rules=PEER_RULES, extra=SETTING + PARTNER)
    else:
        # The setting is the user's own; the gateway's entry names another program.
        gw = start_gateway(gateway, topo, rules=PEER_RULES, extra=publish_entry("lobby") + PARTNER)
        (topo.tmp / "home").mkdir(exist_ok=True)
        (topo.tmp / "home" / "client.ini").write_text("[python3]\nPublishBindTcp = 1\n")
    before = gateway_listeners(topo)
    prog = start_publisher(topo, 1, FWGATE_DEBUG="1")
    _, host, port = first_line(prog)
    # Local: the program's own wildcard address and an ephemeral port of the internal host.
    assert host == "0.0.0.0" and int(port) > 0, (host, port)
    listen = gw.wait_session(lambda s: s.get("command") == "listen-publish")
    assert listen["outcome"] == "denied" and listen["denial"]["reason"] == "not-published", listen
    assert "publish_listens" in listen["error"] and "python3" in listen["error"], listen
    assert gateway_listeners(topo) == before, (before, gateway_listeners(topo))
    # The program is reachable where it listens: on the internal host.
    cp = topo.run_in("internal", [fwit.PYTHON, "-c", KNOCK, "127.0.0.1", port, "127.0.0.1"], timeout=30)
    assert cp.stdout.decode().strip() == "echo knock from 127.0.0.1", out(cp)
    assert prog.wait(timeout=30) == 0, prog.stderr.read().decode(errors="replace")
    # FWGATE_DEBUG=1 tells why the bind stayed local: the gateway's own words.
    assert "publish_listens" in prog.stderr.read().decode(errors="replace")
