"""The firewall client's control channel encrypted through the agent (issue 16.1), in the
namespace topology of test_client.py (internal host -- gateway, IP forwarding off -- external
host): a capture of the internal link while real programs run under `fwgate run` holds no
password, user name or requested host name, where the same programs with the channel in clear
show all three; the gateway refuses the clear channel when told to; a host's agent serves the
library of programs started without `fwgate run`, and when it dies they fail at once, clearly.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import EXTERNAL, MARKER, NAME, client_env, fwrun, out, topo  # noqa: F401
from test_run import client_library

pytestmark = pytest.mark.fwgate_only

USER = "alice"
PASSWORD = "internal-link-canary-" + os.urandom(4).hex()


def secure_gateway(gateway, t, encryption: str):
    rules = [{"name": "alice", "action": "allow", "sources": ["internal"], "users": [USER]}]
    gw = gateway(netns=t.ns["gateway"], health=False, bind_external=None, users={USER: PASSWORD},
                 listeners=[{"address": t.gw_inside, "port": 0, "methods": ["password"]}],
                 networks={"internal": {"ranges": [f"10.{t.a}.1.0/24"], "firewall_clients": True}},
                 rules=rules,
                 extra=f'\n[control]\nlisten = ["{t.gw_inside}:1745"]\nencryption = "{encryption}"\n')
    gw.wait_control_addresses()
    return gw


class InternalCapture:
    """tcpdump on the internal host's link to the gateway."""

    def __init__(self, t, name: str):
        self.path = t.tmp / name
        self.proc = t.spawn("internal", ["tcpdump", "-Z", "root", "--immediate-mode", "-U", "-n", "-i",
                                         t.link["ig"], "-w", str(self.path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        fwit.read_pipe(self.proc.stderr, 400, 10, until=b"listening")

    def stop(self) -> bytes:
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        return self.path.read_bytes()


def programs(t, *flags, tmpdir=None) -> list[subprocess.CompletedProcess]:
    """curl and Python by name (a Resolve, then a Connect), under fwgate run. Their requests carry
    no Host header: the data path is the application's, in clear, and would show the name."""
    env = dict(FWGATE_USER=USER, FWGATE_PASSWORD=PASSWORD)
    if tmpdir:
        env["TMPDIR"] = tmpdir
    fetch = ("import socket\n"
             f"s=socket.create_connection(('{NAME}',80),timeout=20)\n"
             "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
             "d=b''\n"
             "while True:\n"
             "  c=s.recv(65536)\n"
             "  if not c: break\n"
             "  d+=c\n"
             "print(d.decode(errors='replace'))\n")
    return [
        t.run_in("internal", [FWGATE_BIN, "run", *flags, "--", "curl", "-sS", "--max-time", "20", "--http1.0",
                              "-H", "Host:", f"http://{NAME}/"], timeout=60, env=client_env(t, **env)),
        t.run_in("internal", [FWGATE_BIN, "run", *flags, "--", fwit.PYTHON, "-c", fetch], timeout=60,
                 env=client_env(t, **env)),
    ]


def test_the_internal_link_shows_no_password_user_or_name(topo, gateway):
    # In clear first (the gateway allows it), to show that the grep finds what it looks for.
    gw = secure_gateway(gateway, topo, "optional")
    cap = InternalCapture(topo, "clear.pcap")
    try:
        runs = programs(topo, "--clear")
    finally:
        data = cap.stop()
    for cp in runs:
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    assert PASSWORD.encode() in data and USER.encode() in data and NAME.encode() in data
    clear = [s for s in gw.sessions() if s.get("protocol") == "fwc"]
    assert clear and all(s["channel"] == "clear" for s in clear), clear
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(20) is not None
    gw.expected_exit = True

    # Encrypted: fwgate run serves the programs a private agent (in $TMPDIR, here a directory of
    # this test's); the gateway requires it.
    private = topo.tmp / "run-tmp"
    private.mkdir()
    gw = secure_gateway(gateway, topo, "required")
    cap = InternalCapture(topo, "encrypted.pcap")
    try:
        runs = programs(topo, tmpdir=str(private))
    finally:
        data = cap.stop()
    for cp in runs:
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    assert len(data) > 5000, "the capture saw next to nothing: it proves nothing"
    assert PASSWORD.encode() not in data, "the password crossed the internal link in clear"
    assert USER.encode() not in data, "the user name crossed the internal link in clear"
    assert NAME.encode() not in data, "the requested name crossed the internal link in clear"
    assert MARKER.encode() in data, "the page itself (the data path) is expected in clear"
    fwc = gw.wait_sessions(lambda s: s.get("protocol") == "fwc" and s.get("command") in ("resolve", "connect"), 4)
    assert all(s["channel"] == "encrypted" and s["user"] == USER for s in fwc), fwc
    connect = [s for s in fwc if s["command"] == "connect"]
    assert {s["application"] for s in connect} >= {"curl"}, connect
    assert not list(private.iterdir()), "fwgate run left its agent's directory"

    # The clear channel is refused now, with a reason the program's user can read.
    cp = topo.run_in("internal", [FWGATE_BIN, "run", "--clear", "--debug", "--", "curl", "-sS", "--max-time", "10",
                                  f"http://{EXTERNAL}/"], timeout=30,
                     env=client_env(topo, FWGATE_USER=USER, FWGATE_PASSWORD=PASSWORD))
    assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
    assert "encrypted channel only" in out(cp), out(cp)


def tcp_payloads(path, port: int) -> list[bytes]:
    """The TCP payloads toward `port` in a pcap file of an Ethernet link (tcpdump -w), in order."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "not a little-endian microsecond pcap"
    out, at = [], 24
    while at + 16 <= len(data):
        length = struct.unpack("<I", data[at + 8:at + 12])[0]
        packet = data[at + 16:at + 16 + length]
        at += 16 + length
        if len(packet) < 34 or packet[12:14] != b"\x08\x00" or packet[23] != 6:
            continue  # IPv4 TCP only
        ihl = (packet[14] & 0x0F) * 4
        tcp = packet[14 + ihl:]
        total = struct.unpack(">H", packet[16:18])[0]
        if struct.unpack(">H", tcp[2:4])[0] != port:
            continue
        payload = tcp[(tcp[12] >> 4) * 4:total - ihl]
        if payload:
            out.append(payload)
    return out


def test_a_hosts_agent_serves_preloaded_programs_and_its_death_fails_them_at_once(topo, gateway, tmp_path):
    """`fwgate agent --socket` in the internal host; a program preloaded by hand (no fwgate run)
    with FWGATE_AGENT_SOCKET reaches the gateway through it. Killed, the next connect fails at
    once with a clear error instead of falling back to clear."""
    gw = secure_gateway(gateway, topo, "required")
    sock = str(tmp_path / "agent" / "agent.sock")
    env = client_env(topo, FWGATE_USER=USER, FWGATE_PASSWORD=PASSWORD, FWGATE_AGENT_SOCKET=sock)
    agent_log = open(tmp_path / "agent.log", "wb")
    agent = topo.spawn("internal", [FWGATE_BIN, "agent", "--socket", sock], stdout=agent_log, stderr=agent_log,
                       env=env)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline and agent.poll() is None:
            time.sleep(0.05)
        assert os.path.exists(sock), (tmp_path / "agent.log").read_text()
        assert oct(os.stat(os.path.dirname(sock)).st_mode & 0o777) == "0o755", "root's agent directory"
        preload = dict(env, LD_PRELOAD=client_library())
        cp = topo.run_in("internal", [FWGATE_BIN, "check"], timeout=30, env=env)
        assert "Programs: encrypted through the agent that answers here" in out(cp), out(cp)
        cp = topo.run_in("internal", ["curl", "-sS", "--max-time", "20", f"http://{NAME}/"], timeout=60,
                         env=preload)
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
        rec = gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "connect")
        assert rec["channel"] == "encrypted" and rec["application"] == "curl", rec
        # The agent says who asks: the program's own PID and account, as the kernel tells them.
        assert rec["os_user"] == "root", rec
        # The next connection resumes with the ticket the first one got (no handshake); a copy
        # of its first bytes, sent again from the internal host, is refused as a replay.
        cap = InternalCapture(topo, "resumed.pcap")
        try:
            cp = topo.run_in("internal", ["curl", "-sS", "--max-time", "20", f"http://{EXTERNAL}/"], timeout=60,
                             env=preload)
        finally:
            cap.stop()
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
        firsts = [p for p in tcp_payloads(cap.path, 1745) if p[:1] == b"\x13"]
        assert firsts, "no Resume frame on the internal link"
        assert PASSWORD.encode() not in firsts[0] and USER.encode() not in firsts[0]
        connects = len([s for s in gw.sessions() if s.get("command") == "connect"])
        replay = ("import socket,sys\n"
                  f"s=socket.create_connection(('{topo.gw_inside}',1745),timeout=10)\n"
                  "s.sendall(bytes.fromhex(sys.argv[1]))\n"
                  "print(len(s.recv(4096)))\n")
        cp = topo.run_in("internal", [fwit.PYTHON, "-c", replay, firsts[0].hex()], timeout=30)
        assert cp.returncode == 0, out(cp)
        rec = gw.wait_session(lambda s: s.get("error") == "this resumed connection was seen before: a replay")
        assert rec["outcome"] == "bad-request", rec
        time.sleep(0.3)
        assert len([s for s in gw.sessions() if s.get("command") == "connect"]) == connects, \
            "the replayed Connect was acted on"
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        agent_log.close()
    started = time.monotonic()
    cp = topo.run_in("internal", ["curl", "-sS", "--max-time", "20", f"http://{EXTERNAL}/"], timeout=60,
                     env=dict(preload, FWGATE_DEBUG="1"))
    took = time.monotonic() - started
    assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
    assert "FWGATE_AGENT_SOCKET names no agent that answers" in out(cp), out(cp)
    assert took < 10, f"the failed connect took {took:.1f} s"


def test_an_enrolled_hosts_agent_makes_the_local_account_the_user(topo, gateway, tmp_path):
    """Transparent credentials (issue 16.2): the host's agent proves the host key the gateway
    enrolled, and says from the kernel (SO_PEERCRED) which local account asks. A program run as
    `nobody` reaches the gateway as user nobody with no password anywhere ("auth": "host"); one
    run as `daemon` that claims FWGATE_USER=nobody is refused and logged as daemon; daemon as
    itself is not the user the rule names."""
    import tempfile
    work = tempfile.mkdtemp(prefix="fwgate-hostid-")  # 0700: the agent's socket goes deeper
    os.chmod(work, 0o755)
    try:
        key_file = os.path.join(work, "host.key")
        shown = fwit.run([FWGATE_BIN, "agent", "--host-key", key_file, "--show-host-key"], timeout=20)
        assert shown.returncode == 0, out(shown)
        key = shown.stdout.decode().split('"')[1]
        assert len(key) == 44, shown.stdout
        rules = [{"name": "nobody only", "action": "allow", "sources": ["internal"], "users": ["nobody"]}]
        gw = gateway(netns=topo.ns["gateway"], health=False, bind_external=None,
                     listeners=[{"address": topo.gw_inside, "port": 0, "methods": ["none"]}],
                     networks={"internal": {"ranges": [f"10.{topo.a}.1.0/24"], "firewall_clients": True}},
                     rules=rules,
                     extra=(f'\n[control]\nlisten = ["{topo.gw_inside}:1745"]\nencryption = "required"\n'
                            f'[control.hosts]\n"ws-internal" = "{key}"\n'))
        gw.wait_control_addresses()
        sock = os.path.join(work, "agent", "agent.sock")
        env = client_env(topo, FWGATE_AGENT_SOCKET=sock, FWGATE_CACHE=os.path.join(work, "cache"),
                         HOME=work)
        log = open(tmp_path / "agent.log", "wb")
        agent = topo.spawn("internal", [FWGATE_BIN, "agent", "--socket", sock, "--host-key", key_file],
                           stdout=log, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock) and time.monotonic() < deadline and agent.poll() is None:
                time.sleep(0.05)
            assert os.path.exists(sock), (tmp_path / "agent.log").read_text()
            preload = dict(env, LD_PRELOAD=client_library())

            def as_user(uid: int, **extra):
                return topo.run_in("internal", ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                                                "curl", "-sS", "--max-time", "20", f"http://{EXTERNAL}/"],
                                   timeout=60, env=dict(preload, **extra))

            cp = as_user(65534)
            assert cp.returncode == 0 and MARKER in out(cp), out(cp)
            rec = gw.wait_session(lambda s: s.get("command") == "connect" and s.get("outcome") == "succeeded")
            assert rec["user"] == "nobody" and rec["auth"] == "host" and rec["os_user"] == "nobody", rec
            assert rec["rule"] == "nobody only", rec

            cp = as_user(1, FWGATE_USER="nobody")
            assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
            rec = gw.wait_session(lambda s: s.get("outcome") == "auth-failed")
            assert rec["user"] == "daemon" and rec["auth"] == "host", rec
            assert "daemon on ws-internal may not speak as nobody" in rec["error"], rec

            cp = as_user(1)
            assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
            rec = gw.wait_session(lambda s: s.get("command") == "connect" and s.get("user") == "daemon"
                                  and s.get("outcome") == "denied")
            assert rec["auth"] == "host", rec
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(10)
            log.close()
    finally:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
