"""A real topology in network namespaces (as root): client -- gateway -- server.

    client ns  10.200.A.2/24 --veth-- 10.200.A.1/24  gateway ns  10.200.B.1/24 --veth-- 10.200.B.2/24  server ns

A client from beyond the gateway host never reaches the gateway's own listening sockets, its loopback
or its own addresses through the relay unless a rule names them explicitly; other destinations follow
the rules. Every address lives only inside these namespaces; all of it is torn down after the test.
Nothing here resolves a name; each namespace has the test's own hosts file anyway (fwit.Namespaces).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import fwit

pytestmark = pytest.mark.fwgate_only


class Topology(fwit.Namespaces):
    def __init__(self):
        pid = os.getpid()
        a = 1 + (pid % 120) * 2
        self.client_net, self.server_net = f"10.200.{a}", f"10.200.{a + 1}"
        super().__init__({role: f"fwgit{pid}{role[0]}" for role in ("client", "gateway", "server")},
                         [f"fwg{pid}cg", f"fwg{pid}gc", f"fwg{pid}gs", f"fwg{pid}sg"])

    @property
    def gw_inside(self) -> str:
        return f"{self.client_net}.1"

    @property
    def gw_outside(self) -> str:
        return f"{self.server_net}.1"

    @property
    def server_addr(self) -> str:
        return f"{self.server_net}.2"

    def build(self) -> None:
        self.create()
        c, g, s = self.ns["client"], self.ns["gateway"], self.ns["server"]
        cg, gc, gs, sg = self.links
        self.ip("link", "add", cg, "netns", c, "type", "veth", "peer", "name", gc, "netns", g)
        self.ip("link", "add", gs, "netns", g, "type", "veth", "peer", "name", sg, "netns", s)
        for ns, link, addr in ((c, cg, f"{self.client_net}.2/24"), (g, gc, f"{self.client_net}.1/24"),
                               (g, gs, f"{self.server_net}.1/24"), (s, sg, f"{self.server_net}.2/24")):
            self.ip("-n", ns, "addr", "add", addr, "dev", link)
            self.ip("-n", ns, "link", "set", link, "up")

    def echo_server(self, role: str, host: str) -> int:
        proc = self.spawn(role, [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "echo_server.py"), "--host", host,
                                 "--lifetime", str(int(180 * fwit.SLOW))])
        line = fwit.read_pipe(proc.stdout, 64, 15, until=b"\n")
        assert line.strip().isdigit(), f"echo server in {role} did not start: {line!r} {proc.poll()}"
        return int(line)

    def probe(self, proxy_port: int, dst: str, dst_port: int, payload: str = "") -> dict:
        cp = self.run_in("client", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "socks_probe.py"), self.gw_inside,
                                    str(proxy_port), dst, str(dst_port)] + ([payload] if payload else []))
        out = cp.stdout.decode(errors="replace").strip()
        assert out, f"probe printed nothing: {cp.stderr.decode(errors='replace')}"
        return json.loads(out.splitlines()[-1])

@pytest.fixture
def topology():
    fwit.require_tool("ip")
    if os.geteuid() != 0:
        pytest.fail("the namespace tests need root (run the suite as root)")
    topo = Topology()
    try:
        topo.build()
        yield topo
    finally:
        problems = topo.teardown()
        assert not problems, problems


def gateway_in_ns(gateway, topo: Topology, rules: list, networks: dict):
    return gateway(netns=topo.ns["gateway"], health=False, bind_external=None,
                   listeners=[{"address": topo.gw_inside, "port": 0, "methods": ["none"]}],
                   networks=networks, rules=rules)


def test_protected_destinations_from_another_host(topology, gateway):
    topo = topology
    # One echo server on every address of the gateway host (dual-stack "::"), one on the server host.
    host_echo = topo.echo_server("gateway", "::")
    far_echo = topo.echo_server("server", topo.server_addr)
    networks = {"clients": {"ranges": [f"{topo.client_net}.0/24"]}}
    rules = [{"name": "clients anywhere", "action": "allow", "sources": ["clients"], "destinations": ["any"],
              "commands": ["connect"]}]
    gw = gateway_in_ns(gateway, topo, rules, networks)
    assert gw.addresses == [(topo.gw_inside, gw.port)], gw.addresses

    # Control: the gateway host's echo server is really there for a local program.
    cp = topo.run_in("gateway", [fwit.PYTHON, "-c", f"import socket; socket.create_connection(('127.0.0.1', {host_echo}), 5).close()"])
    assert cp.returncode == 0, cp.stderr

    ok = topo.probe(gw.port, topo.server_addr, far_echo, "through the gateway")
    assert ok.get("rep") == 0 and ok.get("echo") == "through the gateway", f"allowed destination: {ok}"

    protected = {
        "gateway's own SOCKS listener": (topo.gw_inside, gw.port),
        "127.0.0.1 on the gateway": ("127.0.0.1", host_echo),
        "127.0.0.2 (all of 127/8)": ("127.0.0.2", host_echo),
        "::1 on the gateway": ("::1", host_echo),
    }
    got = {name: topo.probe(gw.port, host, port, "should not arrive") for name, (host, port) in protected.items()}
    wrong = {name: r for name, r in got.items() if r.get("rep") != 2}
    assert not wrong, f"protected destinations not refused with REP 02: {wrong}"
    # The gateway goes on serving allowed destinations.
    again = topo.probe(gw.port, topo.server_addr, far_echo, "still fine")
    assert again.get("rep") == 0 and again.get("echo") == "still fine", again


def test_explicit_rule_opens_gateway_loopback(topology, gateway):
    """A rule that names a network containing 127.0.0.1 lets clients reach it; `any` never does."""
    topo = topology
    host_echo = topo.echo_server("gateway", "::")
    networks = {"clients": {"ranges": [f"{topo.client_net}.0/24"]}, "gw-loopback": {"ranges": ["127.0.0.0/8"]}}
    rules = [{"name": "clients to the gateway loopback", "action": "allow", "sources": ["clients"],
              "destinations": ["gw-loopback"], "commands": ["connect"]}]
    gw = gateway_in_ns(gateway, topo, rules, networks)
    r = topo.probe(gw.port, "127.0.0.1", host_echo, "explicitly allowed")
    assert r.get("rep") == 0 and r.get("echo") == "explicitly allowed", r
    rec = gw.wait_session(lambda s: str(host_echo) in str(s.get("requested")))
    assert topo.client_net in str(rec.get("client")), rec


def test_source_outside_rules_is_denied(topology, gateway):
    """Rules name sources: a client outside every allowed network gets REP 02."""
    topo = topology
    far_echo = topo.echo_server("server", topo.server_addr)
    networks = {"elsewhere": {"ranges": ["10.200.250.0/24"]}}
    rules = [{"name": "elsewhere only", "action": "allow", "sources": ["elsewhere"], "destinations": ["any"]}]
    gw = gateway_in_ns(gateway, topo, rules, networks)
    r = topo.probe(gw.port, topo.server_addr, far_echo, "nope")
    assert r.get("rep") == 2, r
