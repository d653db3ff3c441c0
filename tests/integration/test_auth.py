"""Username/password (RFC 1929) on a listener that requires it."""

from __future__ import annotations

import os
import signal
import time

import pytest

import fwit
from conftest import run_fwgate


@pytest.fixture
def pw_gateway(gateway, users):
    return gateway(methods=["password"], users=users)


def test_curl_right_password(pw_gateway, http_server, users):
    (user, password), = users.items()
    cp = fwit.run([fwit.require_tool("curl"), "-sS", "--max-time", "20", "--socks5", f"{pw_gateway.host}:{pw_gateway.port}",
                   "-U", f"{user}:{password}", http_server.url()])
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    assert cp.stdout == http_server.body


def test_curl_wrong_password_fails(pw_gateway, http_server, users):
    (user, _), = users.items()
    cp = fwit.run([fwit.require_tool("curl"), "-sS", "--max-time", "20", "--socks5", f"{pw_gateway.host}:{pw_gateway.port}",
                   "-U", f"{user}:not-the-password", http_server.url()])
    assert cp.returncode != 0, "curl succeeded with a wrong password"
    assert http_server.requests == [], "the request reached the server with a wrong password"


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user", "empty-password"])
def test_raw_bad_credentials(pw_gateway, echo_server, users, who):
    """RFC 1929: a status byte other than 0x00, then the connection closes."""
    (user, password), = users.items()
    creds = {"wrong-password": (user, password + "x"), "unknown-user": ("mallory", password),
             "empty-password": (user, "")}[who]
    with fwit.connect(pw_gateway.host, pw_gateway.port) as s:
        assert fwit.s5_greet(s, b"\x02") == 0x02
        status = fwit.s5_login(s, *creds)
        assert status[0] == 0x01, f"RFC 1929 reply version {status.hex(' ')}, expected 01"
        assert status[1] != 0x00, f"bad credentials accepted: {status.hex(' ')}"
        extra = fwit.assert_closed(s, 5)
        assert extra == b"", f"bytes after the failure status: {extra!r}"
    fwit.assert_serves(pw_gateway.host, pw_gateway.port, echo_server.port, *next(iter(users.items())))


def test_raw_right_password(pw_gateway, echo_server, users):
    (user, password), = users.items()
    with fwit.connect(pw_gateway.host, pw_gateway.port) as s:
        # Offering both methods: a password-only listener must pick 0x02, never 0x00.
        assert fwit.s5_greet(s, b"\x00\x02") == 0x02
        assert fwit.s5_login(s, user, password) == b"\x01\x00"
        s.sendall(fwit.s5_request(1, "127.0.0.1", echo_server.port))
        raw, fields = fwit.read_s5_reply(s)
        assert fields["rep"] == 0, raw.hex(" ")
        fwit.echo_roundtrip(s, b"authenticated data\n")


def test_no_auth_offer_rejected(pw_gateway, echo_server, users):
    """A listener that requires a password answers a no-auth-only greeting with 05 FF and closes."""
    with fwit.connect(pw_gateway.host, pw_gateway.port) as s:
        s.sendall(b"\x05\x01\x00")
        assert fwit.recv_exact(s, 2) == b"\x05\xff"
        fwit.assert_closed(s, 5)
    assert echo_server.peers == []
    fwit.assert_serves(pw_gateway.host, pw_gateway.port, echo_server.port, *next(iter(users.items())))


@pytest.mark.fwgate_only
@pytest.mark.parametrize("listener", ["no-auth", "password"])
def test_greeting_with_zero_methods_gets_ff(gateway, users, echo_server, listener):
    """NMETHODS = 0 offers nothing: RFC 1928's answer is 05 FF, then a close (not a silent close)."""
    gw = gateway() if listener == "no-auth" else gateway(methods=["password"], users=users)
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(b"\x05\x00")
        assert fwit.recv_exact(s, 2) == b"\x05\xff"
        assert fwit.assert_closed(s, 5) == b""
    assert echo_server.peers == []
    creds = () if listener == "no-auth" else next(iter(users.items()))
    fwit.assert_serves(gw.host, gw.port, echo_server.port, *creds)


@pytest.mark.fwgate_only
def test_socks4_rejected_on_password_listener(pw_gateway, echo_server, users):
    """SOCKS 4 carries no password: a password-only listener replies 91 and closes."""
    with fwit.connect(pw_gateway.host, pw_gateway.port) as s:
        s.sendall(fwit.s4_request(1, "127.0.0.1", echo_server.port, b"alice"))
        reply = fwit.recv_exact(s, 8)
        assert reply[:2] == b"\x00\x5b", f"SOCKS4 reply {reply.hex(' ')}, expected 00 5b (91)"
        fwit.assert_closed(s, 5)
    assert echo_server.peers == [], "the gateway connected for an unauthenticated SOCKS4 client"


@pytest.mark.fwgate_only
def test_passwd_stores_hashes(tmp_path):
    """fwgate passwd writes a hash (argon2id or yescrypt), mode 0600, and deletes users."""
    import os
    import stat

    from conftest import run_fwgate

    path = str(tmp_path / "users")
    for name, pw in (("alice", "first-secret"), ("bob", "second-secret")):
        cp = run_fwgate(["passwd", "--users-file", path, "--stdin", name], input=(pw + "\n").encode())
        assert cp.returncode == 0, cp.stderr
    text = open(path).read()
    assert "first-secret" not in text and "second-secret" not in text
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 2, lines
    for ln in lines:
        name, _, digest = ln.partition(":")
        assert name in ("alice", "bob")
        assert digest.startswith(("$argon2id$", "$y$")), f"not an argon2id/yescrypt hash: {ln!r}"
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, oct(os.stat(path).st_mode)
    cp = run_fwgate(["passwd", "--users-file", path, "--delete", "bob"])
    assert cp.returncode == 0, cp.stderr
    assert "bob" not in open(path).read()


def _reload(gw, times: int) -> None:
    """SIGHUP `times` times, each waited for in the gateway's log, with no login between."""
    for _ in range(times):
        before = gw.stderr().count("SIGHUP: reloaded")
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * fwit.SLOW
        while gw.stderr().count("SIGHUP: reloaded") <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gw.stderr().count("SIGHUP: reloaded") > before, gw.tail()


def _login(gw, user: str, password: str) -> bytes:
    with fwit.connect(gw.host, gw.port) as s:
        assert fwit.s5_greet(s, b"\x02") == 0x02
        return fwit.s5_login(s, user, password)


@pytest.mark.fwgate_only
def test_revocation_after_two_reloads(gateway, users):
    """A changed password and a removed user take effect at the reload: the old password, which the
    gateway had verified and cached, never works again, even across two reloads with no login
    between them (a new users database may then be allocated where the first one was)."""
    gw = gateway(methods=["password"], users=users)
    (user, password), = users.items()
    path = os.path.join(gw.workdir, "users")
    assert _login(gw, user, password) == b"\x01\x00"
    assert _login(gw, user, password) == b"\x01\x00"  # the second is answered from the cache
    cp = run_fwgate(["passwd", "--users-file", path, "--stdin", user], input=b"the-new-password\n")
    assert cp.returncode == 0, cp.stderr
    _reload(gw, 2)
    assert _login(gw, user, password)[1] != 0x00, "the old password still works after the change"
    assert _login(gw, user, "the-new-password") == b"\x01\x00"
    cp = run_fwgate(["passwd", "--users-file", path, "--delete", user])
    assert cp.returncode == 0, cp.stderr
    _reload(gw, 2)
    assert _login(gw, user, "the-new-password")[1] != 0x00, "a removed user still logs in"
    # The user comes back with the original password, for the fixture's after-test check.
    cp = run_fwgate(["passwd", "--users-file", path, "--stdin", user], input=(password + "\n").encode())
    assert cp.returncode == 0, cp.stderr
    _reload(gw, 1)
    assert _login(gw, user, password) == b"\x01\x00"
