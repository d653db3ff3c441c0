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
