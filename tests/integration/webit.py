"""The Web Proxy tests' own parts (test_web_proxy*.py): HTTP on the wire, a throw-away CA, sockets
made inside a network namespace, the internal / gateway / external topology with its origin
servers (helpers/web_origin.py), the fwgate gateway configured for it, and readers of the
session log's Web Proxy lines. Every read is bounded by a deadline; everything a test starts is
torn down by PID (fwit.Namespaces).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time

import pytest

from fwit import (HELPER_DIR, PYTHON, SLOW, TEST_NAME, TEST_NAME6, Namespaces, clean_env, connect, read_pipe,
                  require_tool, run)

# ----------------------------------------------------------------------------------------------
# HTTP on the wire, for the Web Proxy tests: raw requests, responses read exactly as sent


class HttpResponse:
    """One response as read off the wire: status line, header fields in order, the body decoded
    from its framing (Content-Length, chunked, or up to the close), and how the body ended."""

    def __init__(self, version: str, status: int, reason: str, headers: list[tuple[str, str]], head: bytes):
        self.version, self.status, self.reason, self.headers, self.head = version, status, reason, headers, head
        self.body = b""
        self.framing = "none"  # "length", "chunked", "close", "none"

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every field of that name, lower-cased."""
        return [t.strip().lower() for v in self.all(name) for t in v.split(",") if t.strip()]

    def text(self) -> str:
        return self.body.decode(errors="replace")

    def __repr__(self) -> str:
        return f"<HTTP {self.status} {self.reason!r} {self.headers!r} body={self.body[:300]!r}>"


class HttpConn:
    """A client connection speaking raw bytes, with a read buffer (pipelined responses arrive
    together). Every read is bounded by a deadline."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    @classmethod
    def open(cls, host: str, port: int, timeout: float = 5.0) -> "HttpConn":
        return cls(connect(host, port, timeout))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """More bytes into the buffer; False at EOF. AssertionError at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for the response; so far {bytes(self.buf[:2000])!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError(f"timed out waiting for the response; so far {bytes(self.buf[:2000])!r}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _line(self, deadline: float, what: str) -> bytes:
        for _ in range(1 << 20):
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if not self._fill(deadline):
                raise AssertionError(f"connection closed in the {what}; so far {bytes(self.buf[:2000])!r}")
        raise AssertionError("line too long")

    def _exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(f"connection closed after {len(self.buf)} of {n} body bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def head(self, timeout: float = 10.0) -> HttpResponse:
        """The next response head (a 1xx one too)."""
        deadline = time.monotonic() + timeout * SLOW
        raw = bytearray()
        for _ in range(1000):
            line = self._line(deadline, "response head")
            raw += line
            if line in (b"\r\n", b"\n") and len(raw) > len(line):
                break
        text = raw.decode("latin-1")
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        parts = lines[0].split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit(), \
            f"not an HTTP status line: {lines[0]!r} (head {bytes(raw)!r})"
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return HttpResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, bytes(raw))

    def response(self, method: str = "GET", timeout: float = 10.0, skip_1xx: bool = True) -> HttpResponse:
        """The next complete response; 1xx heads before it are skipped (and kept in .interim)."""
        deadline = time.monotonic() + timeout * SLOW
        interim = []
        for _ in range(100):
            r = self.head(max(0.1, deadline - time.monotonic()) / SLOW)
            if not (skip_1xx and 100 <= r.status < 200 and r.status != 101):
                break
            interim.append(r)
        r.interim = interim
        if method == "HEAD" or r.status in (101, 204, 304) or 100 <= r.status < 200 or \
                (method == "CONNECT" and 200 <= r.status < 300):
            return r
        te = r.tokens("Transfer-Encoding")
        cl = r.header("Content-Length")
        if te and te[-1] == "chunked":
            body = bytearray()
            for _ in range(1 << 24):
                size_line = self._line(deadline, "chunk size")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(1000):
                        if self._line(deadline, "trailer") in (b"\r\n", b"\n"):
                            break
                    break
                body += self._exact(size, deadline)
                self._line(deadline, "chunk end")
            r.body, r.framing = bytes(body), "chunked"
        elif cl is not None:
            r.body, r.framing = self._exact(int(cl), deadline), "length"
        else:
            while self._fill(deadline):
                pass
            r.body, r.framing = bytes(self.buf), "close"
            self.buf.clear()
        return r

    def closed(self, timeout: float = 5.0) -> bytes:
        """Asserts the peer closes within the timeout (EOF or RST); returns what came before."""
        deadline = time.monotonic() + timeout * SLOW
        try:
            while self._fill(deadline):
                pass
        except AssertionError:
            raise AssertionError(f"the proxy did not close the connection within {timeout * SLOW:.0f}s "
                                 f"(got {bytes(self.buf[:2000])!r})") from None
        out = bytes(self.buf)
        self.buf.clear()
        return out


def http_request(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 version: str = "HTTP/1.1") -> bytes:
    """Request bytes, written out as given (no field added but Content-Length for a body)."""
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in (headers or [])]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers or []):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(data: bytes, size: int = 1 << 16) -> bytes:
    out = bytearray()
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def pattern_block(seed: str) -> bytes:
    """helpers/web_origin.py's pattern: a 64 KiB block from `seed`, repeated."""
    import random
    return random.Random(seed).randbytes(1 << 16)


def pattern_sha256(n: int, seed: str) -> str:
    block = pattern_block(seed)
    h = hashlib.sha256()
    while n > 0:
        piece = block[:n]
        h.update(piece)
        n -= len(piece)
    return h.hexdigest()


def pattern_file(path: str, n: int, seed: str) -> str:
    """Writes pattern(n, seed) to path; returns its sha256."""
    block = pattern_block(seed)
    with open(path, "wb") as f:
        left = n
        while left > 0:
            piece = block[:left]
            f.write(piece)
            left -= len(piece)
    return pattern_sha256(n, seed)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for _ in range(1 << 20):
            data = f.read(1 << 20)
            if not data:
                break
            h.update(data)
    return h.hexdigest()


def make_test_ca(directory: str, names: list[str], ips: list[str]) -> dict:
    """A throw-away CA and a server certificate it signs for names and ips (openssl, EC P-256).
    Returns the paths: ca (the CA's certificate, what clients trust), cert, key."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, f) for k, f in (("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"),
                                                    ("key", "server.key"), ("csr", "server.csr"), ("ext", "server.ext"))}
    openssl = require_tool("openssl")
    steps = [
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", p["ca_key"], "-out", p["ca"], "-days", "2", "-subj", "/CN=fwgate-it throw-away CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", p["key"], "-out", p["csr"], "-subj", f"/CN={names[0]}"],
    ]
    with open(p["ext"], "w") as f:
        san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    steps.append([openssl, "x509", "-req", "-in", p["csr"], "-CA", p["ca"], "-CAkey", p["ca_key"],
                  "-CAcreateserial", "-out", p["cert"], "-days", "2", "-extfile", p["ext"]])
    for cmd in steps:
        cp = run(cmd, timeout=30)
        assert cp.returncode == 0, f"{' '.join(cmd)}: {cp.stderr.decode(errors='replace')}"
    return p


def trusting_env(ca: str, home: str, **extra: str) -> dict:
    """A client environment that trusts only the test's CA (every variable the usual clients read
    for it), with HOME in the test's directory and no proxy variables but those in `extra`."""
    env = {k: v for k, v in clean_env().items()
           if not any(w in k for w in ("CA_CERT", "CA_BUNDLE", "SSL_CERT", "CAINFO", "PIP_", "NPM_", "npm_"))}
    env.update(HOME=home, CURL_CA_BUNDLE=ca, SSL_CERT_FILE=ca, REQUESTS_CA_BUNDLE=ca, PIP_CERT=ca,
               GIT_SSL_CAINFO=ca, NODE_EXTRA_CA_CERTS=ca, LC_ALL="C.UTF-8")
    env.pop("SSL_CERT_DIR", None)
    env.update(extra)
    return env


# ----------------------------------------------------------------------------------------------
# Sockets of another network namespace, made by the test's own process


CLONE_NEWNET = 0x40000000


class in_netns:
    """`with in_netns(NAME):` sockets created in the block belong to the network namespace NAME
    (/run/netns/NAME, made by `ip netns add`) and stay there after it. setns(2) moves only the
    calling thread, and the block moves it back whatever happens."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if self.libc.setns(there, CLONE_NEWNET) != 0:
                import ctypes as c
                raise OSError(c.get_errno(), f"setns into {self.name}")
        except BaseException:
            os.close(self.here)
            raise
        finally:
            os.close(there)
        return self

    def __exit__(self, *exc):
        try:
            if self.libc.setns(self.here, CLONE_NEWNET) != 0:
                # The thread would stay in the test's namespace: nothing after this may run there.
                os._exit(70)
        finally:
            os.close(self.here)


def connect_in(netns: str, host: str, port: int, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A TCP connection from inside the namespace `netns` (optionally from the address `source`)."""
    with in_netns(netns):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if source:
            sock.bind((source, 0))
        sock.settimeout(timeout * SLOW)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


# ----------------------------------------------------------------------------------------------
# The Web Proxy's topology


class WebTopology(Namespaces):
    """internal host -- gateway (IP forwarding off) -- external host, in network namespaces:

        internal ns  10.A.1.2/24 (+ .3: the intranet server)  --veth--  10.A.1.1/24  gateway ns
                     192.0.2.10/32 on its loopback: a server the client reaches directly and
                     the gateway cannot (the "direct" page of the backup route)
        gateway ns   198.51.100.1/24  --veth--  198.51.100.7/24  external ns (origin servers)
                     2001:db8:e::1/64           2001:db8:e::7/64

    The internal host's default route points at the gateway, which does not forward: the outside
    is reached only through the proxy. Names (hosts files of the namespaces, no DNS): the gateway
    knows www.external.test, www6.external.test (IPv6 only) and intranet.corp.test; the internal
    host only intranet.corp.test.
    Fixed ports (80, 443, 22, 8080...) are those of these namespaces alone.
    """

    EXTERNAL = "198.51.100.7"
    GW_OUTSIDE = "198.51.100.1"
    EXTERNAL6 = "2001:db8:e::7"
    GW_OUTSIDE6 = "2001:db8:e::1"
    NAME6 = "www6.external.test"  # IPv6 only
    SIDE = "192.0.2.10"
    NAME = "www.external.test"
    INTRANET_NAME = "intranet.corp.test"
    PROXY_PORT = 8080

    def __init__(self, tmp_path):
        pid = os.getpid()
        self.a = 50 + pid % 150
        self.link = {k: f"fw{pid % 100000}{k}" for k in ("ig", "gi", "ge", "eg")}
        super().__init__({r: f"fwweb{pid}{r[0]}" for r in ("internal", "gateway", "external")},
                         list(self.link.values()))
        self.tmp = tmp_path
        self.files: list = []
        self.events_path = os.path.join(str(tmp_path), "origin-events.jsonl")
        self.certs: dict | None = None
        self.docroot = os.path.join(str(tmp_path), "www")

    @property
    def internal(self) -> str:
        return f"10.{self.a}.1.2"

    @property
    def intranet(self) -> str:
        return f"10.{self.a}.1.3"

    @property
    def gw_inside(self) -> str:
        return f"10.{self.a}.1.1"

    @property
    def internal_net(self) -> str:
        return f"10.{self.a}.1.0/24"

    @property
    def proxy(self) -> str:
        return f"http://{self.gw_inside}:{self.PROXY_PORT}"

    def hosts_for(self, role: str) -> dict[str, list[str]]:
        table = {"127.0.0.1": [TEST_NAME], "::1": [TEST_NAME6], self.intranet: [self.INTRANET_NAME]}
        if role == "gateway":
            table[self.EXTERNAL] = [self.NAME]
            table[self.EXTERNAL6] = [self.NAME6]
        if role == "external":
            table[self.EXTERNAL] = [self.NAME]
        return table

    def build(self) -> None:
        self.create()
        i, g, e = (self.ns[r] for r in ("internal", "gateway", "external"))
        L = self.link
        self.ip("link", "add", L["ig"], "netns", i, "type", "veth", "peer", "name", L["gi"], "netns", g)
        self.ip("link", "add", L["ge"], "netns", g, "type", "veth", "peer", "name", L["eg"], "netns", e)
        for ns, link, addr in ((i, L["ig"], f"{self.internal}/24"), (i, L["ig"], f"{self.intranet}/24"),
                               (g, L["gi"], f"{self.gw_inside}/24"), (g, L["ge"], f"{self.GW_OUTSIDE}/24"),
                               (e, L["eg"], f"{self.EXTERNAL}/24")):
            self.ip("-n", ns, "addr", "add", addr, "dev", link)
            self.ip("-n", ns, "link", "set", link, "up")
        # IPv6 between the gateway and the external host only (nodad: usable at once).
        self.ip("-n", g, "addr", "add", f"{self.GW_OUTSIDE6}/64", "dev", L["ge"], "nodad")
        self.ip("-n", e, "addr", "add", f"{self.EXTERNAL6}/64", "dev", L["eg"], "nodad")
        self.ip("-n", i, "addr", "add", f"{self.SIDE}/32", "dev", "lo")
        self.ip("-n", i, "route", "add", "default", "via", self.gw_inside)
        self.ip("-n", e, "route", "add", "default", "via", self.GW_OUTSIDE)
        for key in ("net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"):
            cp = self.run_in("gateway", ["sysctl", "-qw", key])
            assert cp.returncode == 0, cp.stderr
        for role in ("internal", "gateway", "external"):
            self.resolver(role, hosts=self.hosts_for(role))
        # The gateway does not forward: the internal host cannot reach the external one directly.
        cp = self.run_in("internal", [PYTHON, "-c", (
            "import socket,sys\ns=socket.socket();s.settimeout(0.3)\n"
            f"sys.exit(0 if s.connect_ex(('{self.EXTERNAL}', 80)) else 1)")], timeout=10)
        assert cp.returncode == 0, "the internal host reaches the external one without the proxy"

    def wait_port(self, role: str, host: str, port: int, timeout: float = 10.0) -> None:
        code = (f"import socket,time,sys\nd=time.monotonic()+{timeout * SLOW}\nerr=None\n"
                f"while time.monotonic()<d:\n  try:\n    socket.create_connection(('{host}',{port}),0.5).close();sys.exit(0)\n"
                f"  except OSError as e: err=e; time.sleep(0.05)\nsys.exit(repr(err))")
        cp = self.run_in(role, [PYTHON, "-c", code], timeout=timeout + 10)
        assert cp.returncode == 0, f"{role} {host}:{port} never listened: {cp.stderr!r}"

    def logfile(self, name: str):
        f = open(os.path.join(str(self.tmp), name), "wb")
        self.files.append(f)
        return f

    def start_origin(self, https_ports=(443, 8443), http_ports=(80,), banner_ports=(22,), echo_ports=(7,)) -> None:
        """The external host's servers (helpers/web_origin.py) and the CA its clients trust."""
        os.makedirs(self.docroot, exist_ok=True)
        if self.certs is None:
            self.certs = make_test_ca(os.path.join(str(self.tmp), "pki"), [self.NAME, self.NAME6],
                                      [self.EXTERNAL, self.EXTERNAL6])
        argv = [PYTHON, os.path.join(HELPER_DIR, "web_origin.py"), "--host", self.EXTERNAL, "--host", self.EXTERNAL6,
                "--docroot", self.docroot,
                "--events", self.events_path, "--cert", self.certs["cert"], "--key", self.certs["key"],
                "--lifetime", str(int(280 * SLOW))]
        for p in http_ports:
            argv += ["--http-port", str(p)]
        for p in https_ports:
            argv += ["--https-port", str(p)]
        for p in banner_ports:
            argv += ["--banner-port", str(p)]
        for p in echo_ports:
            argv += ["--echo-port", str(p)]
        log = self.logfile("origin.log")
        proc = self.spawn("external", argv, stdout=subprocess.PIPE, stderr=log)
        line = read_pipe(proc.stdout, 16, 20, until=b"\n")
        assert line.strip() == b"ready", f"origin did not start: {line!r}; " \
            f"{open(os.path.join(str(self.tmp), 'origin.log'), errors='replace').read()[-3000:]}"

    def start_static(self, role: str, host: str, port: int, directory: str, name: str) -> None:
        """helpers/http_server.py (a static page server) in a namespace."""
        log = self.logfile(f"{name}.log")
        proc = self.spawn(role, [PYTHON, os.path.join(HELPER_DIR, "http_server.py"), host, str(port), directory],
                          stdout=subprocess.PIPE, stderr=log)
        line = read_pipe(proc.stdout, 16, 20, until=b"\n")
        assert line.strip() == b"ready", f"{name} server did not start: {line!r}"

    def events(self, ev: str | None = None, port: int | None = None) -> list[dict]:
        """The origin's event lines so far (complete lines only)."""
        out = []
        if not os.path.exists(self.events_path):
            return out
        with open(self.events_path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                rec = json.loads(line)
                if (ev is None or rec.get("ev") == ev) and (port is None or rec.get("port") == port):
                    out.append(rec)
        return out

    def client_env(self, **extra: str) -> dict:
        home = os.path.join(str(self.tmp), "home")
        os.makedirs(home, exist_ok=True)
        return trusting_env(self.certs["ca"] if self.certs else "/nonexistent", home, **extra)

    def teardown(self) -> list[str]:
        problems = super().teardown()
        for f in self.files:
            f.close()
        return problems


NAME = WebTopology.NAME
EXTERNAL = WebTopology.EXTERNAL
MIB = 1 << 20


@pytest.fixture
def topo(tmp_path):
    """The topology built and its origin servers started; torn down whatever happens."""
    for tool in ("ip", "openssl", "curl"):
        require_tool(tool)
    if os.geteuid() != 0:
        pytest.fail("the namespace tests need root (run the suite as root)")
    t = WebTopology(tmp_path)
    try:
        t.build()
        t.start_origin()
        yield t
    finally:
        problems = t.teardown()
        assert not problems, problems


@pytest.fixture
def big_file(topo):
    """big_file(NAME): a path in the test's directory for a large file, removed after the test
    (pytest keeps the directories of its last runs)."""
    paths = []

    def make(name: str) -> str:
        path = os.path.join(str(topo.tmp), name)
        paths.append(path)
        return path

    yield make
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


INTERNAL_WEB = {"name": "internal web", "action": "allow", "sources": ["internal"], "destinations": ["any"],
                "commands": ["http", "connect"]}


def web_kwargs(topo, rules=None, web=None, users=None, networks=None, limits=None) -> dict:
    """The gateway fixture's arguments for fwgate in the gateway namespace: SOCKS on the inside
    address (port 0), the Web Proxy on 10.A.1.1:8080, the internal network named "internal"."""
    wp = {"listen": [f"{topo.gw_inside}:{topo.PROXY_PORT}"]}
    wp.update(web or {})
    nets = {"internal": {"ranges": [topo.internal_net]}}
    nets.update(networks or {})
    lim = {"connect_timeout": "3s"}
    lim.update(limits or {})
    return dict(netns=topo.ns["gateway"], health=False, bind_external=None,
                listeners=[{"address": topo.gw_inside, "port": 0, "methods": ["none"]}],
                networks=nets, rules=rules or [INTERNAL_WEB], web_proxy=wp, users=users, limits=lim)


def web_gateway(gateway, topo, workers=None, **kw):
    gw = gateway(**web_kwargs(topo, **kw), workers=workers)
    assert gw.web_addresses() == [(topo.gw_inside, topo.PROXY_PORT)], gw.web_addresses()
    return gw


def http_log(gw, timeout: float = 10.0, **want) -> dict:
    """The first session log line of the Web Proxy ("protocol": "http") with these fields."""
    def match(rec):
        return rec.get("protocol") == "http" and all(rec.get(k) == v for k, v in want.items())
    return gw.wait_session(match, timeout)


def error_log(gw, code: int, timeout: float = 10.0) -> dict:
    """The log line of a request the proxy refused with `code` before it was understood: "status"
    says the code (as on every Web Proxy line), "error" the reason."""
    def match(rec):
        return rec.get("protocol") == "http" and rec.get("status") == code
    rec = gw.wait_session(match, timeout)
    assert rec.get("error"), f"no reason logged for the {code}: {rec}"
    return rec


def http_logs(gw) -> list[dict]:
    return [r for r in gw.sessions() if r.get("protocol") == "http"]


def in_internal(topo, argv, timeout=60.0, env=None, **extra_env) -> subprocess.CompletedProcess:
    return topo.run_in("internal", argv, timeout=timeout, env=env or topo.client_env(**extra_env))


def out(cp) -> str:
    return cp.stdout.decode(errors="replace")


def err(cp) -> str:
    return cp.stderr.decode(errors="replace")[-3000:]


def proxy_conn(topo, source: str | None = None) -> HttpConn:
    """A raw connection to the proxy from the internal host (optionally from `source`, one of its
    addresses)."""
    return HttpConn(connect_in(topo.ns["internal"], topo.gw_inside, topo.PROXY_PORT, source))


def wait_http_logs(gw, n: int, timeout: float = 10.0) -> list[dict]:
    """The Web Proxy's log lines once there are at least n (bounded wait)."""
    return gw.wait_sessions(lambda r: r.get("protocol") == "http", n, timeout)


def raw(topo, data: bytes, method: str = "GET", timeout: float = 10.0) -> HttpResponse:
    """One request's bytes on a new connection to the proxy; the response."""
    with proxy_conn(topo) as c:
        c.send(data)
        return c.response(method, timeout)


def get_req(target: str, host: str = NAME, extra: list | None = None, version: str = "HTTP/1.1") -> bytes:
    return http_request("GET", target, [("Host", host)] + (extra or []), version=version)


def origin_requests(topo, marker: str) -> list[dict]:
    return [e for e in topo.events("request") if marker in e.get("target", "")]


def origin_header(echo: dict, name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


def assert_forwarded_echo(echo: dict, target: str) -> None:
    """What every forwarded request must look like at the origin."""
    assert echo["target"] == target, f"origin got request target {echo['target']!r}, expected origin-form {target!r}"
    assert origin_header(echo, "Host") == [NAME] or origin_header(echo, "Host")[0].startswith(NAME), echo["headers"]
    via = origin_header(echo, "Via")
    assert via and "fwgate" in via[-1], f"no Via naming the proxy at the origin: {echo['headers']}"
    for hop in ("Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "TE", "Trailer", "Upgrade"):
        assert not origin_header(echo, hop), f"hop-by-hop {hop} reached the origin: {echo['headers']}"


def gateway_accepts(topo, port: int = 80) -> list[dict]:
    return [e for e in topo.events("accept", port) if e["peer"].startswith(topo.GW_OUTSIDE + ":")]
