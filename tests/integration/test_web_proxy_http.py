"""The Web Proxy's HTTP/1.1 (RFC 9112) in the namespace topology of test_web_proxy.py
(webit.WebTopology): bodies both ways with Content-Length and chunked (50 MiB with sha256),
persistent connections counted at the origin, pipelining, HTTP/1.0, 100-continue, upgrades,
hop-by-hop fields, origins that misbehave, and raw bytes no client sends: the smuggling
ambiguities of RFC 9112 6.3, over-long heads, slow header writers, the per-client limit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

import pytest

import fwit
import webit
from webit import (INTERNAL_WEB, MIB, NAME, assert_forwarded_echo, err, error_log, gateway_accepts, get_req, http_log,
                   http_logs, in_internal, origin_header, origin_requests, out, proxy_conn, raw, wait_http_logs,
                   web_gateway)
from webit import big_file, topo  # noqa: F401 (fixtures)

pytestmark = pytest.mark.fwgate_only


# ---------------------------------------------------------------------------------------------
# Bodies, persistence, framing


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_post_50_mib(topo, gateway, big_file, framing):
    """50 MiB up through the proxy, chunked (curl with Transfer-Encoding: chunked) or with a
    Content-Length (curl then sends Expect: 100-continue), checked by sha256 at the origin."""
    seed = f"up-{framing}"
    path = big_file("up.bin")
    digest = webit.pattern_file(path, 50 * MIB, seed)
    gw = web_gateway(gateway, topo)
    cmd = ["curl", "-sS", "--max-time", "60", "-x", topo.proxy, "--data-binary", f"@{path}",
           "-H", "Content-Type: application/octet-stream"]
    if framing == "chunked":
        cmd += ["-H", "Transfer-Encoding: chunked"]
    cp = in_internal(topo, cmd + [f"http://{NAME}/echo?post={framing}"], timeout=90)
    assert cp.returncode == 0, err(cp)
    echo = json.loads(out(cp))
    assert echo["body_len"] == 50 * MIB and echo["body_sha256"] == digest, \
        f"origin got {echo['body_len']} bytes sha256 {echo['body_sha256']}, sent {50 * MIB} {digest}"
    rec = http_log(gw, method="POST", host=NAME, path="/echo", timeout=20)
    assert rec["status"] == 200 and rec["bytes_up"] >= 50 * MIB, rec


@pytest.mark.parametrize("how", ["content-length", "chunked", "close", "connect"])
def test_download_50_mib(topo, gateway, big_file, how):
    """50 MiB down: with a Content-Length, chunked, delimited by the origin's close, and through
    a CONNECT tunnel; sha256 of what curl wrote."""
    seed = f"down-{how}"
    n = 50 * MIB
    url = {"content-length": f"http://{NAME}/bytes?n={n}&seed={seed}",
           "chunked": f"http://{NAME}/bytes?n={n}&seed={seed}&chunked=1",
           "close": f"http://{NAME}/close?n={n}&seed={seed}",
           "connect": f"https://{NAME}/bytes?n={n}&seed={seed}"}[how]
    gw = web_gateway(gateway, topo)
    dest = big_file("down.bin")
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "60", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            "-o", dest, "-w", "%{http_code}", url], timeout=90)
    assert cp.returncode == 0 and out(cp) == "200", out(cp) + err(cp)
    assert os.path.getsize(dest) == n, f"got {os.path.getsize(dest)} bytes of {n}"
    assert webit.sha256_file(dest) == webit.pattern_sha256(n, seed), "the body changed on the way"
    rec = http_log(gw, method="CONNECT" if how == "connect" else "GET", host=NAME, timeout=20)
    assert rec["bytes_down"] >= n, rec


def test_keep_alive_reuse_raw(topo, gateway):
    """Two requests on one client connection: one TCP connection to the proxy (this socket) and
    one to the origin (counted by the origin)."""
    gw = web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?ka=1"))
        first = c.response()
        c.send(get_req(f"http://{NAME}/echo?ka=2"))
        second = c.response()
    assert first.status == 200 and second.status == 200, (first, second)
    a, b = json.loads(first.body), json.loads(second.body)
    assert a["conn"] == b["conn"] and b["n"] == 2, f"origin connections {a['conn']} and {b['conn']}: not reused"
    assert len(gateway_accepts(topo)) == 1, f"origin accepted {gateway_accepts(topo)}"
    assert len([r for r in wait_http_logs(gw, 2) if r.get("path") == "/echo"]) == 2, http_logs(gw)


def test_keep_alive_reuse_curl(topo, gateway):
    """curl fetching two URLs in one run: it connects to the proxy once (num_connects 1 then 0), and
    the proxy connects to the origin once."""
    web_gateway(gateway, topo)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "-o", "/dev/null", "-o", "/dev/null",
                            "-w", "%{num_connects}\n", f"http://{NAME}/echo?c=1", f"http://{NAME}/echo?c=2"])
    assert cp.returncode == 0, err(cp)
    assert out(cp).split() == ["1", "0"], f"curl's connections per transfer: {out(cp).split()}"
    assert len(gateway_accepts(topo)) == 1, f"origin accepted {gateway_accepts(topo)}"


@pytest.mark.parametrize("kind", ["GET", "POST chunked"])
def test_no_delayed_ack_stall_per_request(topo, gateway, kind):
    """Sequential requests on one keep-alive connection cost about a millisecond each here; a
    proxy that writes a message in pieces without TCP_NODELAY stalls each on the peer's delayed
    ACK (40 ms). 40 requests must take well under that."""
    web_gateway(gateway, topo)
    n = 40
    argv = ["curl", "-sS", "--max-time", "30", "-x", topo.proxy]
    if kind != "GET":
        argv += ["-H", "Transfer-Encoding: chunked", "--data-binary", "a small body"]
    for i in range(n):
        argv += [f"http://{NAME}/echo?seq={i}", "-o", "/dev/null"]
    start = time.monotonic()
    cp = in_internal(topo, argv, timeout=60)
    per = (time.monotonic() - start) / n * 1000
    assert cp.returncode == 0, err(cp)
    assert len(gateway_accepts(topo)) == 1, gateway_accepts(topo)
    assert per < 15 * fwit.SLOW, f"{per:.1f} ms per {kind} request on a persistent connection"


def test_origin_pool_not_shared_between_users(topo, gateway):
    """With authentication on, an idle origin connection is reused only for the same user. One event
    loop: each loop has its own pool, and the three client connections could land on three."""
    users = {"alice": "a-" + os.urandom(4).hex(), "bob": "b-" + os.urandom(4).hex()}
    rules = [dict(INTERNAL_WEB, name="staff", users=["alice", "bob"])]
    gw = web_gateway(gateway, topo, rules=rules, users=users, workers=1)

    def fetch(user, tag):
        cred = base64.b64encode(f"{user}:{users[user]}".encode()).decode()
        with proxy_conn(topo) as c:
            c.send(get_req(f"http://{NAME}/echo?u={tag}", extra=[("Proxy-Authorization", f"Basic {cred}")]))
            r = c.response()
        assert r.status == 200, r
        return json.loads(r.body)["conn"]

    a1 = fetch("alice", "a1")
    b1 = fetch("bob", "b1")
    a2 = fetch("alice", "a2")
    assert b1 != a1, "bob's request went over alice's origin connection"
    assert a2 in (a1, b1) and a2 != b1, f"alice's second request: origin connection {a2} (alice {a1}, bob {b1})"
    assert {r.get("user") for r in wait_http_logs(gw, 3)} == {"alice", "bob"}, http_logs(gw)


def test_pipelined_requests_in_order(topo, gateway):
    gw = web_gateway(gateway, topo)
    reqs = [("GET", f"http://{NAME}/echo?p=1"), ("HEAD", f"http://{NAME}/bytes?n=1000&seed=h"),
            ("GET", f"http://{NAME}/status/204"), ("GET", f"http://{NAME}/bytes?n=5000&seed=p&chunked=1"),
            ("GET", f"http://{NAME}/echo?p=5")]
    with proxy_conn(topo) as c:
        c.send(b"".join(webit.http_request(m, t, [("Host", NAME)]) for m, t in reqs))
        got = [c.response(m, timeout=15) for m, _ in reqs]
    assert json.loads(got[0].body)["target"] == "/echo?p=1", got[0]
    assert got[1].status == 200 and got[1].body == b"" and got[1].header("Content-Length") == "1000", got[1]
    assert got[2].status == 204 and got[2].body == b"", got[2]
    assert hashlib.sha256(got[3].body).hexdigest() == webit.pattern_sha256(5000, "p"), got[3]
    assert json.loads(got[4].body)["target"] == "/echo?p=5", got[4]
    paths = [r.get("path") for r in wait_http_logs(gw, 5)]
    assert paths.count("/echo") == 2 and len(paths) == 5, paths


def test_http10_client(topo, gateway):
    """An HTTP/1.0 request without Host: answered, Host made from the absolute URI, closed after."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(b"GET http://" + NAME.encode() + b"/echo?v=10 HTTP/1.0\r\nUser-Agent: fwgate-it/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200, r
        echo = json.loads(r.body)
        c.closed()
    assert_forwarded_echo(echo, "/echo?v=10")
    assert origin_header(echo, "Host") == [NAME], echo["headers"]


def test_http10_client_gets_a_chunked_response_dechunked(topo, gateway):
    """The origin answers chunked; an HTTP/1.0 client cannot read chunks: the body arrives
    whole, delimited by the close."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(b"GET http://" + NAME.encode() + b"/bytes?n=300000&seed=ten&chunked=1 HTTP/1.0\r\n\r\n")
        r = c.response(timeout=15)
    assert r.status == 200 and "chunked" not in r.tokens("Transfer-Encoding"), r
    assert hashlib.sha256(r.body).hexdigest() == webit.pattern_sha256(300000, "ten"), \
        f"{len(r.body)} bytes ({r.framing}), not the origin's 300000"


def test_response_hop_by_hop_fields_removed(topo, gateway):
    web_gateway(gateway, topo)
    r = raw(topo, get_req(f"http://{NAME}/hop-response"))
    assert r.status == 200 and r.body == b"hop-by-hop fields in the response\n", r
    for hop in ("X-Hop", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Trailer", "Upgrade"):
        assert r.header(hop) is None, f"the origin's hop-by-hop {hop} reached the client: {r.headers}"
    assert "x-hop" not in r.tokens("Connection"), r.headers
    assert r.header("X-End-To-End") == "passes", r.headers


def test_origin_response_with_content_length_and_chunked(topo, gateway):
    """An origin answering with both framings (RFC 9112 6.3: "ought to be handled as an error";
    an intermediary that forwards it must drop the Content-Length and use the chunked framing):
    either a 502, or the chunked body whole without the Content-Length; never both framings."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/raw?kind=cl-te"))
        r = c.response()
        assert r.status == 502 or (r.status == 200 and r.body == b"the chunked body wins\n"), r
        assert not (r.header("Content-Length") and r.tokens("Transfer-Encoding")), f"both framings passed on: {r.headers}"
        # The connection is closed, as the answer says, or still in step: the next response is
        # the next request's.
        if "close" in r.tokens("Connection"):
            c.closed()
        else:
            c.send(get_req(f"http://{NAME}/echo?after-cl-te"))
            nxt = c.response()
            assert nxt.status == 200 and json.loads(nxt.body)["target"] == "/echo?after-cl-te", \
                f"after {r.status} without Connection: close ({r.headers}), the next request got {nxt}"


def test_origin_garbage_is_502(topo, gateway):
    gw = web_gateway(gateway, topo)
    r = raw(topo, get_req(f"http://{NAME}/raw?kind=garbage"))
    assert r.status == 502, r
    rec = http_log(gw, path="/raw")
    assert rec["status"] == 502 and rec.get("error"), rec


def test_pooled_origin_connection_closed_by_the_origin(topo, gateway):
    """The origin closes an idle pooled connection without notice: the next request is not lost
    (the pool sees the close, or the request is retried on a new connection)."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/raw?kind=drop"))
        assert c.response().status == 200
        time.sleep(0.6)
        for n in range(3):
            c.send(get_req(f"http://{NAME}/echo?after-drop={n}"))
            r = c.response()
            assert r.status == 200 and json.loads(r.body)["target"] == f"/echo?after-drop={n}", \
                f"request {n} after the origin dropped its pooled connection: {r}"
    assert topo.events("dropped"), "the origin did not drop the connection"
    assert len(gateway_accepts(topo)) == 2, f"origin connections: {gateway_accepts(topo)}"


def test_many_pipelined_requests(topo, gateway):
    web_gateway(gateway, topo)
    n = 100
    with proxy_conn(topo) as c:
        c.send(b"".join(get_req(f"http://{NAME}/echo?pipe={i}") for i in range(n)))
        targets = [json.loads(c.response(timeout=20).body)["target"] for _ in range(n)]
    assert targets == [f"/echo?pipe={i}" for i in range(n)], targets


def test_chunked_request_with_extensions_and_trailers(topo, gateway):
    web_gateway(gateway, topo)
    body = b"hello chunked world"
    data = (webit.http_request("POST", f"http://{NAME}/echo?ext", [("Host", NAME), ("Transfer-Encoding", "chunked"),
                                                                  ("Trailer", "X-Checksum")])
            + b"5;name=value\r\nhello\r\n" + b"e\r\n chunked world\r\n" + b"0\r\nX-Checksum: 42\r\n\r\n")
    r = raw(topo, data, "POST")
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest() and echo["body_len"] == len(body), echo


@pytest.mark.parametrize("case", ["missing", "two"])
def test_host_field_rules(topo, gateway, case):
    """RFC 9112 3.2: an HTTP/1.1 request without Host, or with two Host fields, is a 400."""
    web_gateway(gateway, topo)
    extra = [] if case == "missing" else [("Host", NAME), ("Host", "other.example")]
    with proxy_conn(topo) as c:
        c.send(webit.http_request("GET", f"http://{NAME}/echo?host-{case}", extra))
        r = c.response()
    assert r.status == 400, f"Host {case}: {r}"
    assert not origin_requests(topo, f"host-{case}")


def test_expect_100_continue_refused_before_the_body(topo, gateway):
    """A client that waits for 100 Continue and is not allowed: the 407 comes instead of the
    100 (so a 50 MB upload is never sent for nothing)."""
    users = {"alice": "wonder-" + os.urandom(4).hex()}
    web_gateway(gateway, topo, rules=[dict(INTERNAL_WEB, name="alice only", users=["alice"])], users=users)
    with proxy_conn(topo) as c:
        c.send(webit.http_request("POST", f"http://{NAME}/echo?expect-denied",
                                 [("Host", NAME), ("Expect", "100-continue"), ("Content-Length", str(50 * MIB))]))
        first = c.head(timeout=5)
    assert first.status == 407, f"expected 407 before any body, got {first}"
    assert not origin_requests(topo, "expect-denied")


def test_host_made_consistent_with_the_uri(topo, gateway):
    """A Host header that disagrees with the absolute URI: the URI wins (RFC 9112 3.2.2)."""
    web_gateway(gateway, topo)
    r = raw(topo, webit.http_request("GET", f"http://{NAME}/echo?h=1", [("Host", "evil.example")]))
    assert r.status == 200, r
    assert origin_header(json.loads(r.body), "Host") == [NAME], r.body


def test_hop_by_hop_fields_removed(topo, gateway):
    web_gateway(gateway, topo)
    r = raw(topo, webit.http_request("GET", f"http://{NAME}/echo?hop=1", [
        ("Host", NAME), ("Connection", "keep-alive, X-Private"), ("X-Private", "secret"),
        ("Proxy-Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
        ("Proxy-Authorization", "Basic " + base64.b64encode(b"nobody:x").decode()), ("X-Kept", "yes")]))
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert_forwarded_echo(echo, "/echo?hop=1")
    assert not origin_header(echo, "X-Private"), f"a field named in Connection reached the origin: {echo['headers']}"
    assert origin_header(echo, "X-Kept") == ["yes"], echo["headers"]
    assert r.header("Via") and "fwgate" in r.all("Via")[-1], f"no Via on the response: {r.headers}"


def test_x_forwarded_for_when_configured(topo, gateway):
    web_gateway(gateway, topo, web={"x_forwarded_for": True})
    r = raw(topo, get_req(f"http://{NAME}/echo?xff=1"))
    assert r.status == 200, r
    assert origin_header(json.loads(r.body), "X-Forwarded-For") == [topo.internal], r.body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods(topo, gateway, method):
    gw = web_gateway(gateway, topo)
    body = f"{method} body through fwgate".encode()
    r = raw(topo, webit.http_request(method, f"http://{NAME}/echo?m={method}", [("Host", NAME)], body), method)
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["method"] == method and echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo
    http_log(gw, method=method, path="/echo", status=200)


def test_expect_100_continue(topo, gateway):
    """The client waits for 100 Continue before sending its body; it must come (from the proxy
    or relayed from the origin) well before curl's own one-second give-up would hide its absence."""
    web_gateway(gateway, topo)
    body = os.urandom(200000)
    with proxy_conn(topo) as c:
        c.send(webit.http_request("POST", f"http://{NAME}/echo?expect=1",
                                 [("Host", NAME), ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        interim = c.head(timeout=5)
        assert interim.status == 100, f"expected 100 Continue before the body, got {interim}"
        c.send(body)
        r = c.response()
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo


def test_websocket_upgrade(topo, gateway):
    """Upgrade: websocket through a plain-HTTP request: 101 relayed, then frames both ways."""
    gw = web_gateway(gateway, topo)
    key = base64.b64encode(os.urandom(16)).decode()
    with proxy_conn(topo) as c:
        c.send(webit.http_request("GET", f"http://{NAME}/ws", [
            ("Host", NAME), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13")]))
        r = c.head()
        assert r.status == 101, r
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert r.header("Sec-WebSocket-Accept") == want and "websocket" in r.tokens("Upgrade"), r
        for n in range(3):
            payload = f"websocket frame {n} through fwgate".encode()
            mask = os.urandom(4)
            c.send(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            deadline = time.monotonic() + 5
            while len(c.buf) < 2 + len(payload) and c._fill(deadline):
                pass
            frame = bytes(c.buf[:2 + len(payload)])
            del c.buf[:2 + len(payload)]
            assert frame == bytes([0x81, len(payload)]) + payload, f"echo frame {frame!r}"
        c.send(bytes([0x88, 0x80]) + b"\0\0\0\0")
    rec = http_log(gw, path="/ws", timeout=10)
    assert rec["status"] == 101, rec


# ---------------------------------------------------------------------------------------------
# Malformed requests and limits: raw bytes no client would send


def smuggle(marker: str) -> dict[str, bytes]:
    host = f"Host: {NAME}\r\n"
    post = f"POST http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}"
    return {
        "CL+TE": (post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG").encode(),
        "TE+CL": (post + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG").encode(),
        "two different Content-Lengths": (post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!").encode(),
        "a Content-Length list of different values": (post + "Content-Length: 5, 6\r\n\r\nhello!").encode(),
        "a signed Content-Length": (post + "Content-Length: +5\r\n\r\nhello").encode(),
        "Transfer-Encoding gzip": (post + "Transfer-Encoding: gzip\r\n\r\nhello").encode(),
        "Transfer-Encoding chunked, gzip": (post + "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(),
        "obs-fold": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}X-Folded: one\r\n  two\r\n\r\n").encode(),
        "obs-fold of Transfer-Encoding": (post + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello").encode(),
        "bare CR in a field": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}X-Bare: a\rb\r\n\r\n").encode(),
        "bare CR as a line end": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r{host}\r\n").encode(),
        "space before the colon": (post + "Content-Length : 5\r\n\r\nhello").encode(),
        "tab before the colon": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}Host\t: other\r\n\r\n").encode(),
    }


SMUGGLING = list(smuggle("x"))


@pytest.mark.parametrize("case", SMUGGLING)
def test_smuggling_ambiguity_is_400_and_close(topo, gateway, case):
    marker = f"smuggle-{SMUGGLING.index(case)}"
    data = smuggle(marker)[case]
    gw = web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(data)
        r = c.response(timeout=10)
        assert r.status == 400, f"{case}: sent {data!r}, got {r}"
        rest = c.closed()
    assert rest == b"", f"{case}: bytes after the 400: {rest!r}"
    assert not origin_requests(topo, marker), f"{case}: the origin got {origin_requests(topo, marker)}"
    error_log(gw, 400)


def test_request_line_too_long_414(topo, gateway):
    gw = web_gateway(gateway, topo, web={"max_request_line": 1024, "max_header_bytes": 8192})
    long_target = f"http://{NAME}/echo?" + "a" * 2000
    with proxy_conn(topo) as c:
        c.send(get_req(long_target))
        r = c.response()
        assert r.status == 414, r
        c.closed()
    # Just under the limit is served.
    ok_target = f"http://{NAME}/echo?" + "b" * (1024 - len(f"GET http://{NAME}/echo? HTTP/1.1") - 10)
    assert raw(topo, get_req(ok_target)).status == 200
    error_log(gw, 414)


def test_header_too_large_431(topo, gateway):
    web_gateway(gateway, topo, web={"max_header_bytes": 4096, "max_request_line": 1024, "max_header_count": 16})
    r = raw(topo, get_req(f"http://{NAME}/echo?big", extra=[("X-Big", "c" * 5000)]))
    assert r.status == 431, f"one 5000-byte field with max_header_bytes 4096: {r}"
    r = raw(topo, get_req(f"http://{NAME}/echo?many", extra=[(f"X-N{i}", "v") for i in range(20)]))
    assert r.status == 431, f"21 fields with max_header_count 16: {r}"
    r = raw(topo, get_req(f"http://{NAME}/echo?fine", extra=[(f"X-N{i}", "v") for i in range(10)]))
    assert r.status == 200, r


@pytest.mark.parametrize("case", ["TLS ClientHello", "no target", "HTTP/9.9", "NUL in a field value",
                                  "NUL in the target"])
def test_malformed_heads_get_an_error_and_close(topo, gateway, case):
    data = {
        "TLS ClientHello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\r\n\r\n",
        "no target": b"GET\r\n\r\n",
        "HTTP/9.9": b"GET http://" + NAME.encode() + b"/echo?v99 HTTP/9.9\r\nHost: " + NAME.encode() + b"\r\n\r\n",
        "NUL in a field value": b"GET http://" + NAME.encode() + b"/echo?nospace HTTP/1.1\r\nHost:" + NAME.encode()
                                    + b"\r\nX:\x7f\x00\r\n\r\n",
        "NUL in the target": b"GET http://" + NAME.encode() + b"/echo?\x00nul HTTP/1.1\r\nHost: " + NAME.encode() + b"\r\n\r\n",
    }[case]
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(data)
        got = c.closed(10)
    status = got[9:12]
    assert got.startswith(b"HTTP/1.") and status in (b"400", b"505"), f"sent {data[:80]!r}: got {got[:300]!r}"
    assert not topo.events("request"), f"the origin got {topo.events('request')}"


def test_origin_form_request_for_another_path(topo, gateway):
    """An origin-form request (not for a proxy) for a path the proxy does not serve: 404 naming the
    script's paths; the connection stays usable."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(webit.http_request("GET", "/not-the-script", [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")]))
        r = c.response()
        assert r.status == 404 and "/wpad.dat" in r.text(), r
        c.send(get_req(f"http://{NAME}/echo?after404"))
        assert c.response().status == 200


SLOW_WRITERS = r"""
import json, socket, sys, time
host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(n):
    s = socket.socket()
    s.settimeout(5)
    s.connect((host, port))
    s.sendall(b"GET http://www.external.test/echo?slow HTTP/1.1\r\nHost: www.external.test\r\nX-Slow: ")
    socks.append(s)
print(json.dumps({"held": len(socks)}), flush=True)
deadline = time.monotonic() + hold
closed = set()
for s in socks:
    s.setblocking(False)
while time.monotonic() < deadline and len(closed) < len(socks):
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            data = s.recv(4096)
            if data == b"" or data:
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.1)
print(json.dumps({"closed": len(closed), "of": len(socks)}), flush=True)
"""


def test_slow_header_writers(topo, gateway):
    """500 connections stall in their heads (slowloris) while a valid client on another address is
    served within a bound; the stalled ones are closed once header_timeout has passed."""
    gw = web_gateway(gateway, topo, web={"header_timeout": "4s", "max_connections_per_client": 1000})
    attack = topo.spawn("internal", [fwit.PYTHON, "-c", SLOW_WRITERS, topo.gw_inside, str(topo.PROXY_PORT), "500",
                                     str(12 * fwit.SLOW)])
    line = fwit.read_pipe(attack.stdout, 64, 30, until=b"\n")
    assert json.loads(line or b"{}").get("held") == 500, f"slow writers did not all connect: {line!r}"
    for n in range(3):
        start = time.monotonic()
        cp = in_internal(topo, ["curl", "-sS", "--max-time", "10", "--interface", topo.intranet, "-x", topo.proxy,
                                f"http://{NAME}/echo?valid={n}"], timeout=20)
        took = time.monotonic() - start
        assert cp.returncode == 0 and json.loads(out(cp))["target"] == f"/echo?valid={n}", err(cp)
        assert took < 2 * fwit.SLOW, f"the valid client took {took:.1f}s beside 500 stalled ones"
    line = fwit.read_pipe(attack.stdout, 128, 30, until=b"\n")
    result = json.loads(line or b"{}")
    assert result.get("closed") == 500, f"stalled connections closed by header_timeout (4s) within 12s: {result}"
    http_log(gw, path="/echo", status=200)


def test_silent_connection_closed_by_header_timeout(topo, gateway):
    """A connection that never sends a byte is a slow header writer too: closed once
    header_timeout has passed, not kept for keep_alive_timeout."""
    web_gateway(gateway, topo, web={"header_timeout": "2s", "keep_alive_timeout": "60s"})
    with proxy_conn(topo) as c:
        start = time.monotonic()
        got = c.closed(timeout=10)
        took = time.monotonic() - start
    assert 1.5 < took < 6 * fwit.SLOW, f"a silent connection closed after {took:.1f}s with header_timeout 2s"
    assert got == b"" or got.startswith(b"HTTP/1.1 408"), got


def test_idle_keep_alive_connection_closed(topo, gateway):
    web_gateway(gateway, topo, web={"keep_alive_timeout": "2s"})
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?idle"))
        assert c.response().status == 200
        start = time.monotonic()
        c.closed(timeout=8)
        took = time.monotonic() - start
    assert 1.5 < took < 6 * fwit.SLOW, f"closed after {took:.1f}s idle with keep_alive_timeout 2s"


def test_connections_per_client_limit(topo, gateway):
    """max_connections_per_client: a connection over the limit is not served (refused, closed or
    answered 429/503); one from another address is; once one closes, a new one is served again."""
    web_gateway(gateway, topo, web={"max_connections_per_client": 4})
    held = []
    try:
        for _ in range(4):
            c = proxy_conn(topo)
            held.append(c)
            c.send(get_req(f"http://{NAME}/echo?held"))
            assert c.response().status == 200
        try:
            extra = proxy_conn(topo)
        except OSError:
            extra = None  # refused outright: not served, as it should be
        if extra is not None:
            with extra:
                try:
                    extra.send(get_req(f"http://{NAME}/echo?over"))
                    r = extra.response(timeout=3)
                except (AssertionError, OSError):
                    r = None  # closed, or never answered while the four are held
                assert r is None or r.status in (429, 503), f"the fifth connection was served: {r}"
        with webit.HttpConn(webit.connect_in(topo.ns["internal"], topo.gw_inside, topo.PROXY_PORT,
                                           topo.intranet)) as other:
            other.send(get_req(f"http://{NAME}/echo?other"))
            assert other.response().status == 200, "a client on another address is not limited by this one"
    finally:
        for c in held:
            c.close()
    deadline = time.monotonic() + 5 * fwit.SLOW
    for _ in range(50):
        try:
            if raw(topo, get_req(f"http://{NAME}/echo?again")).status == 200:
                break
        except (AssertionError, OSError):
            pass
        assert time.monotonic() < deadline, "no connection served after the held ones closed"
        time.sleep(0.1)
    assert not origin_requests(topo, "over"), "the connection over the limit reached the origin"
