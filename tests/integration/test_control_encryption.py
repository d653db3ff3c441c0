"""The encrypted control channel (control protocol 3, issue 16.1) from the wire: a capture holds
no password, user or requested name (and the same grep finds them in a clear Hello, so it can
fail); a replayed handshake is refused and does not act twice; a man in the middle with another
key is refused with both fingerprints; encryption = "required" refuses a clear Hello; the key
survives a restart.

The test side speaks Noise with python3-dissononce, an implementation that is not fwgate's
(fwctl.Noise), and fwgate's own client is `fwgate check`. Every gateway listens on 127.0.0.1:0.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import fwctl
import fwit
from conftest import FWGATE_BIN

pytestmark = pytest.mark.fwgate_only

LOOPBACK_FWC = ("\n[control]\nlisten = [\"127.0.0.1:0\"]\n[networks.loopback]\nfirewall_clients = true\n"
                "[firewall_client]\nrequire_definition = false\n")
PASSWORD = "cleartext-canary-" + os.urandom(4).hex()
USER = "alice"


def control_gateway(gateway, extra=LOOPBACK_FWC, **kw):
    gw = gateway(users={USER: PASSWORD}, methods=["password"], extra=extra, **kw)
    return gw, gw.wait_control_addresses()[0]


def client_env(tmp_path, addr, **extra) -> dict:
    """fwgate check's world: its own HOME, cache and config directory, this gateway."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc").mkdir(exist_ok=True)
    env = fwit.clean_env(HOME=str(home), FWGATE_CONFIG_DIR=str(tmp_path / "etc"),
                         FWGATE_CACHE=str(tmp_path / "cache" / "client.cache"),
                         FWGATE_SERVER=f"{addr[0]}:{addr[1]}", FWGATE_DETECT_TIMEOUT="1")
    env.update(extra)
    return env


def check(env) -> subprocess.CompletedProcess:
    return fwit.run([FWGATE_BIN, "check"], timeout=30, env=env)


class Capture:
    """tcpdump on the loopback interface, this port only; bytes() after stop()."""

    def __init__(self, path, port: int):
        self.path = path
        self.proc = subprocess.Popen([fwit.require_tool("tcpdump"), "-Z", "root", "--immediate-mode", "-U", "-n",
                                      "-i", "lo", "-w", str(path), "tcp", "port", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        fwit.read_pipe(self.proc.stderr, 400, 10, until=b"\n")

    def stop(self) -> bytes:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        return self.path.read_bytes()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def test_a_capture_holds_no_password_user_or_name_and_a_clear_hello_does(gateway, tmp_path):
    gw, addr = control_gateway(gateway)
    secret_name = fwit.TEST_NAME
    env = client_env(tmp_path, addr, FWGATE_USER=USER, FWGATE_PASSWORD=PASSWORD)
    cap = Capture(tmp_path / "encrypted.pcap", addr[1])
    try:
        cp = check(env)
        key = fwctl.key_offer(addr)
        _, replies, s = fwctl.encrypted_exchange(
            addr, key, fwctl.hello(user=USER, password=PASSWORD, timestamp=fwctl.now_ms()),
            fwctl.resolve(secret_name))
        s.close()
    finally:
        data = cap.stop()
    text = cp.stdout.decode(errors="replace")
    assert cp.returncode == 0, text + cp.stderr.decode(errors="replace")
    assert "Channel: encrypted (Noise_IK_25519_ChaChaPoly_SHA256)" in text, text
    assert f"Gateway key: {fwctl.fingerprint(key)}" in text, text
    assert replies[0]["status"] == "Ok" and replies[1]["addresses"] == ["127.0.0.1"], replies
    assert len(data) > 1000, f"the capture is nearly empty ({len(data)} bytes): it saw nothing"
    assert PASSWORD.encode() not in data, "the password is in the capture of the encrypted channel"
    assert USER.encode() not in data, "the user name is in the capture of the encrypted channel"
    assert secret_name.encode() not in data, "the requested name is in the capture"
    encrypted = gw.wait_sessions(lambda r: r.get("protocol") == "fwc" and r.get("user") == USER, 2)
    assert all(r["channel"] == "encrypted" for r in encrypted), encrypted

    # The same grep on a clear Hello finds all three: it can fail.
    cap = Capture(tmp_path / "clear.pcap", addr[1])
    try:
        clear = fwctl.exchange(addr, fwctl.hello(user=USER, password=PASSWORD), fwctl.resolve(secret_name))
    finally:
        data = cap.stop()
    assert clear[0]["status"] == "Ok", clear
    assert PASSWORD.encode() in data and USER.encode() in data and secret_name.encode() in data
    rec = gw.wait_session(lambda r: r.get("protocol") == "fwc" and r.get("channel") == "clear"
                          and r.get("command") == "resolve")
    assert rec["user"] == USER, rec


def test_a_replayed_handshake_is_refused_and_does_not_connect_twice(gateway, echo_server):
    gw, addr = control_gateway(gateway)
    key = fwctl.key_offer(addr)
    noise = fwctl.Noise(key)
    payload = (fwctl.hello(user=USER, password=PASSWORD, timestamp=fwctl.now_ms()) +
               fwctl.connect("127.0.0.1", echo_server.port))
    first = noise.message1(payload)
    _, replies, s = fwctl.encrypted_exchange(addr, key, noise=noise, first=first)
    with s:
        assert [r.get("status") for r in replies] == ["Ok", "Ok"], replies
        assert replies[1]["type"] == fwctl.CONNECTED, replies
        # After Connected the stream is the application's, in clear.
        s.sendall(b"through the gateway\n")
        assert fwit.recv_exact(s, 20) == b"through the gateway\n"
    assert len(echo_server.peers) == 1, echo_server.peers

    # The same bytes again, as from a capture. The replayer cannot read the answer; the test can,
    # holding the first handshake's keys.
    again = fwctl.Noise(key, static_secret=noise.static_secret, e_secret=noise.e_secret)
    assert again.message1(payload) == first  # the same keys write the same message 1
    _, replies, s = fwctl.encrypted_exchange(addr, key, noise=again, first=first)
    s.close()
    assert replies and replies[0]["status"] == "Replayed", replies
    assert "seen before" in replies[0]["message"], replies
    time.sleep(0.3)
    assert len(echo_server.peers) == 1, "the replayed Connect reached the destination"
    rec = gw.wait_session(lambda r: r.get("error") == "this handshake was seen before: a replay")
    assert rec["outcome"] == "bad-request" and rec["channel"] == "encrypted", rec

    # A fresh handshake whose Timestamp is ten minutes old (a copy older than the cache's memory).
    stale = fwctl.Noise(key)
    old = fwctl.now_ms() - 10 * 60 * 1000
    _, replies, s = fwctl.encrypted_exchange(
        addr, key, fwctl.hello(user=USER, password=PASSWORD, timestamp=old),
        fwctl.connect("127.0.0.1", echo_server.port), noise=stale)
    s.close()
    assert replies[0]["status"] == "Replayed", replies
    assert "behind the gateway's" in replies[0]["message"], replies
    # A handshake's Hello without a Timestamp is refused the same way.
    _, replies, s = fwctl.encrypted_exchange(addr, key, fwctl.hello(), fwctl.resolve(fwit.TEST_NAME))
    s.close()
    assert replies[0]["status"] == "Replayed" and "no Timestamp" in replies[0]["message"], replies
    assert len(echo_server.peers) == 1, echo_server.peers


class ImpostorGateway:
    """Listens where the client looks for its gateway. relay=None: answers a Handshake as a
    gateway with another key must (Welcome KeyMismatch in clear, its own key); else a TCP relay to
    the real gateway. Either way it keeps every byte it received."""

    def __init__(self, relay=None):
        self.relay = relay
        self.key = os.urandom(32)
        self.received = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return self.sock.getsockname()

    def _loop(self):
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with c:
                c.settimeout(5)
                if self.relay is None:
                    self._impostor(c)
                else:
                    self._pipe(c)

    def _impostor(self, c):
        got = fwctl.read_raw_frame(c)
        if got is None:
            return
        self.received += bytes([got[0]]) + got[1]
        body = (fwctl.attr(fwctl.T_STATUS, bytes([15])) + fwctl.attr(fwctl.T_VERSION, b"\x00\x03") +
                fwctl.attr(fwctl.T_PUBLIC_KEY, self.key))
        c.sendall(fwctl.frame(fwctl.WELCOME, body))

    def _pipe(self, c):
        with socket.create_connection(self.relay, timeout=5) as up:
            for _ in range(200):
                import select
                ready, _, _ = select.select([c, up], [], [], 5)
                if not ready:
                    return
                for r in ready:
                    data = r.recv(65536)
                    if not data:
                        return
                    if r is c:
                        self.received += data
                        up.sendall(data)
                    else:
                        c.sendall(data)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_a_man_in_the_middle_with_another_key_is_refused_naming_both(gateway, tmp_path):
    import base64
    gw, addr = control_gateway(gateway)
    key = fwctl.key_offer(addr)
    pinned = base64.b64encode(key).decode()
    impostor = ImpostorGateway()
    relay = ImpostorGateway(relay=addr)
    try:
        cp = check(client_env(tmp_path, impostor.addr, FWGATE_GATEWAY_KEY=pinned, FWGATE_USER=USER,
                              FWGATE_PASSWORD=PASSWORD))
        text = cp.stdout.decode(errors="replace")
        assert cp.returncode == 2, text
        assert "Gateway key: REFUSED" in text, text
        assert f"pinned {fwctl.fingerprint(key)} (FWGATE_GATEWAY_KEY)" in text, text
        assert f"the gateway presents {fwctl.fingerprint(impostor.key)}" in text, text
        assert impostor.received.startswith(bytes([fwctl.HANDSHAKE])), impostor.received[:8]
        assert PASSWORD.encode() not in impostor.received and USER.encode() not in impostor.received

        # One that only relays gets the exchange through and reads nothing of it.
        cp = check(client_env(tmp_path, relay.addr, FWGATE_GATEWAY_KEY=pinned, FWGATE_USER=USER,
                              FWGATE_PASSWORD=PASSWORD))
        text = cp.stdout.decode(errors="replace")
        assert cp.returncode == 0, text
        assert f"Gateway key: {fwctl.fingerprint(key)} (pinned, FWGATE_GATEWAY_KEY)" in text, text
        assert len(relay.received) > 100, relay.received
        assert PASSWORD.encode() not in relay.received and USER.encode() not in relay.received
    finally:
        impostor.close()
        relay.close()


def test_encryption_required_refuses_a_clear_hello_and_serves_the_channel(gateway, tmp_path):
    gw, addr = control_gateway(gateway, extra=LOOPBACK_FWC.replace(
        "[networks.loopback]", "encryption = \"required\"\n[networks.loopback]"))
    clear = fwctl.exchange(addr, fwctl.hello(user=USER, password=PASSWORD), fwctl.resolve(fwit.TEST_NAME))
    assert len(clear) == 1 and clear[0]["status"] == "EncryptionRequired", clear
    assert "encrypted channel only" in clear[0]["message"], clear
    rec = gw.wait_session(lambda r: r.get("result") == "the gateway requires the encrypted channel")
    assert rec["channel"] == "clear", rec
    cp = check(client_env(tmp_path, addr, FWGATE_USER=USER, FWGATE_PASSWORD=PASSWORD))
    assert cp.returncode == 0, cp.stdout.decode(errors="replace")
    # An old client (version 2, in clear) is told the versions, not EncryptionRequired.
    old = fwctl.exchange(addr, fwctl.hello(version=2))
    assert old[0]["status"] == "VersionMismatch" and old[0]["version"] == 3, old


def test_the_key_file_is_kept_across_restarts(gateway, tmp_path):
    key_file = tmp_path / "keys" / "control.key"
    extra = LOOPBACK_FWC.replace("[networks.loopback]", f"key_file = \"{key_file}\"\n[networks.loopback]")
    fingerprints = []
    for _ in range(2):
        gw, addr = control_gateway(gateway, extra=extra)
        found = re.search(r"control channel key (SHA256:\S+) \(" + re.escape(str(key_file)), gw.stderr())
        assert found, gw.tail()
        assert found.group(1) == fwctl.fingerprint(fwctl.key_offer(addr)), gw.tail()
        fingerprints.append(found.group(1))
        gw.signal(signal.SIGTERM)
        assert gw.wait_exit(20) is not None
        gw.expected_exit = True
    assert fingerprints[0] == fingerprints[1], fingerprints
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "created the key" in open(os.path.join(tmp_path, "gw1", "stderr.log")).read()
