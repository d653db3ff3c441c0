"""Raw bytes: each malformed or refused request gets exactly the right reply, then a close, and the
gateway goes on serving normal requests."""

from __future__ import annotations

import socket
import struct
import time

import pytest

import fwit


def expect_s5_error(sock: socket.socket, rep: int, atyp: int | None = 1) -> bytes:
    """A complete error reply VER=05 REP RSV=00 ATYP ..., then the close RFC 1928 requires."""
    raw, fields = fwit.read_s5_reply(sock, 20)
    assert fields["rep"] == rep, f"REP {fields['rep']:#04x}, expected {rep:#04x} (reply {raw.hex(' ')})"
    if atyp is not None:
        assert raw[:4] == bytes([5, rep, 0, atyp]), f"reply {raw.hex(' ')}, expected 05 {rep:02x} 00 {atyp:02x} ..."
        assert len(raw) == {1: 10, 4: 22}[atyp], f"reply length {len(raw)}: {raw.hex(' ')}"
    trailing = fwit.assert_closed(sock, 5)
    assert trailing == b"", f"bytes after the error reply: {trailing!r}"
    return raw


@pytest.mark.fwgate_only  # microsocks answers any first byte with 05 FF
@pytest.mark.parametrize("first", [b"\x06\x01\x00", b"\x00\x00\x00\x00", b"GET / HTTP/1.0\r\n\r\n"],
                         ids=["version-6", "version-0", "http"])
def test_bad_version_closes(gateway, echo_server, first):
    gw = gateway()
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(first)
        data = fwit.assert_closed(s, 5)
        assert data == b"", f"the gateway answered a bad version with {data!r}"
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.parametrize("methods", [b"\x01", b"\x03\x80\xfe", b"\x02"], ids=["gssapi", "private", "password-only"])
def test_no_acceptable_method(gateway, echo_server, methods):
    gw = gateway()  # offers "none" only
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(bytes([5, len(methods)]) + methods)
        assert fwit.recv_exact(s, 2) == b"\x05\xff"
        fwit.assert_closed(s, 5)
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.parametrize("cmd", [0x00, 0x04, 0xFF])
def test_unsupported_command(gateway, echo_server, cmd):
    gw = gateway()
    raw, fields, s = fwit.s5_try(gw.host, gw.port, "127.0.0.1", echo_server.port, cmd=cmd)
    with s:
        assert raw[:4] == bytes([5, 7, 0, 1]) and len(raw) == 10, f"command {cmd:#04x}: reply {raw.hex(' ')}"
        fwit.assert_closed(s, 5)
    assert echo_server.peers == []
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.parametrize("atyp", [0x00, 0x02, 0x05, 0xFF])
def test_unknown_address_type(gateway, echo_server, atyp):
    gw = gateway()
    with fwit.connect(gw.host, gw.port) as s:
        assert fwit.s5_greet(s) == 0
        s.sendall(bytes([5, 1, 0, atyp]) + socket.inet_aton("127.0.0.1") + struct.pack("!H", echo_server.port))
        expect_s5_error(s, 8)
    assert echo_server.peers == []
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.fwgate_only  # microsocks answers 01 (general failure)
def test_unresolvable_name(gateway, echo_server):
    """A name in no hosts file: REP 04 at once. The gateway's resolver context has no DNS, so this
    never waits on (or depends on) a DNS server of the machine."""
    gw = gateway()
    with fwit.connect(gw.host, gw.port) as s:
        assert fwit.s5_greet(s) == 0
        started = time.monotonic()
        s.sendall(fwit.s5_request(1, fwit.UNKNOWN_NAME, 80))
        expect_s5_error(s, 4, atyp=None)
        took = time.monotonic() - started
    assert took < 2 * fwit.SLOW, f"the answer took {took:.1f}s: was a DNS server asked?"
    rec = gw.wait_session(lambda r: fwit.UNKNOWN_NAME in str(r.get("requested")))
    assert rec["reply"] == 4, rec
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


def test_refused_port(gateway, echo_server, refused_port):
    gw = gateway()
    raw, fields, s = fwit.s5_try(gw.host, gw.port, "127.0.0.1", refused_port)
    with s:
        assert raw[:4] == b"\x05\x05\x00\x01" and len(raw) == 10, f"reply {raw.hex(' ')}, expected 05 05 00 01 ..."
        fwit.assert_closed(s, 5)
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.fwgate_only  # microsocks answers with ATYP 01
def test_refused_port_ipv6(gateway, echo_server):
    gw = gateway()
    port = fwit.refused_port("::1")
    raw, fields, s = fwit.s5_try(gw.host, gw.port, "::1", port)
    with s:
        # The error reply carries the request's address type (IPv6).
        assert raw[:4] == b"\x05\x05\x00\x04" and len(raw) == 22, f"reply {raw.hex(' ')}, expected 05 05 00 04 ..."
        fwit.assert_closed(s, 5)
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.fwgate_only
def test_rule_deny(gateway, echo_server, first_writer):
    """A deny rule for one port: REP 02 and no connection to the destination; other ports work."""
    deny = {"name": "deny the echo port", "action": "deny", "ports": [str(echo_server.port)]}
    gw = gateway(rules=[deny, dict(__import__("conftest").LOOPBACK_RULE)])
    with fwit.connect(gw.host, gw.port) as s:
        assert fwit.s5_greet(s) == 0
        s.sendall(fwit.s5_request(1, "127.0.0.1", echo_server.port))
        expect_s5_error(s, 2)
    time.sleep(0.2)
    assert echo_server.peers == [], "the gateway connected to a denied destination"
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", first_writer.port)
    with sock:
        assert fwit.recv_exact(sock, len(fwit.GREETING)) == fwit.GREETING
    rec = gw.wait_session(lambda r: str(echo_server.port) in str(r.get("requested")))
    assert rec.get("rule") == "deny the echo port", rec


@pytest.mark.fwgate_only
def test_no_matching_rule_is_deny(gateway, echo_server):
    """First match wins; no match is deny (REP 02)."""
    only = {"name": "only port 1", "action": "allow", "sources": ["loopback"], "destinations": ["any"],
            "ports": ["1"], "commands": ["connect"]}
    gw = gateway(rules=[only], health=False)
    with fwit.connect(gw.host, gw.port) as s:
        assert fwit.s5_greet(s) == 0
        s.sendall(fwit.s5_request(1, "127.0.0.1", echo_server.port))
        expect_s5_error(s, 2)
    assert echo_server.peers == []


@pytest.mark.fwgate_only
@pytest.mark.parametrize("case", ["refused", "bad-command", "unresolvable-4a"])
def test_socks4_reject(gateway, echo_server, refused_port, case):
    gw = gateway()
    request = {
        "refused": fwit.s4_request(1, "127.0.0.1", refused_port),
        "bad-command": fwit.s4_request(3, "127.0.0.1", echo_server.port),
        "unresolvable-4a": fwit.s4_request(1, "0.0.0.1", 80, domain=fwit.UNKNOWN_NAME),  # no DNS asked
    }[case]
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(request)
        reply = fwit.recv_exact(s, 8, 20)
        assert reply[0] == 0 and reply[1] == 91, f"SOCKS4 reply {reply.hex(' ')}, expected 00 5b ..."
        fwit.assert_closed(s, 5)
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


@pytest.mark.fwgate_only
def test_socks4_granted_bytes(gateway, echo_server):
    gw = gateway()
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(fwit.s4_request(1, "127.0.0.1", echo_server.port, b"someone"))
        reply = fwit.recv_exact(s, 8)
        assert reply[:2] == b"\x00\x5a", f"SOCKS4 reply {reply.hex(' ')}, expected 00 5a ..."
        fwit.echo_roundtrip(s, b"socks4 relayed\n")


@pytest.mark.fwgate_only
@pytest.mark.parametrize("prefix,answered", [
    (b"\x05", b""),
    (b"\x05\x02\x00", b""),
    (b"\x05\x01\x00\x05\x01", b"\x05\x00"),
    (b"\x04\x01\x00\x50", b""),
], ids=["one-byte", "half-greeting", "half-request", "half-socks4"])
def test_stalled_client_closed_within_handshake_timeout(gateway, echo_server, prefix, answered):
    """handshake_timeout = 1s: a client that stalls mid-handshake is closed by ~3 s, while another
    client is served during the stall."""
    gw = gateway(limits={"handshake_timeout": "1s"})
    staller = fwit.connect(gw.host, gw.port)
    t0 = time.monotonic()
    with staller:
        staller.sendall(prefix)
        fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="during-stall")
        assert time.monotonic() - t0 < 0.9, "serving the other client took longer than the handshake timeout"
        data, how = fwit.read_to_eof(staller, 3.5 / fwit.SLOW)
        elapsed = time.monotonic() - t0
        assert how in ("eof", "reset"), f"stalled client still open after {elapsed:.1f}s"
        assert data == answered, f"stalled client got {data!r}"
        assert 0.8 <= elapsed <= 3.5, f"closed after {elapsed:.2f}s, expected about 1 s"
    fwit.assert_serves(gw.host, gw.port, echo_server.port)


def test_500_half_open_connections(gateway, echo_server):
    """500 connections that send nothing or half a greeting do not stop a valid client."""
    gw = gateway(limits={"handshake_timeout": "30s"})
    partials = [b"", b"\x05", b"\x05\x02\x00", b"\x05\x01\x00\x05\x01\x00"]
    held = []
    try:
        deadline = time.monotonic() + 60 * fwit.SLOW
        for i in range(500):
            assert time.monotonic() < deadline, f"only {i} connections opened in time"
            s = socket.create_connection((gw.host, gw.port), timeout=10 * fwit.SLOW)
            held.append(s)
            if partials[i % 4]:
                s.sendall(partials[i % 4])
        t0 = time.monotonic()
        fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="beside-500-half-open")
        took = time.monotonic() - t0
        assert took < 3 * fwit.SLOW, f"valid client took {took:.2f}s beside 500 half-open connections"
        # The half-open ones are still held open (nothing has timed out yet): none was dropped to cope.
        alive = 0
        for s in held:
            s.setblocking(False)
            try:
                data = s.recv(16)
                if data not in (b"",):
                    alive += 1  # got the method selection for a full greeting: still open
            except BlockingIOError:
                alive += 1
            except ConnectionResetError:
                pass
        assert alive == 500, f"{500 - alive} of the 500 half-open connections were closed early"
    finally:
        for s in held:
            s.close()
    fwit.assert_serves(gw.host, gw.port, echo_server.port)
