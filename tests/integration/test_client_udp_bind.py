"""RemoteBindUdpPorts in the namespace topology of test_client.py: a program that binds a listed
UDP port is published on the gateway's external side at that port; an RTP-like sender on the
external host reaches it, with its real address, and gets the program's answer from the gateway's
port; a sender the rules deny gets nothing through and the session line records the denial; a
port no definition covers fails bind() with EACCES; without the setting the bind stays local.
"""

from __future__ import annotations

import json
import re
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import DNS, EXTERNAL, client_env, fwc_sessions, fwrun, out, start_gateway
from test_client import topo  # noqa: F401 (the namespace topology, a fixture)
from test_filters import filters_config, nft_in, wait_applied

pytestmark = pytest.mark.fwgate_only

RTP_PORT = 5004
GATEWAY_OUTSIDE = "203.0.113.1"

# RTP-like: inbound UDP on one port; the rule allows senders of one network (the media host,
# EXTERNAL) only, so DNS (another address of the external host) is denied.
PUBLISH = (f'\n[protocols.RTP]\nport = {RTP_PORT}\ntransport = "udp"\ndirection = "receive"\n'
           '\n[networks.media]\nranges = ["203.0.113.7/32"]\n')
RULES = [{"name": "media senders", "action": "allow", "sources": ["internal"], "destinations": ["media"],
          "protocols": ["RTP"]}]
SETTING = f'\n[firewall_client.applications.python3]\nRemoteBindUdpPorts = "{RTP_PORT}, 5006"\n'

# Binds, prints getsockname, receives until "answer-me" (answered to its sender), prints them.
PROGRAM = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError as e:
    print(json.dumps({"bind_error": e.errno}), flush=True)
    sys.exit(0)
print(json.dumps({"name": list(s.getsockname())}), flush=True)
if len(sys.argv) > 2:
    sys.exit(0)
s.settimeout(20)
got = []
for _ in range(50):
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        break
    got.append([data.decode(), list(peer)])
    if data == b"answer-me":
        s.sendto(b"answer", peer)
        break
print(json.dumps({"got": got}), flush=True)
"""

SENDER = r"""
import json, socket, sys, time
gw, port, denied, allowed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.bind((denied, 0))
for i in range(3):
    d.sendto(b"denied-%d" % i, (gw, port))
time.sleep(0.3)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((allowed, 0))
s.settimeout(10)
for i in range(4):
    s.sendto(b"rtp-%d" % i, (gw, port))
    time.sleep(0.05)
s.sendto(b"answer-me", (gw, port))
try:
    data, peer = s.recvfrom(2048)
    print(json.dumps({"answer": data.decode(), "from": list(peer), "me": list(s.getsockname())}))
except socket.timeout:
    print(json.dumps({"answer": None, "me": list(s.getsockname())}))
"""


def published_udp_ports(topo) -> str:
    return nft_in(topo, "list", "set", "inet", "fwgate", "dynamic_udp").stdout.decode()


@pytest.mark.parametrize("filtered", [False, True], ids=["no-packet-filters", "packet-filters"])
def test_an_rtp_sender_reaches_the_program_through_the_gateway(topo, gateway, filtered):
    extra = PUBLISH + SETTING
    if filtered:
        # Nothing admitted from outside but what the gateway opens itself: the published port
        # is in the set dynamic_udp while the association lives.
        fwit.require_tool("nft")
        extra += "\n" + filters_config(topo, "")
    gw = start_gateway(gateway, topo, rules=RULES, extra=extra)
    if filtered:
        wait_applied(gw)
        assert "packet filters: applied" in gw.stderr(), gw.tail()
    program = topo.spawn("internal", [FWGATE_BIN, "run", "--", fwit.PYTHON, "-c", PROGRAM, str(RTP_PORT)],
                         env=client_env(topo, FWGATE_DEBUG="2"))
    first = fwit.read_pipe(program.stdout, 4096, 15, until=b"\n")
    assert json.loads(first) == {"name": [GATEWAY_OUTSIDE, RTP_PORT]}, first + program.stderr.read1(65536)
    if filtered:
        assert re.search(rf"\b{RTP_PORT}\b", published_udp_ports(topo)), published_udp_ports(topo)
    sender = topo.run_in("external", [fwit.PYTHON, "-c", SENDER, GATEWAY_OUTSIDE, str(RTP_PORT), DNS, EXTERNAL],
                         timeout=30)
    assert sender.returncode == 0, out(sender)
    answer = json.loads(sender.stdout.decode().strip().splitlines()[-1])
    # The answer comes from the gateway's published port.
    assert answer["answer"] == "answer" and answer["from"] == [GATEWAY_OUTSIDE, RTP_PORT], answer
    rest = fwit.read_pipe(program.stdout, 65536, 30, until=b"\n")
    got = json.loads(rest)["got"]
    me = answer["me"]
    # Every datagram of the allowed sender, with its real address and port; none of the denied one.
    assert [g[0] for g in got] == ["rtp-0", "rtp-1", "rtp-2", "rtp-3", "answer-me"], got
    assert all(g[1] == me for g in got), (got, me)
    program.wait(timeout=15)
    s = gw.wait_session(lambda s: s.get("command") == "udp" and "denial" in s, timeout=15)
    assert s["denial"]["reason"] == "default-deny" and s["denial"]["host"] == DNS, s
    assert s["denial"]["transport"] == "udp" and s["denial"]["direction"] == "receive", s
    assert s["denial"].get("peer") is True and s["definition"] == "RTP", s
    assert s["bound"].endswith(f":{RTP_PORT}") and s.get("datagrams_down", 0) >= 5, s
    if filtered:
        # The association ended with the program: its port left the set.
        deadline = time.monotonic() + 10
        while re.search(rf"\b{RTP_PORT}\b", published_udp_ports(topo)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not re.search(rf"\b{RTP_PORT}\b", published_udp_ports(topo)), published_udp_ports(topo)


def test_a_port_no_definition_covers_fails_bind(topo, gateway):
    gw = start_gateway(gateway, topo, rules=RULES, extra=PUBLISH + SETTING)
    cp = fwrun(topo, [fwit.PYTHON, "-c", PROGRAM, "5006", "once"], FWGATE_DEBUG="1")
    assert cp.returncode == 0, out(cp)
    assert json.loads(cp.stdout.decode().strip().splitlines()[-1]) == {"bind_error": 13}, out(cp)  # EACCES
    assert "publishing udp port 5006" in cp.stderr.decode(), out(cp)
    s = gw.wait_session(lambda s: s.get("command") == "udp" and "denial" in s)
    assert s["denial"]["reason"] == "no-definition" and s["denial"]["port"] == 5006, s


def test_without_the_setting_the_bind_stays_local(topo, gateway):
    gw = start_gateway(gateway, topo, rules=RULES, extra=PUBLISH)
    cp = fwrun(topo, [fwit.PYTHON, "-c", PROGRAM, str(RTP_PORT), "once"])
    assert cp.returncode == 0, out(cp)
    assert json.loads(cp.stdout.decode().strip().splitlines()[-1]) == {"name": ["0.0.0.0", RTP_PORT]}, out(cp)
    assert not [s for s in fwc_sessions(gw) if s.get("command") == "udp"], gw.sessions()
