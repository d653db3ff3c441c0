"""Packet filters in the kernel: `fwgate filters show|apply|flush|stats` and the gateway's own
table inet fwgate, in the namespace topology of test_client.py (never the host's own tables).

From the external host: a real TCP and UDP exchange with ports a filter admits, and the same
with ports it does not (dropped, not refused, and counted); answers to the gateway host's own
connections come back (established); a SOCKS BIND port is admitted while it is open and removed
when it closes; flush leaves a foreign table alone; a reload changes the table; a bad filter is
rejected by `config check` with its key path."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import EXTERNAL, MARKER, fwrun, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)
from test_secondary import FTP_RULES
from test_secondary import ftp  # noqa: F401 (pyftpdlib on the external host, a fixture)

pytestmark = pytest.mark.fwgate_only

GATEWAY_OUTSIDE = "203.0.113.1"

# Echo servers on the gateway host: TCP 4000 and 4001, UDP 5000 and 5001 (fixed ports of the
# topology's gateway namespace, which nothing else on the machine shares).
ECHO = """
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(c.recv(100)); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(100); s.sendto(d, a)
for p in (4000, 4001): threading.Thread(target=tcp, args=(p,), daemon=True).start()
for p in (5000, 5001): threading.Thread(target=udp, args=(p,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait(300)
"""

# From the external host: one TCP and one UDP exchange; prints "ok" or the failure.
PROBE = """
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
try:
    if kind == "tcp":
        s = socket.create_connection(("203.0.113.1", port), timeout=2)
        s.sendall(b"ping"); print("ok" if s.recv(10) == b"ping" else "wrong")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
        s.sendto(b"ping", ("203.0.113.1", port)); print("ok" if s.recv(10) == b"ping" else "wrong")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(type(e).__name__)
"""


def filters_config(topo, filters: str, outbound: str = "accept") -> str:
    return (f'[packet_filters]\nenabled = true\ninterfaces = ["{topo.link["ge"]}"]\n'
            f'outbound = "{outbound}"\n{filters}')


ADMIT_4000_5000 = """
[[packet_filters.filter]]
name = "tcp-4000"
protocol = "tcp"
direction = "inbound"
local_port = 4000
remote_host = "203.0.113.0/24"

[[packet_filters.filter]]
name = "udp-5000"
protocol = "udp"
direction = "inbound"
local_port = 5000
"""


def fwgate_in(topo, role: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return topo.run_in(role, [FWGATE_BIN, *args], timeout=timeout)


def nft_in(topo, *args: str) -> subprocess.CompletedProcess:
    return topo.run_in("gateway", ["nft", *args], timeout=20)


def probe(topo, kind: str, port: int) -> str:
    cp = topo.run_in("external", [fwit.PYTHON, "-c", PROBE, kind, str(port)], timeout=20)
    return cp.stdout.decode().strip()


def stats(topo) -> dict[str, int]:
    cp = fwgate_in(topo, "gateway", "filters", "stats")
    assert cp.returncode == 0, out(cp)
    rows = {}
    for line in cp.stdout.decode().splitlines()[1:]:
        m = re.match(r"^(.*\S)\s+(\d+)\s+(\d+)$", line)
        assert m, line
        rows[m.group(1)] = int(m.group(2))
    return rows


@pytest.fixture
def echo(topo):
    proc = topo.spawn("gateway", [fwit.PYTHON, "-c", ECHO])
    assert fwit.read_pipe(proc.stdout, 16, 10, until=b"\n").strip() == b"ready"
    return proc


def config_file(topo, text: str):
    path = topo.tmp / "filters.toml"
    path.write_text(text)
    return path


def wait_applied(gw) -> None:
    """The start-up line comes after the listeners' lines start_gateway waits for."""
    deadline = time.monotonic() + 10 * fwit.SLOW
    while "packet filters: applied" not in gw.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_static_filters_in_the_kernel(topo, echo):
    fwit.require_tool("nft")
    # Before: everything reaches the gateway host.
    assert probe(topo, "tcp", 4001) == "ok" and probe(topo, "udp", 5001) == "ok"
    cfg = config_file(topo, filters_config(topo, ADMIT_4000_5000))
    show = fwgate_in(topo, "gateway", "filters", "show", "-c", str(cfg))
    assert show.returncode == 0 and "table inet fwgate" in show.stdout.decode(), out(show)
    assert 'comment "tcp-4000"' in show.stdout.decode(), out(show)
    applied = fwgate_in(topo, "gateway", "filters", "apply", "-c", str(cfg))
    assert applied.returncode == 0, out(applied)
    # Admitted ports answer; the others are dropped (a timeout, not a refusal).
    assert probe(topo, "tcp", 4000) == "ok"
    assert probe(topo, "udp", 5000) == "ok"
    assert probe(topo, "tcp", 4001) == "timeout"
    assert probe(topo, "udp", 5001) == "timeout"
    # The gateway host's own connections get their answers back (established traffic).
    cp = topo.run_in("gateway", ["curl", "-sS", "--max-time", "5", f"http://{EXTERNAL}/"], timeout=20)
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    counters = stats(topo)
    # A filter admits the first packet; the rest of the exchange is established traffic.
    assert counters["tcp-4000"] >= 1 and counters["udp-5000"] >= 1, counters
    assert counters["not admitted"] >= 2, counters
    # Applying again replaces the table in one transaction: still one table, same behaviour.
    assert fwgate_in(topo, "gateway", "filters", "apply", "-c", str(cfg)).returncode == 0
    tables = nft_in(topo, "list", "tables").stdout.decode()
    assert tables.count("table inet fwgate") == 1, tables
    assert probe(topo, "tcp", 4000) == "ok" and probe(topo, "tcp", 4001) == "timeout"


def test_flush_leaves_a_foreign_table_alone(topo, echo):
    fwit.require_tool("nft")
    assert nft_in(topo, "add", "table", "inet", "foreign").returncode == 0
    assert nft_in(topo, "add", "chain", "inet", "foreign", "keep").returncode == 0
    cfg = config_file(topo, filters_config(topo, ADMIT_4000_5000))
    assert fwgate_in(topo, "gateway", "filters", "apply", "-c", str(cfg)).returncode == 0
    tables = nft_in(topo, "list", "tables").stdout.decode()
    assert "table inet fwgate" in tables and "table inet foreign" in tables, tables
    cp = fwgate_in(topo, "gateway", "filters", "flush")
    assert cp.returncode == 0, out(cp)
    tables = nft_in(topo, "list", "tables").stdout.decode()
    assert "table inet fwgate" not in tables and "table inet foreign" in tables, tables
    assert "chain keep" in nft_in(topo, "list", "table", "inet", "foreign").stdout.decode()
    assert probe(topo, "tcp", 4001) == "ok"  # nothing of ours is left
    # Flushing again is not an error; stats without the table says so.
    assert fwgate_in(topo, "gateway", "filters", "flush").returncode == 0
    cp = fwgate_in(topo, "gateway", "filters", "stats")
    assert cp.returncode == 1 and "no table inet fwgate" in cp.stderr.decode(), out(cp)


def test_a_bad_filter_is_rejected_with_its_key_path(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[packet_filters]\nenabled = true\ninterfaces = ["eth1"]\n\n'
                    '[[packet_filters.filter]]\nprotocol = "tcp"\ndirection = "inbound"\n'
                    'local_port = "5000-4000"\n\n'
                    '[[packet_filters.filter]]\nprotocol = "icmp"\ndirection = "sideways"\n')
    cp = subprocess.run([FWGATE_BIN, "config", "check", str(path)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
    text = out(cp)
    assert cp.returncode == 1, text
    assert "packet_filters.filter[0].local_port" in text and "packet_filters.filter[1].direction" in text, text
    cp = subprocess.run([FWGATE_BIN, "filters", "show", "-c", str(path)], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
    assert cp.returncode == 1 and not cp.stdout, out(cp)


BIND_CLIENT = """
import socket, struct, sys
gw, peer = sys.argv[1], sys.argv[2]
s = socket.create_connection((gw, int(sys.argv[3])), 10)
s.sendall(b"\\x05\\x01\\x00"); assert s.recv(2) == b"\\x05\\x00"
s.sendall(b"\\x05\\x02\\x00\\x01" + socket.inet_aton(peer) + struct.pack("!H", 0))
r = s.recv(10); print("bound", socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0], flush=True)
r = s.recv(10); print("peer", r[1], flush=True)
print("data", s.recv(100).decode(), flush=True)
"""


def dynamic_ports(topo) -> str:
    return nft_in(topo, "list", "set", "inet", "fwgate", "dynamic_tcp").stdout.decode()


def test_the_gateway_applies_its_table_and_admits_bind_ports_while_open(topo, gateway, echo):
    fwit.require_tool("nft")
    gw = start_gateway(gateway, topo, extra="\n" + filters_config(topo, ADMIT_4000_5000))
    wait_applied(gw)
    assert "packet filters: applied table inet fwgate (2 filters" in gw.stderr(), gw.tail()
    assert probe(topo, "tcp", 4001) == "timeout" and probe(topo, "tcp", 4000) == "ok"
    client = topo.spawn("internal", [fwit.PYTHON, "-c", BIND_CLIENT, topo.gw_inside, EXTERNAL, str(gw.port)])
    line = fwit.read_pipe(client.stdout, 200, 15, until=b"\n").decode()
    m = re.match(r"bound (\S+) (\d+)", line)
    assert m and m.group(1) == GATEWAY_OUTSIDE, line
    port = int(m.group(2))
    assert re.search(rf"\b{port}\b", dynamic_ports(topo)), dynamic_ports(topo)
    connect = (f"import socket\ns=socket.create_connection(('{GATEWAY_OUTSIDE}',{port}),3)\n"
               "s.sendall(b'through the filter')\nimport time; time.sleep(0.5)\n")
    cp = topo.run_in("external", [fwit.PYTHON, "-c", connect], timeout=20)
    assert cp.returncode == 0, out(cp)
    rest = client.communicate(timeout=15)[0].decode()
    assert "peer 0" in rest and "data through the filter" in rest, rest
    # The BIND is over: its port leaves the set.
    deadline = time.monotonic() + 10
    while re.search(rf"\b{port}\b", dynamic_ports(topo)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not re.search(rf"\b{port}\b", dynamic_ports(topo)), dynamic_ports(topo)
    assert stats(topo)["dynamic"] >= 1

    # A reload with another filter set replaces the table: now 4001 is admitted, 4000 not.
    text = open(gw.config_path).read().replace("local_port = 4000", "local_port = 4001")
    gw.write_config(text)
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "SIGHUP: packet filters: applied" not in gw.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "SIGHUP: packet filters: applied" in gw.stderr(), gw.tail()
    assert probe(topo, "tcp", 4001) == "ok" and probe(topo, "tcp", 4000) == "timeout"


def test_outbound_drop_keeps_the_gateways_own_connections(topo):
    """outbound = "drop": other programs on the gateway host cannot go out without a filter;
    the gateway's own connections for its clients still do."""
    fwit.require_tool("nft")
    allow_http = ('\n[[packet_filters.filter]]\nname = "web-out"\nprotocol = "tcp"\n'
                  'direction = "outbound"\nremote_port = 80\n')
    cfg = config_file(topo, filters_config(topo, allow_http, outbound="drop"))
    assert fwgate_in(topo, "gateway", "filters", "apply", "-c", str(cfg)).returncode == 0
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # Another user's program: out on the port a filter names, not on another (dropped: a timeout).
    cp = topo.run_in("gateway", nobody + ["curl", "-sS", "--max-time", "5", f"http://{EXTERNAL}/"], timeout=20)
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    cp = topo.run_in("gateway", nobody + ["curl", "-sS", "--max-time", "3", f"http://{EXTERNAL}:8080/"], timeout=20)
    assert cp.returncode == 28, out(cp)  # curl: timed out
    # The gateway's own user (root here: no [gateway] user) still goes out: refused by the
    # external host, which means the SYN got there.
    cp = topo.run_in("gateway", ["curl", "-sS", "--max-time", "3", f"http://{EXTERNAL}:8080/"], timeout=20)
    assert cp.returncode == 7, out(cp)  # curl: connection refused
    counters = stats(topo)
    assert counters["web-out"] >= 1 and counters["outbound not admitted"] >= 1, counters
    json.loads(nft_in(topo, "-j", "list", "table", "inet", "fwgate").stdout)  # the table is sound


def test_a_remoted_listen_opens_its_port_and_closes_it(topo, gateway, ftp):
    """FTP in active mode through the firewall client: the server's data connections come to
    ports the gateway opened for the program's listens. Nothing static admits them; the dynamic
    set does while each listen lasts, and is empty afterwards."""
    fwit.require_tool("nft")
    gw = start_gateway(gateway, topo, rules=FTP_RULES, extra="\n" + filters_config(topo, ""))
    wait_applied(gw)
    assert "packet filters: applied table inet fwgate (0 filters" in gw.stderr(), gw.tail()
    dest = topo.tmp / "active"
    dest.mkdir()
    script = (f"set ftp:passive-mode off; set net:max-retries 1; set net:timeout 15; "
              f"set ftp:prefer-epsv no; get -O {dest} alpha.txt; cls -1; bye")
    cp = fwrun(topo, ["lftp", "-e", script, f"ftp://{EXTERNAL}"], timeout=90)
    assert cp.returncode == 0 and (dest / "alpha.txt").read_text() == "alpha.txt\n", out(cp)
    gw.wait_sessions(lambda s: s.get("command") == "listen" and s.get("result") == "succeeded", 2)
    counters = stats(topo)
    assert counters["dynamic"] >= 2, counters  # each data connection's SYN, admitted by the set
    deadline = time.monotonic() + 10
    while "elements" in dynamic_ports(topo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "elements" not in dynamic_ports(topo), dynamic_ports(topo)


def test_a_gateway_that_drops_privileges_keeps_only_what_the_filters_need(topo, gateway):
    """[gateway] user = "nobody": the gateway still updates the dynamic set (CAP_NET_ADMIN kept)
    and has no other capability."""
    fwit.require_tool("nft")
    gw = start_gateway(gateway, topo, extra='\n[gateway]\nuser = "nobody"\n' + filters_config(topo, ""))
    deadline = time.monotonic() + 10
    while "running as user" not in gw.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "keeping CAP_NET_ADMIN for the packet filters" in gw.stderr(), gw.tail()
    status = open(f"/proc/{gw.pid}/status").read()  # `ip netns exec` execs the gateway
    caps = {k: int(v, 16) for k, v in re.findall(r"^(CapEff|CapPrm):\s+([0-9a-f]+)$", status, re.M)}
    assert caps == {"CapEff": 1 << 12, "CapPrm": 1 << 12}, caps  # CAP_NET_ADMIN is bit 12
    client = topo.spawn("internal", [fwit.PYTHON, "-c", BIND_CLIENT, topo.gw_inside, EXTERNAL, str(gw.port)])
    line = fwit.read_pipe(client.stdout, 200, 15, until=b"\n").decode()
    port = int(re.match(r"bound \S+ (\d+)", line).group(1))
    assert re.search(rf"\b{port}\b", dynamic_ports(topo)), (dynamic_ports(topo), gw.tail())
    client.kill()
