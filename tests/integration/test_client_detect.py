"""Finding the gateway without configuration: DNS records served by a real dnsmasq (issue 15).

test_client.py's topology (internal, gateway, external and peer namespaces; the gateway does not
forward), with no FWGATE_SERVER and no ServerName anywhere. A dnsmasq in the gateway namespace, on
the gateway's internal address, answers for corp.test only (nothing else, no upstream); the
internal host's resolver files (fwit.Namespaces, /etc/netns/NAME: hosts, "hosts: files dns", and
a resolv.conf naming that dnsmasq with "search corp.test") are the only ones its programs read.
Every process is started through the topology (killed by PID at teardown), every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import EXTERNAL, MARKER, ClientTopology, client_env, out, topo  # noqa: F401 (topo: fixture)

pytestmark = pytest.mark.fwgate_only

DOMAIN = "corp.test"


def detect_env(t: ClientTopology, **extra) -> dict:
    """client_env without FWGATE_SERVER: nothing names the gateway."""
    env = client_env(t, **extra)
    env.pop("FWGATE_SERVER")
    return env


def search_domain(t: ClientTopology) -> None:
    """The internal host's resolver: the gateway's internal address, then `search corp.test`."""
    t.resolver("internal", t.gw_inside)
    with open(f"/etc/netns/{t.ns['internal']}/resolv.conf", "a") as f:
        f.write(f"search {DOMAIN}\n")


def serve_dns(t: ClientTopology, *records: str) -> subprocess.Popen:
    """dnsmasq on the gateway's internal address: corp.test from `records` only (anything else in
    corp.test: NXDOMAIN; nothing outside it is forwarded anywhere)."""
    fwit.require_tool("dnsmasq")
    log = open(t.tmp / "detect-dnsmasq.log", "wb")
    t.logs.append(log)
    proc = t.spawn("gateway", ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                               f"--listen-address={t.gw_inside}", f"--local=/{DOMAIN}/", "--user=root",
                               "--pid-file=", "--log-facility=-", "--log-queries", *records],
                   stdout=log, stderr=log)
    search_domain(t)
    dig = fwit.require_tool("dig")
    for _ in range(100):
        cp = t.run_in("internal", [dig, "+time=1", "+tries=1", f"@{t.gw_inside}", f"probe.{DOMAIN}"], timeout=10)
        if cp.returncode == 0:  # an answer (NXDOMAIN): dnsmasq is up
            return proc
        time.sleep(0.05)
    pytest.fail(f"dnsmasq never answered: {(t.tmp / 'detect-dnsmasq.log').read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)


def start_gateway(gateway, t: ClientTopology, port: int = 1745, port2: int | None = None):
    gw = gateway(netns=t.ns["gateway"], health=False, bind_external=None,
                 listeners=[{"address": t.gw_inside, "port": 0, "methods": ["none"]}],
                 networks={"internal": {"ranges": [f"10.{t.a}.1.0/24"], "firewall_clients": True}},
                 rules=[{"name": "internal clients", "action": "allow", "sources": ["internal"]}],
                 extra=f'\n[control]\nlisten = ["{t.gw_inside}:{port}"'
                       + (f', "{t.gw_inside}:{port2}"' if port2 else "") + ']\n')
    assert gw.wait_control_addresses(), gw.tail()
    return gw


def timed(t: ClientTopology, argv: list[str], env: dict, timeout: float = 60.0):
    started = time.monotonic()
    cp = t.run_in("internal", argv, timeout=timeout, env=env)
    return cp, time.monotonic() - started


def curl(url: str, max_time: int = 20) -> list[str]:
    return [FWGATE_BIN, "run", "--", "curl", "-sS", "--max-time", str(max_time), url]


def test_found_by_the_wspad_address_record(topo, gateway):
    gw = start_gateway(gateway, topo)
    serve_dns(topo, f"--host-record=wspad.{DOMAIN},{topo.gw_inside}")
    env = detect_env(topo)
    cp = topo.run_in("internal", [FWGATE_BIN, "check"], env=env)
    text = out(cp)
    assert cp.returncode == 0, text
    assert f"Gateway: wspad.{DOMAIN}:1745 (from DNS: wspad.{DOMAIN} A)" in text, text
    assert "Client control protocol version MATCHES" in text, text

    # A program under the library finds it the same way and reaches the outside through it.
    cp = topo.run_in("internal", curl(f"http://{EXTERNAL}/"), env=detect_env(topo, FWGATE_DEBUG="2"))
    text = out(cp)
    assert cp.returncode == 0 and MARKER in text, text
    assert f"gateway wspad.{DOMAIN}:1745 (DNS)" in text, text
    logged = gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "connect"
                             and s.get("requested") == f"{EXTERNAL}:80")
    assert logged["application"] == "curl" and logged["bytes_down"] > 0, logged

    # It cached the configuration with the server, and how it was found.
    cache = (topo.tmp / "client.cache").read_bytes()
    assert f"server wspad.{DOMAIN}:1745\ndetected wspad.{DOMAIN} A\n\n".encode() in cache, cache[:200]
    cp = topo.run_in("internal", [FWGATE_BIN, "check"], env=env)
    assert cp.returncode == 0, out(cp)
    assert f"Gateway: wspad.{DOMAIN}:1745 (from cache (found by DNS: wspad.{DOMAIN} A))" in out(cp), out(cp)


def test_the_srv_record_gives_host_and_port_and_comes_first(topo, gateway):
    # The control channel on 1760 only; wspad points at the gateway too, where nothing listens on
    # 1745: only the SRV record's port reaches it.
    gw = start_gateway(gateway, topo, port=1760)
    serve_dns(topo, f"--srv-host=_fwgate._tcp.{DOMAIN},gw.{DOMAIN},1760",
              f"--host-record=gw.{DOMAIN},{topo.gw_inside}", f"--host-record=wspad.{DOMAIN},{topo.gw_inside}")
    env = detect_env(topo)
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    text = out(cp)
    assert cp.returncode == 0, text
    assert f"gateway gw.{DOMAIN}:1760 (from DNS: _fwgate._tcp.{DOMAIN} SRV)" in text, text
    assert f"configuration from gw.{DOMAIN}:1760" in text, text
    gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "config")
    cache = (topo.tmp / "client.cache").read_bytes()
    assert f"server gw.{DOMAIN}:1760\ndetected _fwgate._tcp.{DOMAIN} SRV\n".encode() in cache, cache[:200]

    cp = topo.run_in("internal", [FWGATE_BIN, "check"], env=env)
    assert cp.returncode == 0, out(cp)
    assert f"(from cache (found by DNS: _fwgate._tcp.{DOMAIN} SRV))" in out(cp), out(cp)
    cp = topo.run_in("internal", curl(f"http://{EXTERNAL}/"), env=env)
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "connect"
                    and s.get("application") == "curl" and s.get("requested") == f"{EXTERNAL}:80")


def test_no_record_no_gateway_said_plainly_and_at_once(topo, gateway):
    gw = start_gateway(gateway, topo)
    serve_dns(topo)  # corp.test has nothing
    env = detect_env(topo)
    cp, took = timed(topo, [FWGATE_BIN, "check"], env)
    text = out(cp)
    assert cp.returncode == 2, text
    assert ("No gateway configured (ServerName in [Common] of" in text and "none found by DNS: no "
            f"_fwgate._tcp SRV or wspad A/AAAA record in {DOMAIN}." in text), text
    assert took < 5 * fwit.SLOW, took  # every question answered "no such name": no waiting
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    assert cp.returncode == 2 and f"record in {DOMAIN}" in out(cp), out(cp)
    assert not (topo.tmp / "client.cache").exists()

    # The program goes direct (and the gateway does not forward: curl gives up at its own bound).
    cp, took = timed(topo, curl(f"http://{EXTERNAL}/", max_time=3), detect_env(topo, FWGATE_DEBUG="1"))
    text = out(cp)
    assert cp.returncode != 0 and MARKER not in text, text
    assert "no gateway configured" in text, text
    assert took < 10 * fwit.SLOW, took
    time.sleep(0.3)
    assert not [s for s in gw.sessions() if s.get("protocol") == "fwc"], gw.sessions()


def test_a_silent_name_server_costs_the_bound_only(topo, gateway):
    start_gateway(gateway, topo)
    # A "name server" that reads every query and never answers.
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{topo.gw_inside}',53));print('ready',flush=True)\n"
            "s.settimeout(120)\n"
            "for _ in range(100000):\n"
            "  try: s.recv(2048)\n"
            "  except socket.timeout: sys.exit(0)\n")
    silent = topo.spawn("gateway", [fwit.PYTHON, "-c", code])
    assert fwit.read_pipe(silent.stdout, 16, 10, until=b"\n") == b"ready\n"
    search_domain(topo)
    cp, took = timed(topo, [FWGATE_BIN, "check"], detect_env(topo, FWGATE_DETECT_TIMEOUT="1000"))
    text = out(cp)
    assert cp.returncode == 2, text
    assert f"none found by DNS: no answer from the name server {topo.gw_inside} within 1000 ms" in text, text
    assert 0.9 <= took < 6 * fwit.SLOW, took
    # The default bound, 2 s, in a program under the library too.
    cp, took = timed(topo, [FWGATE_BIN, "check"], detect_env(topo))
    assert cp.returncode == 2 and "within 2000 ms" in out(cp), out(cp)
    assert 1.9 <= took < 8 * fwit.SLOW, took
    cp, took = timed(topo, curl(f"http://{EXTERNAL}/", max_time=2), detect_env(topo, FWGATE_DEBUG="1"))
    assert cp.returncode != 0 and "no gateway configured" in out(cp), out(cp)
    assert took < 2 + 2 + 6 * fwit.SLOW, took
    assert silent.poll() is None  # it was there all along, silent


def test_detect_follows_a_changed_record_and_keeps_the_cached_gateway_without_one(topo, gateway):
    # The control channel on 1745 and 1760; the administrator moves the gateway from wspad to an
    # SRV record on 1760, then takes both records away (the gateway's host name stays).
    gw = start_gateway(gateway, topo, port2=1760)
    dns = serve_dns(topo, f"--host-record=wspad.{DOMAIN},{topo.gw_inside}")
    env = detect_env(topo)
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    assert cp.returncode == 0 and f"configuration from wspad.{DOMAIN}:1745" in out(cp), out(cp)
    stop(dns)
    dns = serve_dns(topo, f"--srv-host=_fwgate._tcp.{DOMAIN},gw.{DOMAIN},1760",
                    f"--host-record=gw.{DOMAIN},{topo.gw_inside}")
    # Programs and `fwgate check` keep taking the cached gateway without asking DNS...
    cp = topo.run_in("internal", [FWGATE_BIN, "check"], env=env)
    assert f"Gateway: wspad.{DOMAIN}:1745 (from cache (found by DNS: wspad.{DOMAIN} A))" in out(cp), out(cp)
    # ...until the next `fwgate detect` (or agent refresh), which asks DNS again.
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    assert cp.returncode == 0, out(cp)
    assert f"gateway gw.{DOMAIN}:1760 (from DNS: _fwgate._tcp.{DOMAIN} SRV)" in out(cp), out(cp)
    cache = (topo.tmp / "client.cache").read_bytes()
    assert f"server gw.{DOMAIN}:1760\ndetected _fwgate._tcp.{DOMAIN} SRV\n".encode() in cache, cache[:200]
    cp = topo.run_in("internal", [FWGATE_BIN, "agent", "--once"], env=env)
    assert cp.returncode == 0 and "configuration refreshed" in out(cp), out(cp)
    stop(dns)
    serve_dns(topo, f"--host-record=gw.{DOMAIN},{topo.gw_inside}")  # the host stays, the records go
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    text = out(cp)
    assert cp.returncode == 0, text
    assert (f"none found by DNS (no _fwgate._tcp SRV or wspad A/AAAA record in {DOMAIN}): the cached "
            f"gateway gw.{DOMAIN}:1760 stays") in text, text
    assert f"configuration from gw.{DOMAIN}:1760" in text, text
    assert len([s for s in gw.sessions() if s.get("command") == "config"]) >= 3, gw.sessions()
