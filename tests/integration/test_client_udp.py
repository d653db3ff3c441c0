"""UDP through the firewall client, in the namespace topology of test_client.py: dig against the
DNS server on the external host, a python UDP echo (sendto/recvfrom, large datagrams, truncation,
connect()+send/recv/read/write), DontRemoteOutboundUdpPorts, and a destination no rule allows.
"""

from __future__ import annotations

import json
import os
import time

import pytest

import fwit
from test_client import DNS, EXTERNAL, EXTERNAL6, NAME, fwc_sessions, fwrun, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)

pytestmark = pytest.mark.fwgate_only

ECHO_PORT = 9999  # on the external host, a namespace of the test's own

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(120)
print("ready", flush=True)
for _ in range(10000):
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"""

ECHO_DEFINITION = (f'\n[protocols.Echo]\nport = {ECHO_PORT}\ntransport = "udp"\ndirection = "send-receive"\n')
RULES = [{"name": "dns and echo", "action": "allow", "sources": ["internal"], "protocols": ["DNS", "Echo"]}]


@pytest.fixture(autouse=True)
def udp_echo(topo):
    """A UDP echo server on the external host, for every test here."""
    echo = topo.spawn("external", [fwit.PYTHON, "-c", UDP_ECHO, EXTERNAL, str(ECHO_PORT)])
    assert fwit.read_pipe(echo.stdout, 16, 15, until=b"\n").strip() == b"ready"


def udp_sessions(gw) -> list[dict]:
    return [s for s in fwc_sessions(gw) if s["command"] == "udp"]


def test_dig_through_the_gateway(topo, gateway):
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION)
    dig = fwit.require_tool("dig")
    # Without the library the DNS server is out of reach.
    plain = topo.run_in("internal", [dig, "+time=2", "+tries=1", f"@{DNS}", NAME, "+short"], timeout=20)
    assert EXTERNAL not in out(plain), out(plain)
    cp = fwrun(topo, [dig, "+time=5", "+tries=1", f"@{DNS}", NAME, "+short"])
    assert cp.returncode == 0 and cp.stdout.decode().split() == [EXTERNAL], out(cp)
    # A full answer names the server it came from: the remote source was reported to dig.
    cp = fwrun(topo, [dig, "+time=5", "+tries=1", f"@{DNS}", NAME])
    assert cp.returncode == 0 and f"SERVER: {DNS}#53" in out(cp), out(cp)
    rec = gw.wait_session(lambda s: s.get("command") == "udp" and s.get("application") == "dig")
    assert rec["definition"] == "DNS" and rec["rule"] == "dns and echo", rec
    assert rec["datagrams_up"] >= 1 and rec["datagrams_down"] >= 1, rec


ECHO_PROGRAM = r"""
import errno, json, os, select, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
r = {}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.settimeout(10)
sizes = [1, 1400, 9000, 60000]
got = []
for n in sizes:
    payload = os.urandom(n)
    assert s.sendto(payload, (host, port)) == n
    data, peer = s.recvfrom(65535)
    got.append([len(data), data == payload, list(peer)])
r["echo"] = got
# A datagram read into a short buffer is truncated as the kernel does, and says so.
s.sendto(b"x" * 1400, (host, port))
data, anc, flags, peer = s.recvmsg(100)
r["truncated"] = [len(data), bool(flags & socket.MSG_TRUNC), list(peer)]
# Too large to carry whole: refused, never cut.
try:
    s.sendto(b"y" * 65500, (host, port))
    r["too_large"] = "sent"
except OSError as e:
    r["too_large"] = errno.errorcode[e.errno]
# connect() on a UDP socket: send/recv, write/read, getpeername.
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(10)
c.connect((host, port))
c.send(b"connected-send")
r["recv"] = c.recv(100).decode()
os.write(c.fileno(), b"connected-write")
ready, _, _ = select.select([c], [], [], 10)  # the socket has a timeout: it is non-blocking
r["read"] = os.read(c.fileno(), 100).decode() if ready else "nothing within 10 s"
r["peer"] = list(c.getpeername())
# A duplicate of the socket is the same socket (os.dup is fcntl(F_DUPFD_CLOEXEC)).
twin = socket.socket(fileno=os.dup(s.fileno()))
twin.settimeout(10)
s.sendto(b"via-the-original", (host, port))
data, peer = twin.recvfrom(100)
r["dup"] = [data.decode(), list(peer)]
# A duplicate made before the socket's first remote datagram is the same socket as well.
fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
early = socket.socket(fileno=os.dup(fresh.fileno()))
early.settimeout(10)
fresh.sendto(b"dup-first", (host, port))
data, peer = early.recvfrom(100)
r["early_dup"] = [data.decode(), list(peer)]
# The error queue is the kernel's: empty, it answers at once, even on a blocking socket.
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.sendto(b"associate me", (host, port))
b.recvfrom(100)
try:
    b.recvmsg(100, 0, socket.MSG_ERRQUEUE)
    r["errqueue"] = "something"
except BlockingIOError:
    r["errqueue"] = "EAGAIN"
# readv/writev on a connected socket.
os.writev(c.fileno(), [b"vec", b"tored"])
select.select([c], [], [], 10)
first, second = bytearray(3), bytearray(10)
n = os.readv(c.fileno(), [first, second])
r["readv"] = (bytes(first) + bytes(second))[:n].decode()
# Nothing answers for a port no rule allows.
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.settimeout(1.5)
d.sendto(b"anyone?", (host, port - 1))
try:
    d.recvfrom(100)
    r["denied"] = "answered"
except socket.timeout:
    r["denied"] = "timeout"
print(json.dumps(r))
"""


def test_python_udp_echo(topo, gateway):
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION)
    cp = fwrun(topo, [fwit.PYTHON, "-c", ECHO_PROGRAM, EXTERNAL, str(ECHO_PORT)], timeout=90)
    assert cp.returncode == 0, out(cp)
    r = json.loads(cp.stdout.decode().strip().splitlines()[-1])
    for (length, same, peer), size in zip(r["echo"], [1, 1400, 9000, 60000]):
        assert length == size and same and peer == [EXTERNAL, ECHO_PORT], r["echo"]
    assert r["truncated"] == [100, True, [EXTERNAL, ECHO_PORT]], r
    assert r["too_large"] == "EMSGSIZE", r
    assert r["recv"] == "connected-send" and r["read"] == "connected-write", r
    assert r["peer"] == [EXTERNAL, ECHO_PORT], r
    assert r["denied"] == "timeout", r
    assert r["dup"] == ["via-the-original", [EXTERNAL, ECHO_PORT]], r
    assert r["early_dup"] == ["dup-first", [EXTERNAL, ECHO_PORT]], r
    assert r["errqueue"] == "EAGAIN" and r["readv"] == "vectored", r
    # Logged when each association ends (the program's exit closed its control connections).
    gw.wait_session(lambda s: s.get("command") == "udp" and s.get("datagrams_up", 0) >= 5)
    sessions = udp_sessions(gw)
    assert sessions and all(s["application"] == "python3" for s in sessions), sessions
    echo = [s for s in sessions if s.get("definition") == "Echo"]
    assert echo and sum(s["datagrams_up"] for s in echo) >= 7, sessions


def test_dont_remote_outbound_udp_ports(topo, gateway):
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION +
                       f'\n[firewall_client.applications.python3]\nDontRemoteOutboundUdpPorts = "{ECHO_PORT}"\n')
    code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
            f"s.sendto(b'direct',('{EXTERNAL}',{ECHO_PORT}))\n"
            "try:\n  s.recvfrom(100);print('answered')\nexcept socket.timeout:\n  print('timeout')\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code])
    # Sent directly: the gateway does not forward, so nothing comes back, and it logged nothing.
    assert cp.returncode == 0 and cp.stdout.decode().strip() == "timeout", out(cp)
    assert not udp_sessions(gw), gw.sessions()


def test_local_bind_udp_ports(topo, gateway):
    # LocalBindUdpPorts: a socket bound to such a port is a local service's; its datagrams go
    # direct (and are lost here, the gateway does not forward), another socket's go through.
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION +
                       '\n[firewall_client.applications.python3]\nLocalBindUdpPorts = "7777"\n')
    code = ("import socket\n"
            "def ask(port):\n"
            "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
            "  if port: s.bind(('0.0.0.0',port))\n"
            f"  s.sendto(b'hello',('{EXTERNAL}',{ECHO_PORT}))\n"
            "  try:\n    return s.recvfrom(100)[0].decode()\n  except socket.timeout:\n    return 'timeout'\n"
            "print(ask(7777), ask(7778))\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0 and cp.stdout.decode().split() == ["timeout", "hello"], out(cp)


def test_a_datagram_no_definition_covers_is_dropped(topo, gateway):
    # A rule that names no definitions still needs one for a firewall client's datagram (the
    # default require_definition): port 9999 has none here; the log says so.
    gw = start_gateway(gateway, topo)
    code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
            f"s.sendto(b'hello',('{EXTERNAL}',{ECHO_PORT}))\n"
            "try:\n  print(s.recvfrom(100)[0].decode())\nexcept socket.timeout:\n  print('timeout')\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0 and cp.stdout.decode().strip() == "timeout", out(cp)
    rec = gw.wait_session(lambda s: s.get("command") == "udp")
    assert f"no protocol definition covers udp send port {ECHO_PORT}" in rec["error"], rec
    assert rec["datagrams_up"] == 0, rec


def test_tftp_answers_from_a_new_port(topo, gateway):
    # TFTP (the built-in definition): the client sends to port 69, the server answers from a new
    # port, and the transfer goes on with that port, both ways: the definition's secondary
    # connection, allowed only with the host the client contacted. Real tftp-hpa client and server.
    gw = start_gateway(gateway, topo, rules=[
        {"name": "tftp", "action": "allow", "sources": ["internal"], "protocols": ["TFTP"]}])
    root = topo.tmp / "tftp-root"
    root.mkdir()
    payload = os.urandom(1 << 20)
    (root / "data.bin").write_bytes(payload)
    tftpd = fwit.require_tool("in.tftpd")
    topo.spawn("external", [tftpd, "-L", "-a", f"{EXTERNAL}:69", "-s", "-u", "root", str(root)])
    dest = topo.tmp / "tftp-got.bin"
    cp = None
    for _ in range(50):  # bounded: the server takes a moment to bind
        cp = fwrun(topo, [fwit.require_tool("tftp"), "-m", "binary", EXTERNAL, "-c", "get", "data.bin", str(dest)],
                   timeout=60)
        if dest.exists() and dest.stat().st_size == len(payload):
            break
        time.sleep(0.1)
    assert dest.exists() and dest.read_bytes() == payload, out(cp)
    rec = gw.wait_session(lambda s: s.get("command") == "udp" and s.get("application") == "tftp"
                          and s.get("datagrams_down", 0) > 0)
    assert rec["definition"] == "TFTP" and rec["datagrams_down"] >= (1 << 20) // 512, rec


FORTIFIED = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char** argv) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval tv = {10, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons(atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &to.sin_addr);
  if (sendto(s, "fortified", 9, 0, (struct sockaddr*)&to, sizeof to) != 9) return 2;
  char buf[64];
  struct sockaddr_in from;
  socklen_t len = sizeof from;
  /* A length the compiler cannot check: the fortified build calls __recvfrom_chk. */
  size_t want = (size_t)atoi(argv[3]);
  ssize_t n = recvfrom(s, buf, want, 0, (struct sockaddr*)&from, &len);
  if (n < 0) return 3;
  char text[64];
  inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
  printf("%.*s %s %d\n", (int)n, buf, text, ntohs(from.sin_port));
  return 0;
}
"""


def test_a_fortified_program(topo, gateway):
    # Distribution binaries are built with _FORTIFY_SOURCE: their recvfrom is __recvfrom_chk.
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION)
    source = topo.tmp / "fortified.c"
    source.write_text(FORTIFIED.replace("#include <unistd.h>", "#include <unistd.h>\n#include <stdlib.h>"))
    binary = topo.tmp / "fortified"
    cc = fwit.run(["gcc", "-O2", "-D_FORTIFY_SOURCE=2", "-o", str(binary), str(source)])
    assert cc.returncode == 0, out(cc)
    symbols = fwit.run(["nm", "-D", str(binary)])
    assert "__recvfrom_chk" in out(symbols), out(symbols)  # the build really is fortified
    cp = fwrun(topo, [str(binary), EXTERNAL, str(ECHO_PORT), "64"])
    assert cp.returncode == 0 and cp.stdout.decode().split() == ["fortified", EXTERNAL, str(ECHO_PORT)], out(cp)


def test_an_ipv6_destination(topo, gateway):
    # An IPv6 socket to an IPv6 destination (only the gateway has IPv6 toward the outside): the
    # relay is reached on its IPv4-mapped address, the header carries the 16-byte address.
    gw = start_gateway(gateway, topo, rules=RULES, extra=ECHO_DEFINITION)
    echo6 = topo.spawn("external", [fwit.PYTHON, "-c", UDP_ECHO, EXTERNAL6, str(ECHO_PORT)])
    assert fwit.read_pipe(echo6.stdout, 16, 15, until=b"\n").strip() == b"ready"
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(10)\n"
            f"s.sendto(b'over six',('{EXTERNAL6}',{ECHO_PORT}))\n"
            "d,p=s.recvfrom(100);print(d.decode(),p[0],p[1])\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0 and cp.stdout.decode().split() == ["over", "six", EXTERNAL6, str(ECHO_PORT)], out(cp)
    rec = gw.wait_session(lambda s: s.get("command") == "udp" and s.get("datagrams_down", 0) > 0)
    assert rec["definition"] == "Echo", rec
