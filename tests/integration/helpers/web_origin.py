"""The external host's origin servers for the Web Proxy tests, in one process (a network namespace's):

    python3 web_origin.py --host ADDR [--host ADDR6]... --docroot DIR --events FILE [--http-port 80]...
                          [--https-port 443 --cert PEM --key PEM]... [--banner-port 22]...
                          [--echo-port 7]... [--lifetime SECONDS]

HTTP/1.1 with persistent connections on every --http-port, the same over TLS on every --https-port,
on every --banner-port a server that writes an SSH-like banner and closes (something real to be
refused by policy rather than by a closed port), and on every --echo-port a TCP echo server that
half-closes after the client does. Prints "ready" once everything listens. Every
accepted connection and every request is one JSON line in --events (so the test counts connections
and requests at the origin, not from the proxy's word):

    {"ev": "accept", "port": 80, "peer": "198.51.100.1:40000", "conn": 3}
    {"ev": "request", "port": 80, "conn": 3, "n": 2, "method": "GET", "target": "/x?y", "version":
     "HTTP/1.1", "headers": [["Host", "..."], ...], "expect100": false}

Routes (anything else is a file under --docroot):
  /echo          any method: the request as received (headers, body sha256 and length, whether it
                 was chunked, connection id and its request count) as JSON
  /bytes?n=N&seed=S[&chunked=1]  N bytes of pattern(N, S) (Content-Length, or chunked)
  /close?n=N&seed=S              the same without Content-Length: the body ends when the connection does
  /status/NNN    that status (204 and 304 without a body, the rest with a short one)
  /ws            Upgrade: websocket (RFC 6455 handshake), then every frame echoed
  /raw?kind=K    a response written as raw bytes: cl-te (Content-Length and chunked: the chunked
                 body is the real one), garbage (not HTTP), drop (a keep-alive response, then the
                 connection closed 200 ms later without notice)
  /hop-response  a response with hop-by-hop fields (Connection: X-Hop, X-Hop, Keep-Alive,
                 Proxy-Authenticate, Proxy-Connection, Trailer, Upgrade) beside an end-to-end one
Ends by itself after --lifetime seconds (a bound, should the test's teardown not come).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import itertools
import json
import os
import random
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def pattern_block(seed: str) -> bytes:
    return random.Random(seed).randbytes(1 << 16)


def pattern(n: int, seed: str):
    """n bytes: a 64 KiB block from `seed` repeated (the test computes the same sha256)."""
    block = pattern_block(seed)
    while n > 0:
        piece = block[:n]
        yield piece
        n -= len(piece)


class Events:
    def __init__(self, path: str):
        self.f = open(path, "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def write(self, **record) -> None:
        line = json.dumps(record) + "\n"
        with self.lock:
            self.f.write(line)
            self.f.flush()


def make_handler(docroot: str, events: Events, port: int):
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fwgate-it-origin"
        sys_version = ""
        timeout = 60  # an idle persistent connection ends after this
        disable_nagle_algorithm = True  # head and body are separate writes: no delayed-ACK stall

        def __init__(self, *args, **kw):
            super().__init__(*args, directory=docroot, **kw)

        def setup(self):
            super().setup()
            self.conn_id = next(events.ids)
            self.requests_here = 0
            self.expect100 = False
            peer = self.client_address
            events.write(ev="accept", port=port, peer=f"{peer[0]}:{peer[1]}", conn=self.conn_id)

        def log_message(self, *args):
            pass

        def handle_expect_100(self):
            self.expect100 = True
            return super().handle_expect_100()

        def parse_request(self):
            self.expect100 = False
            ok = super().parse_request()
            if ok:
                self.requests_here += 1
                events.write(ev="request", port=port, conn=self.conn_id, n=self.requests_here,
                             method=self.command, target=self.path, version=self.request_version,
                             headers=[[k, v] for k, v in self.headers.items()], expect100=self.expect100)
            return ok

        # -- bodies ----------------------------------------------------------------------------
        def read_body(self):
            """(sha256 hex, length, chunked) of the request body, read whole."""
            h = hashlib.sha256()
            total = 0
            te = self.headers.get("Transfer-Encoding", "")
            if "chunked" in te.lower():
                for _ in range(1 << 24):
                    line = self.rfile.readline(1024)
                    if not line:
                        raise ConnectionError("EOF in a chunk size line")
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        for _ in range(1024):  # trailers
                            if self.rfile.readline(65536) in (b"\r\n", b"\n", b""):
                                break
                        break
                    left = size
                    while left:
                        data = self.rfile.read(min(left, 1 << 20))
                        if not data:
                            raise ConnectionError("EOF in a chunk")
                        h.update(data)
                        total += len(data)
                        left -= len(data)
                    self.rfile.readline(16)
                return h.hexdigest(), total, True
            n = int(self.headers.get("Content-Length") or 0)
            left = n
            while left:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    raise ConnectionError("EOF in the body")
                h.update(data)
                total += len(data)
                left -= len(data)
            return h.hexdigest(), total, False

        def send_json(self, obj, status=200):
            body = (json.dumps(obj, indent=1) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        # -- routes ----------------------------------------------------------------------------
        def route(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/echo":
                digest, length, chunked = self.read_body()
                self.send_json({"method": self.command, "target": self.path, "version": self.request_version,
                                "headers": [[k, v] for k, v in self.headers.items()], "body_sha256": digest,
                                "body_len": length, "chunked": chunked, "conn": self.conn_id,
                                "n": self.requests_here, "expect100": self.expect100, "port": port})
                return True
            if url.path == "/bytes":
                n, seed = int(query.get("n", "0")), query.get("seed", "x")
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if query.get("chunked") == "1":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    if self.command != "HEAD":
                        for piece in pattern(n, seed):
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(n))
                    self.end_headers()
                    if self.command != "HEAD":
                        for piece in pattern(n, seed):
                            self.wfile.write(piece)
                return True
            if url.path == "/close":
                n, seed = int(query.get("n", "0")), query.get("seed", "x")
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for piece in pattern(n, seed):
                    self.wfile.write(piece)
                self.close_connection = True
                return True
            if url.path.startswith("/status/"):
                code = int(url.path.rsplit("/", 1)[1])
                self.send_response(code)
                if code in (204, 304):
                    self.end_headers()
                else:
                    body = f"status {code} from the origin\n".encode()
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                return True
            if url.path == "/raw":
                kind = query.get("kind")
                self.read_body()
                if kind == "cl-te":
                    body = b"the chunked body wins\n"
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                                     b"Content-Type: text/plain\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                    self.close_connection = True
                elif kind == "garbage":
                    self.wfile.write(b"this is not an HTTP response\r\n\r\n")
                    self.close_connection = True
                elif kind == "drop":
                    body = b"kept alive, then dropped\n"
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(body), body))
                    self.wfile.flush()
                    time.sleep(0.2)
                    self.close_connection = True
                    events.write(ev="dropped", port=port, conn=self.conn_id)
                return True
            if url.path == "/hop-response":
                body = b"hop-by-hop fields in the response\n"
                self.send_response(200)
                for k, v in (("Connection", "X-Hop"), ("X-Hop", "must not pass"), ("Keep-Alive", "timeout=99"),
                             ("Proxy-Authenticate", 'Basic realm="origin"'), ("Proxy-Connection", "keep-alive"),
                             ("Trailer", "X-Trailer"), ("Upgrade", "h2c"), ("X-End-To-End", "passes"),
                             ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))):
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return True
            if url.path == "/ws":
                self.websocket()
                return True
            return False

        def websocket(self):
            key = self.headers.get("Sec-WebSocket-Key")
            if "websocket" not in self.headers.get("Upgrade", "").lower() or not key:
                self.send_json({"error": "not a websocket handshake"}, 400)
                return
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            events.write(ev="websocket", port=port, conn=self.conn_id)
            for _ in range(10000):
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                opcode, masked, length = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
                if length == 126:
                    length = int.from_bytes(self.rfile.read(2), "big")
                elif length == 127:
                    length = int.from_bytes(self.rfile.read(8), "big")
                mask = self.rfile.read(4) if masked else b"\0\0\0\0"
                data = bytearray(self.rfile.read(length))
                for i in range(len(data)):
                    data[i] ^= mask[i % 4]
                if length < 126:
                    out = bytes([0x80 | opcode, length])
                elif length < 65536:
                    out = bytes([0x80 | opcode, 126]) + length.to_bytes(2, "big")
                else:
                    out = bytes([0x80 | opcode, 127]) + length.to_bytes(8, "big")
                self.wfile.write(out + bytes(data))
                self.wfile.flush()
                if opcode == 8:
                    return

        def dispatch(self):
            try:
                if not self.route():
                    if self.command in ("GET", "HEAD"):
                        super().do_GET() if self.command == "GET" else super().do_HEAD()
                    else:
                        self.read_body()
                        self.send_json({"error": f"no {self.command} at {self.path}"}, 405)
            except (ConnectionError, ValueError) as exc:
                events.write(ev="error", port=port, conn=self.conn_id, error=repr(exc))
                self.close_connection = True

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    tls: ssl.SSLContext | None = None

    def server_bind(self):
        # Not HTTPServer's: that one looks the host's name up (socket.getfqdn).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        # The TLS handshake in the connection's own thread: a stalled client never blocks accept().
        if self.tls is not None:
            request.settimeout(30)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def banner_server(host: str, port: int, events: Events) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)

    def loop():
        for _ in range(1 << 20):
            try:
                conn, peer = s.accept()
            except OSError:
                return
            events.write(ev="accept", port=port, peer=f"{peer[0]}:{peer[1]}", conn=next(events.ids))
            try:
                conn.sendall(b"SSH-2.0-fwgate-it\r\n")
            except OSError:
                pass
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return s


def echo_server(host: str, port: int, events: Events) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)

    def serve(conn, conn_id):
        total = 0
        written = False
        try:
            conn.settimeout(60)
            for _ in range(1 << 24):
                data = conn.recv(1 << 16)
                if not data:
                    # The event goes out before the EOF does: a client that has seen the echo end
                    # must find the event already written.
                    events.write(ev="echo-done", port=port, conn=conn_id, bytes=total)
                    written = True
                    conn.shutdown(socket.SHUT_WR)
                    break
                total += len(data)
                conn.sendall(data)
        except OSError:
            pass
        finally:
            if not written:
                events.write(ev="echo-done", port=port, conn=conn_id, bytes=total)
            conn.close()

    def loop():
        for _ in range(1 << 20):
            try:
                conn, peer = s.accept()
            except OSError:
                return
            conn_id = next(events.ids)
            events.write(ev="accept", port=port, peer=f"{peer[0]}:{peer[1]}", conn=conn_id)
            threading.Thread(target=serve, args=(conn, conn_id), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", action="append", required=True)
    ap.add_argument("--docroot", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--http-port", type=int, action="append", default=[])
    ap.add_argument("--https-port", type=int, action="append", default=[])
    ap.add_argument("--banner-port", type=int, action="append", default=[])
    ap.add_argument("--echo-port", type=int, action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    events = Events(a.events)
    servers = []
    banners = []
    for host in a.host:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server6" if family == socket.AF_INET6 else "Server4", (Server,), {"address_family": family})
        for port in a.http_port:
            servers.append(server_class((host, port), make_handler(a.docroot, events, port)))
        for port in a.https_port:
            srv = server_class((host, port), make_handler(a.docroot, events, port))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.cert, a.key)
            ctx.set_alpn_protocols(["http/1.1"])
            srv.tls = ctx
            servers.append(srv)
        banners += [banner_server(host, port, events) for port in a.banner_port]
        banners += [echo_server(host, port, events) for port in a.echo_port]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print("ready", flush=True)
    time.sleep(a.lifetime)
    for s in banners:
        s.close()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
