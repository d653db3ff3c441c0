"""Fixtures for the fwgate integration suite.

FWGATE_BIN         the fwgate binary under test (default: build/apps/fwgate/fwgate in the repo)
FWGATE_IT_TARGET   "fwgate" (default) or "microsocks": the second validates this harness and the
                   protocol-generic tests against Debian's microsocks; fwgate_only tests are deselected
FWGATE_IT_ALL=1    with microsocks, run the fwgate_only tests too (to watch them fail)
FWGATE_IT_SANITIZED=1  the binary is an ASan/UBSan build: bounds are stretched, never shortened
FWGATE_IT_WORKERS  every gateway the suite starts gets `--workers N` (scripts/test.sh runs the suite
                   with 1 and with 4); unset: the gateway's own default, one per CPU

The suite may depend neither on the machine's resolver files nor on what else listens on it (run it
under tests/integration/isolated.sh to see): gateways outside a test's network namespaces run in
the suite's resolver context (fwit.resolver()) and listen on port 0 only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import fwit

TARGET = os.environ.get("FWGATE_IT_TARGET", "fwgate")
FWGATE_BIN = os.environ.get("FWGATE_BIN") or os.path.join(fwit.REPO, "build", "apps", "fwgate", "fwgate")
WORKERS = os.environ.get("FWGATE_IT_WORKERS", "")
LISTEN_RE = re.compile(r"socks listening on (\S+):(\d+)")
CONTROL_RE = re.compile(r"control channel listening on (\S+):(\d+)")
WEB_RE = re.compile(r"web proxy listening on (\S+):(\d+)")


def pytest_configure(config):
    config.addinivalue_line("markers", "fwgate_only: needs fwgate behaviour beyond plain SOCKS5 (not microsocks)")
    if TARGET not in ("fwgate", "microsocks"):
        raise pytest.UsageError(f"FWGATE_IT_TARGET={TARGET!r}: expected fwgate or microsocks")
    if TARGET == "fwgate" and not os.access(FWGATE_BIN, os.X_OK):
        raise pytest.UsageError(f"FWGATE_BIN={FWGATE_BIN!r} is not an executable: build fwgate first")


def pytest_collection_modifyitems(config, items):
    if TARGET != "microsocks" or os.environ.get("FWGATE_IT_ALL") == "1":
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("fwgate_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    return f"fwgate integration: target={TARGET} bin={FWGATE_BIN if TARGET == 'fwgate' else 'microsocks'} slow={fwit.SLOW}"


# ----------------------------------------------------------------------------------------------
# Configuration rendering (TOML)


def q(value: str) -> str:
    """A TOML basic string (JSON string syntax is valid TOML for these ASCII values)."""
    return json.dumps(value)


def qlist(values) -> str:
    return "[" + ", ".join(q(v) for v in values) + "]"


def tvalue(value) -> str:
    """A TOML value from a Python one: bool, int, string, or a list of them (mixed lists too, as
    tunnel_ports = [443, "8000-8100"])."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(tvalue(v) for v in value) + "]"
    return q(str(value))


LOOPBACK_RULE = {"name": "loopback", "action": "allow", "sources": ["loopback"], "destinations": ["any"],
                 "commands": ["connect", "bind", "udp"]}

DEFAULT_LIMITS = {"handshake_timeout": "5s", "connect_timeout": "5s", "idle_timeout": "2h", "bind_timeout": "30s"}


def render_config(*, listeners, users_file, limits, bind_external, sessions_log, networks, rules, extra="",
                  web_proxy=None) -> str:
    """web_proxy: the keys of [web_proxy] (listen, tunnel_ports, via, ...) as Python values."""
    out = []
    if users_file:
        out += ["[gateway]", f"users_file = {q(users_file)}", ""]
    for lst in listeners:
        out += ["[[listeners]]", f"address = {q(lst['address'])}", f"port = {int(lst.get('port', 0))}",
                f"methods = {qlist(lst.get('methods', ['none']))}", ""]
    if web_proxy is not None:
        out += ["[web_proxy]"] + [f"{k} = {tvalue(v)}" for k, v in web_proxy.items()] + [""]
    out += ["[limits]"] + [f"{k} = {q(v) if isinstance(v, str) else v}" for k, v in limits.items()] + [""]
    if bind_external is not None:
        out += ["[bind]", f"external_address = {q(bind_external)}", ""]
    out += ["[log]", f"sessions = {q(sessions_log)}", ""]
    for name, net in (networks or {}).items():
        out.append(f"[networks.{name}]")
        for key in ("ranges", "domains"):
            if key in net:
                out.append(f"{key} = {qlist(net[key])}")
        if "firewall_clients" in net:
            out.append(f"firewall_clients = {'true' if net['firewall_clients'] else 'false'}")
        out.append("")
    for rule in rules:
        out.append("[[rules]]")
        for key, value in rule.items():
            out.append(f"{key} = {qlist(value) if isinstance(value, list) else q(value)}")
        out.append("")
    return "\n".join(out) + extra


# ----------------------------------------------------------------------------------------------
# Running fwgate subcommands


def run_fwgate(args: list[str], input: bytes | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs `fwgate ARGS` in the suite's resolver context; fails the test on a sanitizer report in
    its output."""
    cp = fwit.run(fwit.resolving([FWGATE_BIN] + args), timeout=timeout, input=input, env=dict(os.environ))
    text = cp.stderr.decode(errors="replace") + cp.stdout.decode(errors="replace")
    marker = fwit.sanitizer_report(text)
    if marker:
        pytest.fail(f"fwgate {' '.join(args)} reported {marker}:\n{text[-4000:]}")
    return cp


def make_users_file(path: str, users: dict[str, str]) -> None:
    for name, password in users.items():
        cp = run_fwgate(["passwd", "--users-file", path, "--stdin", name], input=(password + "\n").encode())
        assert cp.returncode == 0, f"fwgate passwd {name} failed ({cp.returncode}): {cp.stderr.decode(errors='replace')}"
    text = open(path, encoding="utf-8", errors="replace").read()
    for name, password in users.items():
        assert name in text, f"users file lacks {name}: {text!r}"
        assert password not in text, "users file holds a plaintext password"


# ----------------------------------------------------------------------------------------------
# The gateway under test


class Gateway:
    """A running gateway (fwgate or microsocks) and what the test may need from it."""

    def __init__(self, proc, workdir, stderr_path, config_path, session_log, users, health, kind, netns):
        self.proc = proc
        self.workdir = workdir
        self.stderr_path = stderr_path
        self.config_path = config_path
        self.session_log = session_log
        self.users = users or {}
        self.health = health
        self.kind = kind
        self.netns = netns
        self.addresses: list[tuple[str, int]] = []
        self.expected_exit = False

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def web_addresses(self) -> list[tuple[str, int]]:
        """The Web Proxy's listening addresses, from the start-up lines."""
        return [(h.strip("[]"), int(p)) for h, p in WEB_RE.findall(self.stderr())]

    @property
    def web_host(self) -> str:
        found = self.web_addresses()
        assert found, f"the gateway has no Web Proxy listener:\n{self.tail()}"
        return found[0][0]

    @property
    def web_port(self) -> int:
        found = self.web_addresses()
        assert found, f"the gateway has no Web Proxy listener:\n{self.tail()}"
        return found[0][1]

    def web_proxy_url(self) -> str:
        """http://HOST:PORT of the first Web Proxy listener (for curl -x, http_proxy, ...)."""
        host = self.web_host
        return f"http://[{host}]:{self.web_port}" if ":" in host else f"http://{host}:{self.web_port}"

    def control_addresses(self) -> list[tuple[str, int]]:
        """The control channel's listening addresses, from the start-up lines."""
        return [(h.strip("[]"), int(p)) for h, p in CONTROL_RE.findall(self.stderr())]

    def wait_control_addresses(self, timeout: float = 10.0) -> list[tuple[str, int]]:
        """control_addresses(), once the first of those lines is there (bounded wait)."""
        deadline = time.monotonic() + timeout * fwit.SLOW
        while not self.control_addresses() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        found = self.control_addresses()
        assert found, f"no 'control channel listening on' line within {timeout * fwit.SLOW:.0f}s:\n{self.tail()}"
        return found

    def sessions(self) -> list[dict]:
        """Parsed session log lines; a line that is not JSON fails the test."""
        if not self.session_log or not os.path.exists(self.session_log):
            return []
        out = []
        with open(self.session_log, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    break  # being written
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    pytest.fail(f"session log line {n} is not JSON ({exc}): {line!r}")
        return out

    def wait_session(self, predicate, timeout: float = 10.0) -> dict:
        """The first matching line (bounded wait)."""
        return self.wait_sessions(predicate, 1, timeout)[0]

    def wait_sessions(self, predicate, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Every matching line once at least `count` match. Lines are written off the sessions'
        threads, in batches, and sessions on different loops end in any order, so a test that
        expects n lines waits for n rather than reading the log once."""
        deadline = time.monotonic() + timeout * fwit.SLOW
        while True:
            got = [rec for rec in self.sessions() if predicate(rec)]
            if len(got) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert len(got) >= count, f"{len(got)} of {count} matching session log lines within " \
            f"{timeout * fwit.SLOW:.0f}s; log: {self.sessions()!r}"
        return got

    def write_config(self, text: str) -> None:
        tmp = self.config_path + ".new"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout * fwit.SLOW)
        except subprocess.TimeoutExpired:
            return None

    def tail(self, n: int = 4000) -> str:
        return self.stderr()[-n:]


def _wait_listening(gw: Gateway, expected: int, timeout: float, expected_web: int = 0) -> None:
    """Until the start-up lines name `expected` SOCKS listeners and `expected_web` Web Proxy ones."""
    deadline = time.monotonic() + timeout * fwit.SLOW
    while time.monotonic() < deadline:
        text = gw.stderr()
        found = [(h.strip("[]"), int(p)) for h, p in LISTEN_RE.findall(text)]
        web = WEB_RE.findall(text)
        if len(found) >= expected and len(web) >= expected_web:
            gw.addresses = found
            return
        if gw.proc.poll() is not None:
            pytest.fail(f"gateway exited with {gw.proc.returncode} before listening:\n{text[-4000:]}")
        time.sleep(0.02)
    what = "'socks listening on'" if len(LISTEN_RE.findall(gw.stderr())) < expected else "'web proxy listening on'"
    pytest.fail(f"no {what} line within {timeout * fwit.SLOW:.0f}s:\n{gw.tail()}")


def _wait_connectable(gw: Gateway, host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout * fwit.SLOW
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            pytest.fail(f"{gw.kind} exited with {gw.proc.returncode}:\n{gw.tail()}")
        try:
            with socket.create_connection((host, port), timeout=1):
                gw.addresses = [(host, port)]
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"{gw.kind} not accepting on {host}:{port} within {timeout}s")


class GatewayFactory:
    def __init__(self, tmp_path, request):
        self.tmp_path = tmp_path
        self.request = request
        self.gateways: list[Gateway] = []
        self._health_echo = None
        self.count = 0

    def health_echo(self) -> fwit.TcpServer:
        if self._health_echo is None:
            self._health_echo = fwit.TcpServer(fwit.handle_echo)
        return self._health_echo

    def config_text(self, **kw) -> str:
        """The TOML a gateway(**kw) call would write: for tests that rewrite and reload it."""
        workdir = kw.pop("_workdir", str(self.tmp_path))
        limits = dict(DEFAULT_LIMITS)
        limits.update(kw.get("limits") or {})
        methods = kw.get("methods") or ["none"]
        listeners = kw.get("listeners") or [{"address": "127.0.0.1", "port": 0, "methods": methods}]
        users_file = os.path.join(workdir, "users") if kw.get("users") else None
        return render_config(listeners=listeners, users_file=users_file, limits=limits,
                             bind_external=kw.get("bind_external", "127.0.0.1"),
                             sessions_log=os.path.join(workdir, "sessions.log"),
                             networks=kw.get("networks"), rules=kw.get("rules") or [LOOPBACK_RULE],
                             extra=kw.get("extra", ""), web_proxy=kw.get("web_proxy"))

    def __call__(self, *, rules=None, methods=None, users=None, limits=None, networks=None, listeners=None,
                 listen=None, control_listen=None, web_listen=None, config_text=None, use_config=True, netns=None,
                 health=True, bind_external="127.0.0.1", extra="", expected_listeners=None, web_proxy=None,
                 expected_web=None, workers=None, env=None) -> Gateway:
        """In a test's network namespace (netns=) or else in the suite's resolver context. listen,
        control_listen and web_listen are --listen, --control-listen and --web-listen (ADDR:PORT
        lists); web_proxy the keys of [web_proxy] (a dict); workers --workers (else
        FWGATE_IT_WORKERS); env variables added to the gateway's environment. The start-up waits for the Web Proxy's
        listening lines too when there are any to wait for (expected_web: how many)."""
        self.count += 1
        workdir = str(self.tmp_path / f"gw{self.count}")
        os.makedirs(workdir, exist_ok=True)
        stderr_path = os.path.join(workdir, "stderr.log")
        config_path = os.path.join(workdir, "gateway.toml")
        session_log = os.path.join(workdir, "sessions.log")
        if not use_config and not netns and TARGET == "fwgate" and (not listen or not control_listen
                                                                    or not web_listen):
            # The embedded default listens on 127.0.0.1:1080, 127.0.0.1:1745 and 127.0.0.1:8080:
            # ports of the machine, which something else may hold.
            pytest.fail("a gateway on the embedded default needs listen=, control_listen= and web_listen= (port 0)")
        # The namespace's own resolver files come with `ip netns exec` (fwit.Namespaces).
        prefix = ["ip", "netns", "exec", netns] if netns else fwit.resolver().prefix()
        errf = open(stderr_path, "wb")

        if TARGET == "microsocks":
            host = "127.0.0.1"
            if listen:
                host = listen[0].rsplit(":", 1)[0].strip("[]")
            port = fwit.refused_port(host)
            cmd = prefix + [fwit.require_tool("microsocks"), "-i", host, "-p", str(port)]
            if users:
                (name, password), = users.items()
                cmd += ["-u", name, "-P", password]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, cwd=workdir)
            errf.close()
            gw = Gateway(proc, workdir, stderr_path, None, None, users, health, "microsocks", netns)
            self.gateways.append(gw)
            _wait_connectable(gw, host, port, 10)
            return gw

        if users:
            make_users_file(os.path.join(workdir, "users"), users)
        # The control channel's key in the test's own directory, never the machine's /var/lib.
        cmd = prefix + [FWGATE_BIN, "gateway", "--state-dir", os.path.join(workdir, "state")]
        if workers is not None or WORKERS:
            cmd += ["--workers", str(workers if workers is not None else WORKERS)]
        if use_config:
            text = config_text if config_text is not None else self.config_text(
                rules=rules, methods=methods, users=users, limits=limits, networks=networks,
                listeners=listeners, bind_external=bind_external, extra=extra, web_proxy=web_proxy,
                _workdir=workdir)
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(text)
            cmd += ["--config", config_path]
        for addr in listen or []:
            cmd += ["--listen", addr]
        for addr in control_listen or []:
            cmd += ["--control-listen", addr]
        for addr in web_listen or []:
            cmd += ["--web-listen", addr]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, cwd=workdir,
                                env=dict(os.environ, **(env or {})))
        errf.close()
        gw = Gateway(proc, workdir, stderr_path, config_path if use_config else None, session_log, users,
                     health, "fwgate", netns)
        self.gateways.append(gw)
        if expected_listeners is None:
            expected_listeners = len(listen) if listen else len(listeners) if listeners else 1
        if expected_web is None:
            # --web-listen replaces [web_proxy] listen; the embedded default has one.
            expected_web = (len(web_listen) if web_listen else len((web_proxy or {}).get("listen", []))
                            if use_config else 1)
        _wait_listening(gw, expected_listeners, 20, expected_web)
        return gw

    def finish(self) -> list[str]:
        problems = []
        for gw in self.gateways:
            problems += self._finish_one(gw)
        if self._health_echo is not None:
            self._health_echo.close()
        return problems

    def _finish_one(self, gw: Gateway) -> list[str]:
        problems = []
        name = f"{gw.kind} pid {gw.pid}"
        if not gw.expected_exit:
            rc = gw.proc.poll()
            if rc is not None:
                problems.append(f"{name} died during the test with exit status {rc}")
            elif gw.health and gw.addresses:
                user, password = next(iter(gw.users.items())) if gw.users else (None, None)
                try:
                    fwit.assert_serves(gw.host, gw.port, self.health_echo().port, user, password, "teardown")
                except (AssertionError, OSError) as exc:
                    problems.append(f"after the test, {name} no longer serves a normal request: {exc}")
        if gw.proc.poll() is None:
            gw.proc.send_signal(signal.SIGTERM)
            try:
                gw.proc.wait(20 * fwit.SLOW)
            except subprocess.TimeoutExpired:
                gw.proc.kill()
                gw.proc.wait(10)
                problems.append(f"{name} did not exit within {20 * fwit.SLOW:.0f}s of SIGTERM (killed)")
        rc = gw.proc.returncode
        if rc is not None and rc < 0 and -rc not in (signal.SIGTERM, signal.SIGKILL):
            problems.append(f"{name} ended by signal {-rc} ({signal.Signals(-rc).name})")
        text = gw.stderr()
        marker = fwit.sanitizer_report(text)
        if marker:
            problems.append(f"{name} stderr holds a sanitizer report ({marker})")
        if problems:
            problems.append(f"--- {name} stderr (tail) ---\n{text[-6000:]}")
        return problems


@pytest.fixture
def gateway(tmp_path, request):
    """Factory: gateway(**options) starts a gateway and returns a Gateway; torn down by PID."""
    factory = GatewayFactory(tmp_path, request)
    yield factory
    problems = factory.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ----------------------------------------------------------------------------------------------
# Local servers


@pytest.fixture
def echo_server():
    srv = fwit.TcpServer(fwit.handle_echo)
    yield srv
    srv.close()


@pytest.fixture
def first_writer():
    srv = fwit.TcpServer(fwit.handle_first_writer)
    yield srv
    srv.close()


@pytest.fixture
def http_server():
    srv = fwit.HttpServer("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def http6_server():
    srv = fwit.HttpServer("::1")
    yield srv
    srv.close()


@pytest.fixture
def udp_echo():
    srv = fwit.UdpEcho("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def server_factory():
    """server_factory(handler) -> TcpServer on 127.0.0.1:0, closed after the test."""
    made = []

    def make(handler, host="127.0.0.1"):
        srv = fwit.TcpServer(handler, host)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


@pytest.fixture
def refused_port():
    return fwit.refused_port()


@pytest.fixture
def users():
    return {"alice": "wonder-" + os.urandom(6).hex()}
