"""Helpers for the fwgate integration tests: local servers in threads, raw SOCKS bytes, bounded waits.

Everything here listens on loopback (port 0) and every loop is bounded by a count or a deadline.
Nothing here depends on the machine's resolver files (/etc/hosts, /etc/nsswitch.conf,
/etc/resolv.conf): processes that resolve names run in a resolver context the tests make (see
"Name resolution the tests control" below).
"""

from __future__ import annotations

import atexit
import hashlib
import http.server
import ipaddress
import os
import queue
import shutil
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time

import pytest

# Where this directory lives, for the helper programs and the node package.
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE_DIR = os.path.join(HERE, "node")
HELPER_DIR = os.path.join(HERE, "helpers")
PYTHON = "/usr/bin/python3"

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "UndefinedBehaviorSanitizer")

# Slower sanitized binaries get longer bounds (never shorter ones).
SLOW = 3.0 if os.environ.get("FWGATE_IT_SANITIZED") == "1" else 1.0


def require_tool(name: str) -> str:
    """Path of a program the test needs; a missing one is a hard failure (setup-deps.sh installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed: run scripts/setup-deps.sh")
    return path


def clean_env(**extra: str) -> dict:
    """The environment for client programs: no proxy variables leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(extra)
    return env


def sanitizer_report(text: str) -> str | None:
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


# ----------------------------------------------------------------------------------------------
# Name resolution the tests control
#
# The machine's /etc/hosts differs from one machine to the next: Debian's installer maps localhost
# to ::1 as well as 127.0.0.1, a development machine may not; and a name in no hosts file becomes a
# DNS query to whatever resolver the machine has (none in CI, where such a query may hang). So no
# test uses localhost or the machine's name, and every process that resolves a name runs with
# files of the test's own:
#
# - in the root network namespace, in a ResolverContext: a private mount namespace where a hosts
#   file of ours and an nsswitch.conf whose hosts line is "files" are bind-mounted over /etc's
#   (so a name the file lacks fails at once, without a DNS query);
# - in a network namespace a test builds (Namespaces), through /etc/netns/NAME/, which `ip netns
#   exec` bind-mounts over /etc: the same two files, and a resolv.conf where the test runs DNS.

TEST_NAME = "fwgate-it.test"  # 127.0.0.1 only
TEST_NAME6 = "fwgate-it6.test"  # ::1 only
TEST_NAME_DUAL = "fwgate-it-dual.test"  # ::1 and 127.0.0.1, as Debian's localhost
UNKNOWN_NAME = "fwgate-it-no-such-host.invalid"  # in no hosts file: not found, at once
TEST_HOSTS = {"127.0.0.1": [TEST_NAME, TEST_NAME_DUAL], "::1": [TEST_NAME6, TEST_NAME_DUAL]}

NSS_DATABASES = ("passwd", "group", "shadow", "gshadow", "networks", "protocols", "services", "ethers",
                 "rpc", "netgroup")


def write_resolver_files(directory: str, hosts: dict[str, list[str]] | None = None,
                         nameserver: str | None = None) -> None:
    """hosts and nsswitch.conf (with a name server: "hosts: files dns" and a resolv.conf naming it)
    in `directory`, to be mounted over /etc's."""
    os.makedirs(directory, exist_ok=True)
    table = TEST_HOSTS if hosts is None else hosts
    with open(os.path.join(directory, "hosts"), "w") as f:
        f.write("# fwgate integration tests: the only names this resolver knows\n")
        f.writelines(f"{address}\t{' '.join(names)}\n" for address, names in table.items())
    with open(os.path.join(directory, "nsswitch.conf"), "w") as f:
        f.write("# fwgate integration tests: host names from the hosts file beside this one"
                + (f", then DNS at {nameserver}\n" if nameserver else " only, never DNS\n"))
        f.write(f"hosts: files{' dns' if nameserver else ''}\n")
        f.writelines(f"{db}: files\n" for db in NSS_DATABASES)
    if nameserver:
        with open(os.path.join(directory, "resolv.conf"), "w") as f:
            f.write(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n")
    # An empty gai.conf: glibc's default address order, whatever the machine's file says (only
    # where the machine has one: `ip netns exec` warns about a file it has nothing to mount over).
    if os.path.exists("/etc/gai.conf"):
        open(os.path.join(directory, "gai.conf"), "w").close()


# Runs in the new mount namespace, then execs the command (same PID: signals reach it directly).
_RESOLVER_MOUNTS = r"""
d=$1
shift
for f in hosts nsswitch.conf gai.conf; do
  [ -e "$d/$f" ] || continue
  [ -e "/etc/$f" ] || { echo "resolver context: /etc/$f is missing" >&2; exit 125; }
  mount --bind "$d/$f" "/etc/$f" || { echo "resolver context: cannot mount over /etc/$f" >&2; exit 125; }
done
# A name service cache daemon would answer from the machine's files: hide its socket.
if [ -d /run/nscd ]; then mount -t tmpfs fwgate-it /run/nscd || exit 125; fi
exec "$@"
"""


class ResolverContext:
    """Files for name resolution in a directory, and the command prefix that runs a program with
    them over /etc's (unshare --mount: needs root, as the namespace tests do)."""

    def __init__(self, directory: str, hosts: dict[str, list[str]] | None = None):
        self.directory = directory
        write_resolver_files(directory, hosts)

    def prefix(self) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _RESOLVER_MOUNTS,
                "fwgate-it-resolver", self.directory]

    def wrap(self, argv: list[str]) -> list[str]:
        return self.prefix() + list(argv)


_resolver: ResolverContext | None = None


def resolver() -> ResolverContext:
    """The suite's resolver context (TEST_HOSTS), made on first use, removed when Python exits."""
    global _resolver
    if _resolver is None:
        if os.geteuid() != 0:
            pytest.fail("the resolver context (a private mount namespace) needs root: run the suite as root")
        directory = tempfile.mkdtemp(prefix="fwgate-it-resolver-")
        atexit.register(shutil.rmtree, directory, True)
        _resolver = ResolverContext(directory)
    return _resolver


def resolving(argv: list[str]) -> list[str]:
    """argv run in the suite's resolver context."""
    return resolver().wrap(argv)


# ----------------------------------------------------------------------------------------------
# Socket helpers


def recv_exact(sock: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    """Exactly n bytes, or AssertionError naming what arrived before EOF or the deadline."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {len(buf)} of {n} bytes: {bytes(buf)!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes: {bytes(buf)!r}")
        buf += chunk
    return bytes(buf)


def read_to_eof(sock: socket.socket, timeout: float = 5.0, limit: int = 1 << 20) -> tuple[bytes, str]:
    """Reads until the peer closes. Returns (data, how) with how in "eof", "reset", "timeout"."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(buf), "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(buf), "timeout"
        except ConnectionResetError:
            return bytes(buf), "reset"
        if not chunk:
            return bytes(buf), "eof"
        buf += chunk
    return bytes(buf), "limit"


def assert_closed(sock: socket.socket, timeout: float = 5.0, what: str = "gateway") -> bytes:
    """Asserts the peer closes (EOF or RST) within the timeout; returns any bytes it sent first."""
    data, how = read_to_eof(sock, timeout)
    assert how in ("eof", "reset"), f"{what} did not close the connection within {timeout * SLOW:.1f}s (got {data!r})"
    return data


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout * SLOW)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# ----------------------------------------------------------------------------------------------
# SOCKS wire format, written out byte by byte so the tests check exactly what a client sees


def s5_address(host: str | bytes, port: int, atyp: int | None = None) -> bytes:
    """ATYP DST.ADDR DST.PORT for an IPv4/IPv6 literal or a domain name."""
    if isinstance(host, bytes):
        return bytes([3, len(host)]) + host + struct.pack("!H", port)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode()
        return bytes([3 if atyp is None else atyp, len(name)]) + name + struct.pack("!H", port)
    kind = 1 if ip.version == 4 else 4
    return bytes([kind if atyp is None else atyp]) + ip.packed + struct.pack("!H", port)


def s5_request(cmd: int, host: str | bytes, port: int) -> bytes:
    return bytes([5, cmd, 0]) + s5_address(host, port)


def read_s5_reply(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, dict]:
    """One complete RFC 1928 reply. Returns (raw bytes, fields) and asserts it is well formed."""
    head = recv_exact(sock, 4, timeout)
    assert head[0] == 5, f"reply version {head[0]:#04x}, expected 0x05 (reply so far {head!r})"
    assert head[2] == 0, f"reply RSV {head[2]:#04x}, expected 0x00"
    atyp = head[3]
    if atyp == 1:
        rest = recv_exact(sock, 6, timeout)
        addr = str(ipaddress.IPv4Address(rest[:4]))
    elif atyp == 4:
        rest = recv_exact(sock, 18, timeout)
        addr = str(ipaddress.IPv6Address(rest[:16]))
    elif atyp == 3:
        ln = recv_exact(sock, 1, timeout)
        rest = ln + recv_exact(sock, ln[0] + 2, timeout)
        addr = rest[1:-2].decode(errors="replace")
    else:
        raise AssertionError(f"reply ATYP {atyp:#04x} is not 1, 3 or 4 (reply so far {head!r})")
    port = struct.unpack("!H", rest[-2:])[0]
    return head + rest, {"rep": head[1], "atyp": atyp, "addr": addr, "port": port}


def s5_greet(sock: socket.socket, methods: bytes = b"\x00") -> int:
    sock.sendall(bytes([5, len(methods)]) + methods)
    reply = recv_exact(sock, 2)
    assert reply[0] == 5, f"method selection version {reply!r}"
    return reply[1]


def s5_login(sock: socket.socket, user: str, password: str) -> bytes:
    u, p = user.encode(), password.encode()
    sock.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
    return recv_exact(sock, 2)


def s5_open(host: str, port: int, dst: str, dst_port: int, user: str | None = None,
            password: str | None = None, timeout: float = 10.0) -> tuple[socket.socket, dict]:
    """A SOCKS5 CONNECT through the gateway; asserts success and returns the relayed socket."""
    sock = connect(host, port, timeout)
    try:
        if user is None:
            assert s5_greet(sock, b"\x00") == 0
        else:
            assert s5_greet(sock, b"\x02") == 2
            assert s5_login(sock, user, password or "") == b"\x01\x00"
        sock.sendall(s5_request(1, dst, dst_port))
        raw, fields = read_s5_reply(sock, timeout)
        assert fields["rep"] == 0, f"CONNECT {dst}:{dst_port} got REP {fields['rep']:#04x} ({raw.hex(' ')})"
    except BaseException:
        sock.close()
        raise
    return sock, fields


def s5_try(host: str, port: int, dst: str | bytes, dst_port: int, cmd: int = 1,
           timeout: float = 15.0) -> tuple[bytes, dict, socket.socket]:
    """Greeting (no auth) and one request; returns the raw reply, its fields and the open socket."""
    sock = connect(host, port, timeout)
    assert s5_greet(sock, b"\x00") == 0
    sock.sendall(s5_request(cmd, dst, dst_port))
    raw, fields = read_s5_reply(sock, timeout)
    return raw, fields, sock


def s4_request(cmd: int, ip: str, port: int, user: bytes = b"", domain: str | None = None) -> bytes:
    if domain is not None:
        return bytes([4, cmd]) + struct.pack("!H", port) + b"\x00\x00\x00\x01" + user + b"\x00" + domain.encode() + b"\x00"
    return bytes([4, cmd]) + struct.pack("!H", port) + ipaddress.IPv4Address(ip).packed + user + b"\x00"


def echo_roundtrip(sock: socket.socket, payload: bytes, timeout: float = 10.0) -> None:
    sock.sendall(payload)
    got = recv_exact(sock, len(payload), timeout)
    assert got == payload, f"echo mismatch: sent {payload[:40]!r}..., got {got[:40]!r}..."


def assert_serves(host: str, port: int, echo_port: int, user: str | None = None,
                  password: str | None = None, tag: str = "") -> None:
    """The gateway is alive and relays a normal SOCKS5 request to the echo server."""
    sock, _ = s5_open(host, port, "127.0.0.1", echo_port, user, password)
    with sock:
        echo_roundtrip(sock, f"still-serving {tag} {os.urandom(6).hex()}\n".encode())


# ----------------------------------------------------------------------------------------------
# Local servers, each in a thread, on 127.0.0.1 (or ::1) port 0


class TcpServer:
    """A threaded accept loop calling handler(conn, addr, server) per connection."""

    def __init__(self, handler, host: str = "127.0.0.1", backlog: int = 128, conn_timeout: float = 60.0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conn_timeout = conn_timeout * SLOW
        self.stopping = threading.Event()
        self.events: queue.Queue = queue.Queue()  # what handlers report to the test
        self.peers: list = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"srv-{self.port}", daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(self.conn_timeout)
            with self._lock:
                self._conns.append(conn)
                self.peers.append(addr)
            t = threading.Thread(target=self._serve, args=(conn, addr), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket, addr) -> None:
        try:
            self.handler(conn, addr, self)
        except OSError as exc:
            if not self.stopping.is_set():
                self.errors.append(f"{addr}: {exc!r}")
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(5)
        for t in threads:
            t.join(5)


def handle_echo(conn: socket.socket, addr, server: TcpServer) -> None:
    """Echo until EOF, then half-close our side as well."""
    for _ in range(1 << 26):
        data = conn.recv(262144)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)


GREETING = b"220 fwgate-it first-writer ready\r\n"


def handle_first_writer(conn: socket.socket, addr, server: TcpServer) -> None:
    """Speaks first (like SMTP/FTP), then echoes."""
    conn.sendall(GREETING)
    handle_echo(conn, addr, server)


def handle_reply_after_eof(conn: socket.socket, addr, server: TcpServer) -> None:
    """Reads to EOF, then answers with what it got: proves the client's half-close arrived as EOF
    while the other direction stayed open."""
    got = bytearray()
    for _ in range(1 << 20):
        data = conn.recv(65536)
        if not data:
            break
        got += data
    server.events.put(("eof", bytes(got)))
    conn.sendall(b"after-eof:" + hashlib.sha256(got).hexdigest().encode() + f":{len(got)}\n".encode())
    conn.shutdown(socket.SHUT_WR)


SERVER_BYE = b"server-done-writing\n"


def handle_server_half_close(conn: socket.socket, addr, server: TcpServer) -> None:
    """Writes, half-closes its side, then keeps reading: the client must still be able to send."""
    conn.sendall(SERVER_BYE)
    conn.shutdown(socket.SHUT_WR)
    got = bytearray()
    for _ in range(1 << 20):
        data = conn.recv(65536)
        if not data:
            break
        got += data
    server.events.put(("received", bytes(got)))


def handle_sized(up_expected: int, down: bytes):
    """Reads exactly up_expected bytes and EOF, then sends `down` and closes (for byte counts)."""

    def handler(conn: socket.socket, addr, server: TcpServer) -> None:
        got = bytearray()
        for _ in range(1 << 20):
            data = conn.recv(65536)
            if not data:
                break
            got += data
        server.events.put(("up", len(got)))
        conn.sendall(down)
        conn.shutdown(socket.SHUT_WR)

    return handler


def handle_hashing_echo(conn: socket.socket, addr, server: TcpServer) -> None:
    """Echoes everything and reports the sha256 and length of what it received."""
    h = hashlib.sha256()
    total = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for _ in range(1 << 26):
        n = conn.recv_into(buf)
        if n == 0:
            break
        h.update(view[:n])
        total += n
        conn.sendall(view[:n])
    conn.shutdown(socket.SHUT_WR)
    server.events.put(("hash", h.hexdigest(), total))


def handle_hashing_sink(conn: socket.socket, addr, server: TcpServer) -> None:
    """Reads to EOF and reports the sha256 and length of what it received."""
    h = hashlib.sha256()
    total = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for _ in range(1 << 26):
        n = conn.recv_into(buf)
        if n == 0:
            break
        h.update(view[:n])
        total += n
    server.events.put(("hash", h.hexdigest(), total))


class HttpServer:
    """http.server in a thread, serving one known body at /fwgate-it and recording client addresses."""

    def __init__(self, host: str = "127.0.0.1"):
        self.body = b"fwgate integration body " + os.urandom(8).hex().encode() + b"\n"
        self.path = "/fwgate-it"
        self.requests: list = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append((self.client_address, self.path))
                if self.path != outer.path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

            def server_bind(self):
                # Not HTTPServer's: that one looks the address up (socket.getfqdn), through the
                # machine's hosts file or its DNS server (::1 is in no hosts file of a machine
                # without the IPv6 lines).
                socketserver.TCPServer.server_bind(self)
                self.server_name, self.server_port = self.server_address[:2]

        self.httpd = Server((host, 0), Handler)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, host: str | None = None) -> str:
        h = host or self.host
        if ":" in h:
            h = f"[{h}]"
        return f"http://{h}:{self.port}{self.path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class UdpEcho:
    """Echoes each datagram back to its sender and records the senders."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.senders: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.senders.append(addr)
            try:
                self.sock.sendto(data, addr)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def refused_port(host: str = "127.0.0.1") -> int:
    """A port with nothing listening: bind to get a free one, then close."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(cmd: list[str], timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
    """Runs a client program with a bound, capturing output; kills it at the deadline."""
    kw.setdefault("env", clean_env())
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout * SLOW, **kw)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{cmd[0]} did not finish within {timeout * SLOW:.0f}s: "
                             f"stdout={exc.stdout!r} stderr={exc.stderr!r}") from None


def read_pipe(pipe, n: int, timeout: float = 10.0, until: bytes | None = None) -> bytes:
    """Reads from a child's pipe until n bytes (or a line ending in `until`), EOF or the deadline."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(pipe, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout * SLOW
    buf = b""
    try:
        while len(buf) < n and not (until and buf.endswith(until)):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(pipe.fileno(), 1 if until else n - len(buf))
            if not chunk:
                break
            buf += chunk
    finally:
        sel.close()
    return buf


class Namespaces:
    """Network namespaces and veth links a test builds, and the helper processes it starts in them.

    Each namespace gets its own resolver files in /etc/netns/NAME (TEST_HOSTS, no DNS), which
    `ip netns exec` mounts over /etc's; resolver() gives one a DNS server. Ports inside these
    namespaces are the test's alone: fixed ones there cannot meet anything else on the machine.
    teardown() kills every process (by PID), deletes the namespaces, their /etc/netns directories
    and any veth end left in the root namespace, and returns what it could not undo.
    """

    def __init__(self, names: dict[str, str], links: list[str]):
        self.ns = names  # role -> namespace name
        self.links = links
        self.procs: list[subprocess.Popen] = []
        self.created: list[str] = []
        self.etc_dirs: list[str] = []

    def ip(self, *args: str) -> None:
        cp = subprocess.run(["ip", *args], capture_output=True, timeout=15)
        assert cp.returncode == 0, f"ip {' '.join(args)}: {cp.stderr.decode(errors='replace')}"

    def resolver(self, role: str, nameserver: str | None = None, hosts: dict[str, list[str]] | None = None) -> None:
        """(Re)writes the namespace's resolver files; with a name server, DNS after the hosts file."""
        d = f"/etc/netns/{self.ns[role]}"
        if d not in self.etc_dirs:
            self.etc_dirs.append(d)
        write_resolver_files(d, hosts, nameserver)

    def create(self) -> None:
        for role, name in self.ns.items():
            self.ip("netns", "add", name)
            self.created.append(name)
            self.ip("-n", name, "link", "set", "lo", "up")
            self.resolver(role)

    def spawn(self, role: str, argv: list[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[role]] + argv, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(proc)
        return proc

    def run_in(self, role: str, argv: list[str], timeout: float = 30.0, env=None) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.ns[role]] + argv, timeout=timeout, env=env)

    def teardown(self) -> list[str]:
        problems = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                problems.append(f"helper pid {proc.pid} did not die")
            for pipe in (proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()
        for name in reversed(self.created):
            cp = subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=15)
            if cp.returncode != 0:
                problems.append(f"ip netns del {name}: {cp.stderr.decode(errors='replace')}")
        # A veth left in the root namespace by a half-finished build.
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=15)
        for d in self.etc_dirs:
            shutil.rmtree(d, ignore_errors=True)
        return problems


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
        import json
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
