"""BIND and UDP ASSOCIATE edge cases with raw bytes, and the session limits.

BIND: the peer must be the requested DST.ADDR, rules decide who may BIND, the wait is bounded,
and the seed's strict mode needs a CONNECT first. UDP: only the client's own datagrams are relayed,
fragments are dropped, the association dies with its TCP connection.
"""
import socket
import struct
import time

import pytest

import conftest
import fwit

pytestmark = pytest.mark.fwgate_only

LOOPBACK = dict(conftest.LOOPBACK_RULE)


def bind_request(gw, peer_host: str, peer_port: int = 0) -> tuple[socket.socket, dict]:
    """Sends BIND; returns the control socket and the first reply's fields."""
    ctl = fwit.connect(gw.host, gw.port)
    assert fwit.s5_greet(ctl) == 0
    ctl.sendall(fwit.s5_request(2, peer_host, peer_port))
    _, first = fwit.read_s5_reply(ctl, 10)
    return ctl, first


def connect_from(source: str, host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def test_bind_refuses_a_peer_other_than_dst_and_accepts_the_right_one(gateway):
    gw = gateway(rules=[LOOPBACK])
    ctl, first = bind_request(gw, "127.0.0.1")
    with ctl:
        assert first["rep"] == 0 and first["addr"] == "127.0.0.1" and first["port"] != 0, first
        # 127.0.0.7 is not the requested peer: the gateway closes that connection...
        with connect_from("127.0.0.7", first["addr"], first["port"]) as stranger:
            data, how = fwit.read_to_eof(stranger, 5)
            assert data == b"", f"the stranger got bytes: {data!r} ({how})"
        # ...and keeps waiting for the right one.
        with connect_from("127.0.0.1", first["addr"], first["port"]) as peer:
            _, second = fwit.read_s5_reply(ctl, 10)
            assert second["rep"] == 0 and second["addr"] == "127.0.0.1", second
            assert second["port"] == peer.getsockname()[1], (second, peer.getsockname())
            peer.sendall(b"from the peer")
            assert fwit.recv_exact(ctl, 13) == b"from the peer"
            ctl.sendall(b"from the client")
            assert fwit.recv_exact(peer, 15) == b"from the client"
    rec = gw.wait_session(lambda r: r.get("command") == "bind")
    assert rec["result"] == "succeeded" and "refused peer 127.0.0.7" in rec.get("error", ""), rec
    assert rec["resolved"].startswith("127.0.0.1:"), rec


def test_bind_times_out_with_ttl_expired(gateway):
    gw = gateway(rules=[LOOPBACK], limits={"bind_timeout": "1s"})
    ctl, first = bind_request(gw, "127.0.0.1")
    with ctl:
        assert first["rep"] == 0
        started = time.monotonic()
        _, second = fwit.read_s5_reply(ctl, 10 * fwit.SLOW)
        waited = time.monotonic() - started
        assert second["rep"] == 6, second
        assert 0.5 < waited < 5 * fwit.SLOW, waited
        fwit.assert_closed(ctl, 5)


def test_bind_denied_by_rules(gateway):
    connect_only = dict(LOOPBACK, commands=["connect"])
    gw = gateway(rules=[connect_only])
    ctl, first = bind_request(gw, "127.0.0.1")
    with ctl:
        assert first["rep"] == 2, first
        fwit.assert_closed(ctl, 5)


def test_bind_strict_mode_needs_a_connect_to_that_host(gateway, echo_server):
    gw = gateway(rules=[LOOPBACK], bind_external=None,
                 extra='[bind]\nexternal_address = "127.0.0.1"\nrequire_connect = true\n')
    ctl, first = bind_request(gw, "127.0.0.1")
    with ctl:
        assert first["rep"] == 2, f"strict BIND without a CONNECT session was allowed: {first}"
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    with sock:
        ctl, first = bind_request(gw, "127.0.0.1")
        with ctl:
            assert first["rep"] == 0, f"strict BIND after a CONNECT was refused: {first}"
    rec = gw.wait_session(lambda r: r.get("command") == "bind" and r.get("reply") == 2)
    assert "require_connect" in rec.get("error", ""), rec


def udp_frame(host: str, port: int, payload: bytes, frag: int = 0) -> bytes:
    return b"\x00\x00" + bytes([frag]) + fwit.s5_address(host, port) + payload


def udp_associate(gw, client_udp: socket.socket) -> tuple[socket.socket, tuple]:
    ctl = fwit.connect(gw.host, gw.port)
    assert fwit.s5_greet(ctl) == 0
    ctl.sendall(fwit.s5_request(3, "0.0.0.0", 0))
    _, fields = fwit.read_s5_reply(ctl, 10)
    assert fields["rep"] == 0, fields
    return ctl, (fields["addr"], fields["port"])


def udp_recv(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(70000)
    except socket.timeout:
        return None


def test_udp_relays_whole_datagrams_and_drops_fragments(gateway, udp_echo):
    gw = gateway(rules=[LOOPBACK])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine:
        mine.bind(("127.0.0.1", 0))
        ctl, relay = udp_associate(gw, mine)
        with ctl:
            # A fragment (FRAG != 0) is dropped: the echo server never sees it.
            mine.sendto(udp_frame("127.0.0.1", udp_echo.port, b"fragment", frag=1), relay)
            assert udp_recv(mine, 1.0) is None
            assert udp_echo.senders == []
            # A large datagram arrives whole, with the source address in the header.
            big = bytes(range(256)) * 200  # 51,200 bytes
            mine.sendto(udp_frame("127.0.0.1", udp_echo.port, big), relay)
            reply = udp_recv(mine, 5.0)
            assert reply is not None, "no reply to a 51,200-byte datagram"
            header = udp_frame("127.0.0.1", udp_echo.port, b"")
            assert reply[:len(header)] == header, reply[:len(header)].hex(" ")
            assert reply[len(header):] == big
    rec = gw.wait_session(lambda r: r.get("command") == "udp")
    assert rec["datagrams_up"] == 1 and rec["datagrams_down"] == 1, rec
    assert rec["bytes_up"] == len(big) and rec["bytes_down"] == len(big), rec


def test_udp_drops_datagrams_from_other_sources(gateway, udp_echo):
    gw = gateway(rules=[LOOPBACK])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        mine.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        ctl, relay = udp_associate(gw, mine)
        with ctl:
            mine.sendto(udp_frame("127.0.0.1", udp_echo.port, b"first"), relay)
            assert udp_recv(mine, 5.0) is not None
            # Another socket (another port) of the same host is not the association's client.
            other.sendto(udp_frame("127.0.0.1", udp_echo.port, b"intruder"), relay)
            assert udp_recv(other, 1.0) is None
            assert len(udp_echo.senders) == 1, udp_echo.senders
            # A host the client never sent to cannot send through the relay's external side.
            assert udp_recv(mine, 0.5) is None


def test_udp_association_ends_with_its_tcp_connection(gateway, udp_echo):
    gw = gateway(rules=[LOOPBACK])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine:
        mine.bind(("127.0.0.1", 0))
        ctl, relay = udp_associate(gw, mine)
        mine.sendto(udp_frame("127.0.0.1", udp_echo.port, b"ping"), relay)
        assert udp_recv(mine, 5.0) is not None
        ctl.close()
        gw.wait_session(lambda r: r.get("command") == "udp")
        mine.sendto(udp_frame("127.0.0.1", udp_echo.port, b"after close"), relay)
        assert udp_recv(mine, 1.0) is None
        assert len(udp_echo.senders) == 1


def test_udp_associate_for_another_host_is_refused(gateway):
    gw = gateway(rules=[LOOPBACK])
    with fwit.connect(gw.host, gw.port) as ctl:
        assert fwit.s5_greet(ctl) == 0
        ctl.sendall(fwit.s5_request(3, "192.0.2.1", 5000))
        _, fields = fwit.read_s5_reply(ctl, 10)
        assert fields["rep"] == 2, fields


def test_per_client_session_limit(gateway, echo_server):
    gw = gateway(rules=[LOOPBACK], limits={"max_sessions_per_client": 2})
    held = [fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)[0] for _ in range(2)]
    try:
        with fwit.connect(gw.host, gw.port) as third:
            data, _ = fwit.read_to_eof(third, 5)
            assert data == b"", "a third session from one client got an answer"
        rec = gw.wait_session(lambda r: r.get("result") == "session-limit")
        assert rec["client"].startswith("127.0.0.1:"), rec
    finally:
        for s in held:
            s.close()
    # The slots come back when sessions end.
    gw.wait_session(lambda r: r.get("command") == "connect" and r.get("result") == "succeeded")
    deadline = time.monotonic() + 10
    while True:
        try:
            sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
            sock.close()
            break
        except (AssertionError, OSError):
            assert time.monotonic() < deadline, "the per-client slots never came back"
            time.sleep(0.1)
