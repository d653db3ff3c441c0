"""Protocol definitions and incoming secondary connections through the firewall client, with real
programs in the namespace topology of test_client.py (internal host / gateway with IP forwarding
off / external host):

- FTP in active mode (PORT/EPRT: the server connects back) and passive mode with lftp and tnftp
  against pyftpdlib on the external host: a 50 MB file arrives with its checksum, a listing arrives;
- a program that listens for several connections (ServerBindTcpPorts) and a remote host that
  connects twice; a remote host the rules do not allow is refused and logged;
- a secondary listen accepts only the host of its primary connection, and ends with it.

The fixed ports (21, 4000, 7000) are those of the topology's namespaces, which nothing else shares.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import DNS, EXTERNAL, client_env, fwc_sessions, fwrun, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)

pytestmark = pytest.mark.fwgate_only

GATEWAY_OUTSIDE = "203.0.113.1"
BIG = 50 * 1024 * 1024


@pytest.fixture
def ftp(topo):
    """pyftpdlib on the external host (port 21), serving a 50 MB file and a few small ones."""
    root = topo.tmp / "ftp-root"
    root.mkdir()
    h = hashlib.sha256()
    with open(root / "big.bin", "wb") as f:
        for _ in range(BIG // (1 << 20)):
            chunk = os.urandom(1 << 20)
            h.update(chunk)
            f.write(chunk)
    for name in ("alpha.txt", "beta.txt"):
        (root / name).write_text(f"{name}\n")
    log = open(topo.tmp / "ftp-server.log", "wb")
    topo.logs.append(log)
    proc = topo.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "ftp_server.py"),
                                   "--host", EXTERNAL, "--root", str(root), "--lifetime", "600"],
                      stderr=log)
    ready = fwit.read_pipe(proc.stdout, 16, 15, until=b"\n")
    assert ready.strip() == b"ready", (ready, (topo.tmp / "ftp-server.log").read_text(errors="replace"))
    return {"root": root, "sha256": h.hexdigest()}


FTP_RULES = [{"name": "ftp only", "action": "allow", "sources": ["internal"], "protocols": ["FTP"]}]


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ftp_log(topo) -> str:
    return (topo.tmp / "ftp-server.log").read_text(errors="replace")


@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
def test_lftp(topo, gateway, ftp, passive):
    gw = start_gateway(gateway, topo, rules=FTP_RULES)
    dest = topo.tmp / "lftp-dest"
    dest.mkdir()
    script = (f"set ftp:passive-mode {'on' if passive else 'off'}; set net:max-retries 1; "
              "set net:timeout 20; set ftp:prefer-epsv no; "
              f"get -O {dest} big.bin; cls -1; bye")
    cp = fwrun(topo, ["lftp", "-e", script, f"ftp://{EXTERNAL}"], timeout=180)
    text = out(cp)
    assert cp.returncode == 0, text + ftp_log(topo)[-3000:]
    assert sha256(dest / "big.bin") == ftp["sha256"]
    assert {"alpha.txt", "beta.txt", "big.bin"} <= set(cp.stdout.decode().split()), text
    # Two transfers (the file, the listing): at least two data connections besides the control one.
    gw.wait_sessions(lambda s: s.get("protocol") == "fwc" and s.get("command") in ("connect", "accept")
                     and s.get("requested") != f"{EXTERNAL}:21", 2, timeout=20)
    sessions = fwc_sessions(gw)
    control = [s for s in sessions if s["command"] == "connect" and s["requested"] == f"{EXTERNAL}:21"]
    assert control and control[0]["definition"] == "FTP" and control[0]["rule"] == "ftp only", sessions
    if passive:
        data = [s for s in sessions if s["command"] == "connect" and s["requested"] != f"{EXTERNAL}:21"]
        assert len(data) >= 2 and all(s["definition"] == "FTP (secondary)" for s in data), data
        assert "PASV" in ftp_log(topo) or "EPSV" in ftp_log(topo)
    else:
        listens = [s for s in sessions if s["command"] == "listen"]
        accepts = [s for s in sessions if s["command"] == "accept"]
        # One listen per transfer (the file, the listing), each with one connection from the server.
        assert len(listens) >= 2 and all(s["result"] == "succeeded" for s in listens), listens
        assert len(accepts) >= 2 and all(s["result"] == "succeeded" for s in accepts), accepts
        assert all(s["resolved"].startswith(f"{EXTERNAL}:") and s["definition"] == "FTP" for s in accepts), accepts
        assert all(s["bound"].startswith(f"{GATEWAY_OUTSIDE}:") for s in listens), listens
        ports = [int(s["bound"].rsplit(":", 1)[1]) for s in listens]
        assert all(1024 <= p <= 5000 for p in ports), ports  # the seed's Port_Any range
        assert "PORT" in ftp_log(topo) or "EPRT" in ftp_log(topo)
        # The server saw the gateway's address in PORT, the address its control connection came from.
        assert f"PORT 203,0,113,1," in ftp_log(topo) or f"|{GATEWAY_OUTSIDE}|" in ftp_log(topo), ftp_log(topo)[-2000:]


@pytest.mark.parametrize("passive", [False, True], ids=["active", "passive"])
def test_tnftp(topo, gateway, ftp, passive):
    gw = start_gateway(gateway, topo, rules=FTP_RULES)
    dest = topo.tmp / "tnftp-big.bin"
    commands = ("user anonymous fwgate@\nbinary\n"
                f"{'passive on' if passive else 'passive off'}\n"
                f"get big.bin {dest}\nls\nquit\n")
    env = client_env(topo)
    cp = subprocess.run(["ip", "netns", "exec", topo.ns["internal"], FWGATE_BIN, "run", "--",
                         "tnftp", "-n", "-v", EXTERNAL], input=commands.encode(), capture_output=True,
                        timeout=180 * fwit.SLOW, env=env)
    text = out(cp)
    assert cp.returncode == 0, text + ftp_log(topo)[-3000:]
    assert sha256(dest) == ftp["sha256"], text
    assert "alpha.txt" in text and "beta.txt" in text, text
    commands_seen = ftp_log(topo)
    if passive:
        assert "PASV" in commands_seen or "EPSV" in commands_seen, commands_seen[-2000:]
    else:
        assert "PORT" in commands_seen or "EPRT" in commands_seen, commands_seen[-2000:]
        gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "accept"
                        and s.get("result") == "succeeded")


CALLBACK_SERVER = r"""
import socket, sys, time
# A server that, like FTP in active mode, is told an address by its client and connects back to
# it: first from an address that is not the client's primary peer (.53), then from its own (.7).
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], 7000)); srv.listen(4); srv.settimeout(60)
print("ready", flush=True)
conn, _ = srv.accept(); conn.settimeout(30)
host, port = conn.recv(256).decode().split()
for source in (sys.argv[2], sys.argv[1]):
    try:
        c = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
        c.settimeout(5)
        try:
            c.sendall(b"from " + source.encode() + b"\n")
            got = c.recv(100)
        except OSError as e:
            got = repr(e).encode()
        conn.sendall(source.encode() + b" -> " + (got or b"closed") + b"\n")
        c.close()
    except OSError as e:
        conn.sendall(source.encode() + b" -> " + repr(e).encode() + b"\n")
    time.sleep(0.3)
conn.close()
"""

CALLBACK_CLIENT = r"""
import select, socket, sys, time
mode = sys.argv[2]
primary = socket.create_connection((sys.argv[1], 7000), timeout=20)
lst = socket.socket()
lst.bind((primary.getsockname()[0], 0))  # the gateway's address, as FTP clients do
lst.listen(1)
host, port = lst.getsockname()
primary.sendall(f"{host} {port}".encode())
if mode == "blocking":
    lst.settimeout(20)
else:
    # Readiness of the listening socket, as for a local one: nothing until the server connects.
    lst.setblocking(False)
    try:
        lst.accept()
        sys.exit("accept on an empty listening socket did not say EAGAIN")
    except BlockingIOError:
        pass
    if mode == "select":
        ready = select.select([lst], [], [], 20)[0]
    elif mode == "poll":
        p = select.poll(); p.register(lst, select.POLLIN); ready = p.poll(20000)
    else:
        e = select.epoll(); e.register(lst.fileno(), select.EPOLLIN | select.EPOLLET); ready = e.poll(20)
    if not ready:
        sys.exit(f"{mode}: the listening socket never became readable")
conn, peer = lst.accept()
conn.setblocking(True)
conn.settimeout(20)
line = conn.recv(100)
conn.sendall(b"hello " + line)
conn.close()
report = b""
primary.settimeout(20)
while report.count(b"\n") < 2:
    chunk = primary.recv(1000)
    if not chunk:
        break
    report += chunk
print(host, port, peer[0], line.decode().strip())
print(report.decode())
"""


@pytest.mark.parametrize("mode", ["blocking", "select", "poll", "epoll"])
def test_secondary_listen_accepts_only_the_primary_host(topo, gateway, mode):
    extra = ('\n[protocols.Callback]\nport = 7000\ntransport = "tcp"\ndirection = "outbound"\n'
             'secondary = [{ ports = "0", transport = "tcp", direction = "inbound" }]\n')
    gw = start_gateway(gateway, topo, extra=extra, rules=[
        {"name": "callback", "action": "allow", "sources": ["internal"], "protocols": ["Callback"]}])
    server = topo.spawn("external", [fwit.PYTHON, "-c", CALLBACK_SERVER, EXTERNAL, DNS])
    assert fwit.read_pipe(server.stdout, 16, 15, until=b"\n").strip() == b"ready"
    cp = fwrun(topo, [fwit.PYTHON, "-c", CALLBACK_CLIENT, EXTERNAL, mode], timeout=90)
    text = out(cp)
    assert cp.returncode == 0, text
    first, *report = cp.stdout.decode().splitlines()
    host, port, peer, line = first.split(maxsplit=3)
    assert host == GATEWAY_OUTSIDE and peer == EXTERNAL and line == f"from {EXTERNAL}", text
    assert 1024 <= int(port) <= 5000, text
    # The other host got nothing through: its connection was closed by the gateway.
    assert any(r.startswith(f"{DNS} -> ") and "hello" not in r for r in report), report
    assert any(r.startswith(f"{EXTERNAL} -> hello from {EXTERNAL}") for r in report), report
    refused = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "refused")
    assert refused["resolved"].startswith(f"{DNS}:") and "primary connection" in refused["error"], refused
    assert refused["definition"] == "Callback", refused
    accepted = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "succeeded")
    assert accepted["resolved"].startswith(f"{EXTERNAL}:") and accepted["bytes_up"] > 0, accepted


def test_listen_without_a_definition_is_refused(topo, gateway):
    # HTTP has no secondary connections: a remoted listen of a program whose primary connection is
    # HTTP is refused (EACCES), logged, and nothing listens on the gateway.
    gw = start_gateway(gateway, topo, rules=[
        {"name": "web", "action": "allow", "sources": ["internal"], "protocols": ["HTTP"]}])
    code = ("import socket,errno\n"
            f"p=socket.create_connection(('{EXTERNAL}',80),timeout=20)\n"
            "l=socket.socket()\n"
            "try:\n  l.bind((p.getsockname()[0],0));print('bound')\n"
            "except OSError as e:\n  print(errno.errorcode[e.errno])\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code], FWGATE_DEBUG="1")
    assert cp.returncode == 0 and cp.stdout.decode().strip() == "EACCES", out(cp)
    assert "inbound TCP secondary connection" in out(cp), out(cp)
    rec = gw.wait_session(lambda s: s.get("command") == "listen")
    assert rec["result"] == "denied by the gateway's rules", rec


SERVER_PROGRAM = r"""
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 4000))
s.listen(8)
print("listening", *s.getsockname(), flush=True)
s.settimeout(30)
for i in range(2):
    c, peer = s.accept()
    c.settimeout(10)
    data = c.recv(100)
    c.sendall(b"served %d " % i + data)
    c.close()
    print("accepted", peer[0], flush=True)
# The program goes on without its listening socket.
s.close()
print("closed", flush=True)
time.sleep(20)
"""

KNOCK = r"""
import socket, sys
results = []
for source in sys.argv[2:]:
    try:
        c = socket.create_connection((sys.argv[1], 4000), timeout=10, source_address=(source, 0))
        c.settimeout(10)
        c.sendall(b"knock from " + source.encode())
        results.append(c.recv(200).decode() or "closed")
        c.close()
    except OSError as e:
        results.append(repr(e))
print("|".join(results))
"""


def test_server_bind_accepts_several_connections(topo, gateway):
    extra = ('\n[protocols.GameServer]\nport = 4000\ntransport = "tcp"\ndirection = "inbound"\n'
             '\n[firewall_client.applications.python3]\nServerBindTcpPorts = "4000"\n'
             '\n[networks.partner]\nranges = ["203.0.113.7"]\n')
    gw = start_gateway(gateway, topo, extra=extra, rules=[
        {"name": "game server", "action": "allow", "sources": ["internal"], "destinations": ["partner"],
         "protocols": ["GameServer"], "commands": ["bind"]}])
    env = client_env(topo)
    prog = subprocess.Popen(["ip", "netns", "exec", topo.ns["internal"], FWGATE_BIN, "run", "--",
                             fwit.PYTHON, "-c", SERVER_PROGRAM],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    topo.procs.append(prog)
    first = fwit.read_pipe(prog.stdout, 200, 20, until=b"\n").decode()
    assert first.startswith("listening "), first + prog.stderr.read1(4000).decode(errors="replace") if prog.poll() is not None else first
    _, host, port = first.split()
    assert port == "4000", first
    # The partner knocks twice and is served twice; .53 is not a partner and is refused.
    cp = topo.run_in("external", [fwit.PYTHON, "-c", KNOCK, GATEWAY_OUTSIDE, DNS, EXTERNAL, EXTERNAL], timeout=60)
    results = cp.stdout.decode().strip().split("|")
    assert len(results) == 3, out(cp)
    assert "served" in results[1], (results, prog.stderr.read().decode(errors="replace"), gw.sessions())
    assert "served" not in results[0], results
    assert results[1].startswith("served 0 knock from") and results[2].startswith("served 1 knock from"), results
    rest = fwit.read_pipe(prog.stdout, 4096, 30, until=b"closed\n").decode()
    assert rest.count(f"accepted {EXTERNAL}") == 2 and rest.endswith("closed\n"), rest
    refused = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "refused")
    assert refused["resolved"].startswith(f"{DNS}:") and "denied by" in refused["error"], refused
    accepts = gw.wait_sessions(lambda s: s.get("protocol") == "fwc" and s.get("command") == "accept"
                               and s.get("result") == "succeeded", 2)
    assert len(accepts) == 2 and all(s["definition"] == "GameServer" for s in accepts), accepts
    # The program closed its listening socket and goes on (close() is not hooked). The next knock
    # finds the client refusing the gateway, which ends the listen and closes the gateway's port.
    knock = topo.run_in("external", [fwit.PYTHON, "-c", KNOCK, GATEWAY_OUTSIDE, EXTERNAL], timeout=30)
    assert "served" not in knock.stdout.decode(), out(knock)
    ended = gw.wait_session(lambda s: s.get("command") == "listen-server")
    # Three connections reached the gateway; the third found nobody at the client.
    assert ended["error"] == "the client's socket is closed" and ended["resolved"] == "3 connections", ended
    unreachable = gw.wait_session(lambda s: s.get("result") == "client-unreachable")
    assert "Connection refused" in unreachable["error"], unreachable
    after = topo.run_in("external", [fwit.PYTHON, "-c", KNOCK, GATEWAY_OUTSIDE, EXTERNAL], timeout=30)
    assert "ConnectionRefusedError" in after.stdout.decode(), out(after)


def test_secondary_peers_by_rules(topo, gateway):
    # [bind] secondary_peers = "rules": the rules decide who may connect back, here the DNS host
    # only, so the first knock (from .53) is the one the program gets.
    extra = ('\n[bind]\nsecondary_peers = "rules"\n'
             '\n[networks.dnshost]\nranges = ["203.0.113.53"]\n'
             '\n[protocols.Callback]\nport = 7000\ntransport = "tcp"\ndirection = "outbound"\n'
             'secondary = [{ ports = "0", transport = "tcp", direction = "inbound" }]\n')
    gw = start_gateway(gateway, topo, extra=extra, rules=[
        {"name": "callback", "action": "allow", "sources": ["internal"], "protocols": ["Callback"],
         "commands": ["connect"]},
        # A rule naming the definition decides its secondary connections' peers.
        {"name": "from the dns host", "action": "allow", "sources": ["internal"], "destinations": ["dnshost"],
         "protocols": ["Callback"], "commands": ["bind"]}])
    server = topo.spawn("external", [fwit.PYTHON, "-c", CALLBACK_SERVER, EXTERNAL, DNS])
    assert fwit.read_pipe(server.stdout, 16, 15, until=b"\n").strip() == b"ready"
    cp = fwrun(topo, [fwit.PYTHON, "-c", CALLBACK_CLIENT, EXTERNAL, "blocking"], timeout=90)
    assert cp.returncode == 0, out(cp)
    host, port, peer, line = cp.stdout.decode().splitlines()[0].split(maxsplit=3)
    assert peer == DNS and line == f"from {DNS}", out(cp)
    accepted = gw.wait_session(lambda s: s.get("command") == "accept" and s.get("result") == "succeeded")
    assert accepted["rule"] == "from the dns host" and accepted["resolved"].startswith(f"{DNS}:"), accepted
    assert accepted["definition"] == "Callback", accepted
