"""The relay, in the manner of a TCP proxy integration test: upstream writes first, half-close in both
directions, a large transfer whose checksum must match."""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import threading
import time

import pytest

import fwit


def test_peer_writes_first(gateway, first_writer):
    """The destination speaks first: the client receives its greeting without sending a byte."""
    gw = gateway()
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", first_writer.port)
    with sock:
        assert fwit.recv_exact(sock, len(fwit.GREETING)) == fwit.GREETING
        fwit.echo_roundtrip(sock, b"EHLO fwgate\r\n")


@pytest.mark.fwgate_only
def test_client_half_close(gateway, server_factory):
    """Client shutdown(SHUT_WR): the server sees EOF and can still send; then the session ends."""
    srv = server_factory(fwit.handle_reply_after_eof)
    gw = gateway()
    payload = os.urandom(200_000)
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
    with sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        event = srv.events.get(timeout=10 * fwit.SLOW)
        assert event == ("eof", payload), f"server saw {len(event[1])} bytes before EOF, expected {len(payload)}"
        data, how = fwit.read_to_eof(sock, 10)
        expected = b"after-eof:" + hashlib.sha256(payload).hexdigest().encode() + f":{len(payload)}\n".encode()
        assert data == expected, f"after half-close the client got {data!r}"
        assert how == "eof", f"connection ended by {how}, expected a clean EOF"
    if gw.kind == "fwgate":
        rec = gw.wait_session(lambda r: str(srv.port) in str(r.get("requested")))
        assert rec.get("bytes_up") == len(payload) and rec.get("bytes_down") == len(expected), rec


@pytest.mark.fwgate_only
def test_server_half_close(gateway, server_factory):
    """Server shutdown(SHUT_WR): the client sees EOF and can still send to the server."""
    srv = server_factory(fwit.handle_server_half_close)
    gw = gateway()
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
    with sock:
        data, how = fwit.read_to_eof(sock, 10)
        assert (data, how) == (fwit.SERVER_BYE, "eof"), f"client got {data!r} ending in {how}"
        late = b"client-still-talking " + os.urandom(4).hex().encode() + b"\n"
        time.sleep(0.2)  # the gateway has processed the EOF; the other direction must stay open
        sock.sendall(late)
        sock.shutdown(socket.SHUT_WR)
        try:
            event = srv.events.get(timeout=10 * fwit.SLOW)
        except queue.Empty:
            raise AssertionError("the server never saw the client's EOF") from None
        assert event == ("received", late), f"server received {event!r} after its half-close"
    if gw.kind == "fwgate":
        rec = gw.wait_session(lambda r: str(srv.port) in str(r.get("requested")))
        assert rec.get("bytes_up") == len(late) and rec.get("bytes_down") == len(fwit.SERVER_BYE), rec


def test_both_directions_concurrently(gateway, echo_server):
    """Many small writes interleaved with reads stay in order."""
    gw = gateway()
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    with sock:
        for i in range(200):
            fwit.echo_roundtrip(sock, f"{i:05d}".encode() * (1 + i % 17))


class Stream:
    """1 GiB of data made chunk by chunk, every 64 KiB stamped with its position, so a lost, repeated
    or reordered relay buffer changes the hash."""

    SIZE = 1 << 30
    CHUNK = 1 << 20

    def __init__(self):
        self.block = bytearray(os.urandom(self.CHUNK))
        self.sha = hashlib.sha256()

    def chunks(self, deadline: float):
        for i in range(self.SIZE // self.CHUNK):
            if time.monotonic() > deadline:
                raise AssertionError(f"sending passed its time budget at chunk {i}")
            for off in range(0, self.CHUNK, 65536):
                self.block[off:off + 8] = (i * 16 + off // 65536).to_bytes(8, "little")
            self.sha.update(self.block)
            yield self.block


# Every [limits] relay mode carries the same bytes; "auto" (the default) switches from copy to
# splice mid-stream, where a lost or repeated chunk would show.
RELAY_MODES = [pytest.param("auto", id="auto"),
               pytest.param("copy", id="copy", marks=pytest.mark.fwgate_only),
               pytest.param("splice", id="splice", marks=pytest.mark.fwgate_only)]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("mode", RELAY_MODES)
def test_1gib_upload_checksum(gateway, server_factory, mode):
    """1 GiB client -> destination; the destination's sha256 matches the client's."""
    srv = server_factory(fwit.handle_hashing_sink)
    gw = gateway(limits={"relay": mode})
    budget = 120 * fwit.SLOW
    deadline = time.monotonic() + budget
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
    stream = Stream()
    started = time.monotonic()
    with sock:
        sock.settimeout(30 * fwit.SLOW)
        for block in stream.chunks(deadline):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        kind, digest, total = srv.events.get(timeout=max(5.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - started
    assert total == Stream.SIZE, f"destination received {total} bytes, expected {Stream.SIZE}"
    assert digest == stream.sha.hexdigest(), "sha256 at the destination differs from what the client sent"
    print(f"1 GiB up in {elapsed:.1f}s ({Stream.SIZE / elapsed / 1e6:.0f} MB/s)")


@pytest.mark.fwgate_only  # microsocks' blocking relay deadlocks on full-duplex bulk
@pytest.mark.timeout(400)
@pytest.mark.parametrize("mode", RELAY_MODES)
def test_1gib_full_duplex_checksum(gateway, server_factory, mode):
    """1 GiB up and its echo down at the same time: sha256 matches at the destination and back at the
    client. A relay that blocks on one direction deadlocks here."""
    srv = server_factory(fwit.handle_hashing_echo)
    gw = gateway(limits={"relay": mode})
    budget = 150 * fwit.SLOW
    deadline = time.monotonic() + budget
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
    sock.settimeout(30 * fwit.SLOW)
    stream = Stream()
    send_error: list[BaseException] = []

    def sender() -> None:
        try:
            for block in stream.chunks(deadline):
                sock.sendall(block)
            sock.shutdown(socket.SHUT_WR)
        except BaseException as exc:  # reported by the main thread
            send_error.append(exc)

    t = threading.Thread(target=sender, daemon=True)
    started = time.monotonic()
    t.start()
    got_hash = hashlib.sha256()
    got = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        for _ in range(1 << 24):
            assert time.monotonic() < deadline, f"receiving passed the {budget:.0f}s budget at {got} bytes"
            n = sock.recv_into(buf)
            if n == 0:
                break
            got_hash.update(view[:n])
            got += n
    finally:
        t.join(30)
        sock.close()
    elapsed = time.monotonic() - started
    assert not send_error, f"sender failed: {send_error[0]!r}"
    kind, server_digest, server_total = srv.events.get(timeout=30)
    assert server_total == Stream.SIZE, f"destination received {server_total} bytes, expected {Stream.SIZE}"
    assert server_digest == stream.sha.hexdigest(), "sha256 at the destination differs from what was sent"
    assert got == Stream.SIZE, f"client got {got} bytes back, expected {Stream.SIZE}"
    assert got_hash.hexdigest() == stream.sha.hexdigest(), "sha256 of the echo differs from what was sent"
    print(f"1 GiB each way in {elapsed:.1f}s ({2 * Stream.SIZE / elapsed / 1e6:.0f} MB/s relayed)")
