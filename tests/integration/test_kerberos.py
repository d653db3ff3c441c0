"""Kerberos (issue 16.2): a realm of the test's own (MIT krb5kdc on the internal host, principals
alice and bob, the gateway's service keys in a keytab) in the namespace topology of test_client.py
(IP forwarding off on the gateway). Users kinit with their passwords on the internal host, and
then, with no password anywhere in fwgate's configuration or the client's:
- curl --socks5-gssapi reaches the external host through SOCKS 5's GSS-API method (RFC 1961);
- curl --proxy-negotiate and Chromium reach it through the Web Proxy (Proxy-Authorization:
  Negotiate);
- programs under `fwgate run`, and `fwgate check`, speak as the principal on the control channel;
and the gateway's rules match the identity (alice may, bob may not), its session log shows it with
"auth": "kerberos", a token that does not verify is refused and counted as a failed login.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import subprocess

import pytest

import fwit
from conftest import FWGATE_BIN
from kdc import REALM, Realm
from test_client import EXTERNAL, MARKER, NAME, client_env, out, topo  # noqa: F401

pytestmark = pytest.mark.fwgate_only

PASSWORDS = {"alice": "alice-kdc-" + os.urandom(4).hex(), "bob": "bob-kdc-" + os.urandom(4).hex()}
WEB_PORT = 8080


class Kerberized:
    """The topology with its realm, the users' credential caches and a gateway that knows the
    realm's users by their bare names (local_realms)."""

    def __init__(self, t, gateway, methods=("kerberos",), encryption="optional"):
        self.t = t
        self.realm = Realm(t.tmp, t.internal)
        for user, password in PASSWORDS.items():
            self.realm.add_user(user, password)
        self.keytab = t.tmp / "gateway.keytab"
        for service in ("rcmd", "HTTP", "fwgate"):
            self.realm.add_service(f"{service}/{t.gw_inside}", self.keytab)
        self.realm.start(t, "internal")
        self.ccache = {}
        for user, password in PASSWORDS.items():
            self.ccache[user] = t.tmp / f"ccache-{user}"
            self.realm.kinit(t, "internal", user, password, self.ccache[user])
        rules = [{"name": "alice-out", "action": "allow", "sources": ["internal"], "users": ["alice"]}]
        self.gw = gateway(
            netns=t.ns["gateway"], health=False, bind_external=None,
            listeners=[{"address": t.gw_inside, "port": 0, "methods": list(methods)}],
            networks={"internal": {"ranges": [f"10.{t.a}.1.0/24"], "firewall_clients": True}},
            rules=rules, web_proxy={"listen": [f"{t.gw_inside}:{WEB_PORT}"]}, expected_web=1,
            env=dict(KRB5_CONFIG=str(self.realm.conf), KRB5RCACHEDIR=str(self.realm.rcache)),
            extra=(f'\n[kerberos]\nkeytab = "{self.keytab}"\nlocal_realms = ["{REALM}"]\n'
                   f'\n[control]\nlisten = ["{t.gw_inside}:1745"]\nencryption = "{encryption}"\n'))

    def env(self, user: str | None, **extra) -> dict:
        ccache = self.ccache[user] if user else self.t.tmp / "ccache-nobody"
        return client_env(self.t, **self.realm.client_env(ccache), **extra)

    def run(self, user: str | None, argv: list[str], timeout: float = 60.0, **extra) -> subprocess.CompletedProcess:
        return self.t.run_in("internal", argv, timeout=timeout, env=self.env(user, **extra))

    def sessions(self, protocol: str) -> list[dict]:
        return [s for s in self.gw.sessions() if s.get("protocol") == protocol]


GSS_CLIENT = os.path.join(fwit.REPO, "tests", "integration", "helpers", "gss_socks_client.py")


def gss_socks(k: Kerberized, user: str | None, *flags: str) -> subprocess.CompletedProcess:
    """helpers/gss_socks_client.py: RFC 1961 on MIT krb5 (python3-gssapi) with the user's ticket.
    Debian 12's curl 7.88 offers the method but cannot finish it with any server (its SOCKS state
    machine forgets the method after the first read: fixed in curl 8.17), and its dante-client is
    built without GSS-API, so the client is the test's own over the real library."""
    return k.run(user, [fwit.PYTHON, GSS_CLIENT, k.t.gw_inside, str(k.gw.port), EXTERNAL, "80", *flags])


def test_socks5_gssapi_proves_the_user_and_the_rules_match_it(topo, gateway):
    k = Kerberized(topo, gateway)
    token = topo.tmp / "alice.token"
    alice = gss_socks(k, "alice", "--save-token", str(token))
    assert alice.returncode == 0 and MARKER in out(alice), out(alice)
    assert "protection level 00" in out(alice)
    # The NEC reference implementation's unwrapped protection level is understood too.
    nec = gss_socks(k, "alice", "--nec")
    assert nec.returncode == 0 and MARKER in out(nec), out(nec)
    # The same authenticator again, on a new connection: a replay, refused by the replay cache.
    replay = gss_socks(k, "alice", "--replay-token", str(token))
    assert replay.returncode == 2 and "aborted" in out(replay), out(replay)
    bob = gss_socks(k, "bob")
    assert bob.returncode == 2 and "refused the CONNECT: reply 2" in out(bob), out(bob)
    nobody = gss_socks(k, None)
    assert nobody.returncode != 0 and MARKER not in out(nobody)

    socks = k.gw.wait_sessions(lambda s: s.get("protocol") == "socks5" and s.get("user"), count=3)
    ok = [s for s in socks if s.get("user") == "alice"]
    assert len(ok) == 2 and all(s["auth"] == "kerberos" and s["result"] == "succeeded" for s in ok), socks
    denied = [s for s in socks if s.get("user") == "bob"]
    assert len(denied) == 1 and denied[0]["auth"] == "kerberos" and denied[0]["outcome"] == "denied", socks
    replayed = k.gw.wait_sessions(lambda s: s.get("result") == "auth-failed")
    assert replayed[0]["auth"] == "kerberos" and "replay" in replayed[0]["error"].lower(), replayed


def gss_exchange(host: str, port: int, token: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\x05\x01\x01")
        assert s.recv(2) == b"\x05\x01"
        s.sendall(b"\x01\x01" + struct.pack(">H", len(token)) + token)
        reply = b""
        while len(reply) < 2:
            chunk = s.recv(64)
            if not chunk:
                break
            reply += chunk
        return reply


def test_a_token_that_does_not_verify_is_aborted_and_counted(topo, gateway):
    k = Kerberized(topo, gateway)
    code = (
        "import socket,struct,sys\n"
        f"s=socket.create_connection(('{topo.gw_inside}',{k.gw.port}),timeout=10)\n"
        "s.sendall(b'\\x05\\x01\\x01'); assert s.recv(2)==b'\\x05\\x01'\n"
        "t=b'\\x60\\x82\\x01\\x00'+bytes(300)\n"
        "s.sendall(b'\\x01\\x01'+struct.pack('>H',len(t))+t)\n"
        "r=s.recv(64); sys.stdout.write(r.hex()); s.close()\n")
    cp = k.run(None, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0, out(cp)
    assert cp.stdout.decode() == "01ff", out(cp)
    failed = k.gw.wait_sessions(lambda s: s.get("result") == "auth-failed")
    assert failed[0]["auth"] == "kerberos" and "Kerberos" in failed[0].get("error", ""), failed
