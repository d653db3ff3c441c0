"""The firewall client with real programs in a real topology (network namespaces, as root):

    internal ns  10.A.1.2/24 --veth-- 10.A.1.1/24  gateway ns  203.0.113.1/24 --veth-- 203.0.113.7, .53  external ns
         \\-- 10.A.3.1/24 --veth-- 10.A.3.2/24  peer ns (another internal segment, directly connected)

IP forwarding is off on the gateway: the internal host reaches the outside only through fwgate. The
external host runs an HTTP server (203.0.113.7:80) and a DNS server (dnsmasq, 203.0.113.53) that
alone knows the name www.outside.test; the gateway resolves through it. The internal host's resolver
points at the gateway's internal address, where nothing answers DNS: a query that leaked would be
seen on the wire by tcpdump, and would fail. Each namespace has its own hosts file and nsswitch.conf
(fwit.Namespaces), so nothing here depends on the machine's; the fixed ports (80, 1745, 8080...)
are those of these namespaces, which nothing else shares.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

import fwctl
import fwit
from conftest import FWGATE_BIN

pytestmark = pytest.mark.fwgate_only

MARKER = "fwgate-outside-page"
NAME = "www.outside.test"
EXTERNAL = "203.0.113.7"
DNS = "203.0.113.53"
EXTERNAL6 = "2001:db8:e::7"


class ClientTopology(fwit.Namespaces):
    def __init__(self, tmp_path):
        pid = os.getpid()
        self.a = 100 + pid % 100
        self.link = {k: f"fc{pid}{k}" for k in ("ig", "gi", "ge", "eg", "ip", "pi")}
        super().__init__({r: f"fwc{pid}{r[0]}" for r in ("internal", "gateway", "external", "peer")},
                         list(self.link.values()))
        self.tmp = tmp_path
        self.logs: list = []

    @property
    def internal(self) -> str:
        return f"10.{self.a}.1.2"

    @property
    def gw_inside(self) -> str:
        return f"10.{self.a}.1.1"

    @property
    def peer(self) -> str:
        return f"10.{self.a}.3.2"

    def resolv_conf(self, role: str, nameserver: str) -> None:
        # `ip netns exec` bind-mounts /etc/netns/NAME/{hosts,nsswitch.conf,resolv.conf} over /etc's:
        # the test's hosts file, then DNS at `nameserver`.
        self.resolver(role, nameserver)

    def build(self) -> None:
        self.create()
        i, g, e, p = (self.ns[r] for r in ("internal", "gateway", "external", "peer"))
        L = self.link
        self.ip("link", "add", L["ig"], "netns", i, "type", "veth", "peer", "name", L["gi"], "netns", g)
        self.ip("link", "add", L["ge"], "netns", g, "type", "veth", "peer", "name", L["eg"], "netns", e)
        self.ip("link", "add", L["ip"], "netns", i, "type", "veth", "peer", "name", L["pi"], "netns", p)
        for ns, link, addr in ((i, L["ig"], f"{self.internal}/24"), (g, L["gi"], f"{self.gw_inside}/24"),
                               (g, L["ge"], "203.0.113.1/24"), (e, L["eg"], f"{EXTERNAL}/24"),
                               (e, L["eg"], f"{DNS}/24"), (i, L["ip"], f"10.{self.a}.3.1/24"),
                               (p, L["pi"], f"{self.peer}/24")):
            self.ip("-n", ns, "addr", "add", addr, "dev", link)
            self.ip("-n", ns, "link", "set", link, "up")
        # IPv6 between the gateway and the external host only (nodad: usable at once).
        self.ip("-n", g, "addr", "add", "2001:db8:e::1/64", "dev", L["ge"], "nodad")
        self.ip("-n", e, "addr", "add", f"{EXTERNAL6}/64", "dev", L["eg"], "nodad")
        # The internal host's default route points at the gateway, which does not forward.
        self.ip("-n", i, "route", "add", "default", "via", self.gw_inside)
        self.ip("-n", e, "route", "add", "default", "via", "203.0.113.1")
        fwit.run(["ip", "netns", "exec", g, "sysctl", "-qw", "net.ipv4.ip_forward=0"])
        self.resolv_conf("gateway", DNS)
        self.resolv_conf("internal", self.gw_inside)

    def wait_port(self, role: str, host: str, port: int) -> None:
        code = (f"import socket,time,sys\nfor _ in range(100):\n  try:\n    socket.create_connection(('{host}',{port}),0.5).close();break\n"
                f"  except OSError as e: err=e; time.sleep(0.05)\nelse: sys.exit(repr(err))")
        cp = self.run_in(role, [fwit.PYTHON, "-c", code], timeout=20)
        logs = {p.name: p.read_text(errors="replace")[-2000:] for p in self.tmp.glob("*-http.log")}
        assert cp.returncode == 0, f"{host}:{port} never listened: {cp.stderr!r} {logs}"

    def start_servers(self) -> None:
        www = self.tmp / "www"
        www.mkdir()
        (www / "index.html").write_text(MARKER + "\n")
        # A repository served over plain ("dumb") HTTP for git.
        repo = self.tmp / "src-repo"
        fwit.run(["git", "init", "-q", str(repo)])
        (repo / "README").write_text("cloned through fwgate\n")
        for args in (["add", "README"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):
            assert fwit.run(["git", "-C", str(repo)] + args).returncode == 0
        assert fwit.run(["git", "clone", "-q", "--bare", str(repo), str(www / "repo.git")]).returncode == 0
        assert fwit.run(["git", "-C", str(www / "repo.git"), "update-server-info"]).returncode == 0
        self.http_log = open(self.tmp / "external-http.log", "wb")
        self.logs.append(self.http_log)
        self.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "http_server.py"), EXTERNAL, "80", str(www)],
                   stdout=self.http_log, stderr=self.http_log)
        self.spawn("external", ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                                f"--listen-address={DNS}", f"--address=/{NAME}/{EXTERNAL}", "--user=root",
                                "--pid-file=", "--log-facility=-"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer_www = self.tmp / "peer"
        peer_www.mkdir()
        (peer_www / "index.html").write_text("fwgate-peer-page\n")
        self.peer_log = open(self.tmp / "peer-http.log", "wb")
        self.logs.append(self.peer_log)
        self.spawn("peer", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "http_server.py"), self.peer, "8080",
                            str(peer_www)], stdout=self.peer_log, stderr=self.peer_log)
        self.wait_port("external", EXTERNAL, 80)
        self.wait_port("peer", self.peer, 8080)

    def teardown(self) -> list[str]:
        problems = super().teardown()
        for log in self.logs:
            log.close()
        return problems


@pytest.fixture
def topo(tmp_path):
    fwit.require_tool("ip")
    fwit.require_tool("dnsmasq")
    if os.geteuid() != 0:
        pytest.fail("the namespace tests need root (run the suite as root)")
    t = ClientTopology(tmp_path)
    try:
        t.build()
        t.start_servers()
        yield t
    finally:
        problems = t.teardown()
        assert not problems, problems


def start_gateway(gateway, t: ClientTopology, rules=None, extra="", limits=None):
    gw = gateway(netns=t.ns["gateway"], health=False, bind_external=None, limits=limits,
                 listeners=[{"address": t.gw_inside, "port": 0, "methods": ["none"]}],
                 networks={"internal": {"ranges": [f"10.{t.a}.1.0/24"], "firewall_clients": True}},
                 rules=rules or [{"name": "internal clients", "action": "allow", "sources": ["internal"]}],
                 extra=f'\n[control]\nlisten = ["{t.gw_inside}:1745"]\n' + extra)
    deadline = time.monotonic() + 10
    while not gw.control_addresses() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gw.control_addresses(), gw.tail()
    return gw


def client_env(t: ClientTopology, **extra) -> dict:
    home = t.tmp / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    etc = t.tmp / "etc-fwgate"
    etc.mkdir(exist_ok=True)
    env = fwit.clean_env(HOME=str(home), FWGATE_CONFIG_DIR=str(etc), FWGATE_CACHE=str(t.tmp / "client.cache"),
                         FWGATE_SERVER=f"{t.gw_inside}:1745", FWGATE_USER_CONFIG=str(home / "client.ini"))
    env.update(extra)
    return env


def fwrun(t: ClientTopology, argv: list[str], timeout: float = 60.0, **env) -> subprocess.CompletedProcess:
    return t.run_in("internal", [FWGATE_BIN, "run", "--"] + argv, timeout=timeout, env=client_env(t, **env))


def out(cp: subprocess.CompletedProcess) -> str:
    return cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")


def fwc_sessions(gw) -> list[dict]:
    return [s for s in gw.sessions() if s.get("protocol") == "fwc"]


def test_without_the_client_the_outside_is_unreachable(topo, gateway):
    start_gateway(gateway, topo)
    cp = topo.run_in("internal", ["curl", "-sS", "--max-time", "3", f"http://{EXTERNAL}/"], timeout=20)
    assert cp.returncode != 0 and MARKER not in out(cp), out(cp)


def test_curl_by_address_and_by_name(topo, gateway):
    gw = start_gateway(gateway, topo)
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "20", f"http://{EXTERNAL}/"])
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "20", f"http://{NAME}/"])
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    logged = gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "connect"
                             and s.get("requested") == f"{NAME}:80")
    assert logged["application"] == "curl" and logged["resolved"] == f"{EXTERNAL}:80", logged
    assert logged["rule"] == "internal clients" and logged["bytes_down"] > 0, logged
    gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "resolve"
                    and s.get("requested") == NAME and s.get("resolved") == EXTERNAL)


def test_remote_name_never_queries_dns_from_the_internal_host(topo, gateway):
    start_gateway(gateway, topo)
    pcap = topo.tmp / "internal.pcap"
    cap = topo.spawn("internal", ["tcpdump", "-Z", "root", "--immediate-mode", "-i", "any", "-n", "-U", "-w", str(pcap), "port", "53"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fwit.read_pipe(cap.stderr, 200, 10, until=b"listening")
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "20", f"http://{NAME}/"])
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    # A control: without the library the same name does produce a query (and fails).
    plain = topo.run_in("internal", ["curl", "-sS", "--max-time", "3", f"http://{NAME}/"], timeout=20)
    assert plain.returncode != 0
    time.sleep(1.5)
    cap.send_signal(signal.SIGINT)
    cap.wait(10)
    cap_err = cap.stderr.read().decode(errors="replace")
    read = fwit.run(["tcpdump", "-n", "-r", str(pcap)])
    assert read.returncode == 0, out(read)
    lines = [line for line in read.stdout.decode(errors="replace").splitlines() if line.strip()]
    # Only the control's queries: every one of them came after the remoted run had finished, and
    # the remoted run made none (the library resolved at the gateway).
    assert lines, f"the control run produced no DNS query: the capture proves nothing ({cap_err})"
    assert all(NAME in line or "A?" in line or "AAAA?" in line for line in lines), lines


def test_a_destination_on_an_internal_segment_goes_direct(topo, gateway):
    gw = start_gateway(gateway, topo)
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "20", f"http://{topo.peer}:8080/"])
    assert cp.returncode == 0 and "fwgate-peer-page" in out(cp), out(cp)
    time.sleep(0.3)
    assert not [s for s in gw.sessions() if topo.peer in s.get("requested", "")], gw.sessions()
    topo.peer_log.flush()
    log = (topo.tmp / "peer-http.log").read_text(errors="replace")
    assert f"10.{topo.a}.3.1" in log, log  # the peer saw the internal host itself, not the gateway


def test_real_programs(topo, gateway):
    gw = start_gateway(gateway, topo)
    url = f"http://{NAME}/"
    programs = {
        "wget": ["wget", "-q", "-O", "-", "--timeout=20", url],
        "python3 urllib": [fwit.PYTHON, "-c", f"import urllib.request;print(urllib.request.urlopen('{url}',timeout=20).read().decode())"],
        "python3 asyncio": [fwit.PYTHON, "-c",
                            "import asyncio\n"
                            "async def main():\n"
                            f"  r,w=await asyncio.wait_for(asyncio.open_connection('{NAME}',80),20)\n"
                            f"  w.write(b'GET / HTTP/1.0\\r\\nHost: {NAME}\\r\\n\\r\\n');await w.drain()\n"
                            "  print((await asyncio.wait_for(r.read(),20)).decode())\n"
                            "asyncio.run(main())"],
        "node http": ["node", "-e", f"require('http').get('{url}',r=>{{let d='';r.on('data',c=>d+=c);"
                      "r.on('end',()=>console.log(d))}).on('error',e=>{console.error(e);process.exit(1)})"],
        "node net.connect": ["node", "-e", f"const s=require('net').connect(80,'{NAME}',()=>s.write("
                             f"'GET / HTTP/1.0\\r\\nHost: {NAME}\\r\\n\\r\\n'));let d='';s.on('data',c=>d+=c);"
                             "s.on('end',()=>console.log(d));s.on('error',e=>{console.error(e);process.exit(1)})"],
        "16 threads": [fwit.PYTHON, "-c",
                       "import urllib.request,concurrent.futures as f\n"
                       f"u='{url}'\n"
                       "with f.ThreadPoolExecutor(16) as x:\n"
                       "  r=list(x.map(lambda i: urllib.request.urlopen(u,timeout=30).read().decode(),range(16)))\n"
                       f"assert all('{MARKER}' in p for p in r),r\nprint(r[0])"],
        "node fetch": ["node", "--no-warnings", "-e", f"fetch('{url}').then(r=>r.text()).then(t=>console.log(t))"
                       ".catch(e=>{console.error(e);process.exit(1)})"],
        "shell fork+exec": ["sh", "-c", f"for i in 1 2 3; do curl -sS --max-time 20 {url} & done; wait"],
        # Python's subprocess starts children with vfork/posix_spawn where it can.
        "python3 subprocess (posix_spawn)": [fwit.PYTHON, "-c",
                                             "import subprocess,sys\n"
                                             f"r=subprocess.run(['curl','-sS','--max-time','20','{url}'],capture_output=True)\n"
                                             "sys.stdout.write(r.stdout.decode());sys.exit(r.returncode)"],
    }
    failures = {}
    for label, argv in programs.items():
        cp = fwrun(topo, argv, timeout=90)
        if cp.returncode != 0 or MARKER not in out(cp):
            failures[label] = out(cp)[-1500:]
    assert not failures, failures
    for app in ("wget", "python3", "node", "curl"):
        gw.wait_session(lambda s, app=app: s.get("protocol") == "fwc" and s.get("command") == "connect"
                        and s.get("application") == app)


def test_git_clone_over_http(topo, gateway):
    start_gateway(gateway, topo)
    dest = topo.tmp / "clone"
    cp = fwrun(topo, ["git", "clone", "-q", f"http://{NAME}/repo.git", str(dest)], timeout=120)
    assert cp.returncode == 0, out(cp)
    assert (dest / "README").read_text() == "cloned through fwgate\n"


@pytest.mark.parametrize("mode", ["blocking", "poll", "select", "epoll", "epoll-et", "early-sockopt",
                                  "connect-again"])
def test_connect_semantics(topo, gateway, mode):
    # The echo server's port is random: no protocol definition covers it.
    start_gateway(gateway, topo, limits={"connect_timeout": "2s"},
                  extra="\n[firewall_client]\nrequire_definition = false\n", rules=[
        {"name": "no telnet", "action": "deny", "ports": ["23"]},
        {"name": "internal clients", "action": "allow", "sources": ["internal"]}])
    echo = topo.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "echo_server.py"),
                                   "--host", EXTERNAL, "--lifetime", "120"])
    port = int(fwit.read_pipe(echo.stdout, 64, 15, until=b"\n"))
    probe = os.path.join(fwit.HELPER_DIR, "connect_probe.py")

    def run(port_, family="4", host=EXTERNAL):
        cp = fwrun(topo, [fwit.PYTHON, probe, host, str(port_), mode, family])
        assert cp.returncode == 0, out(cp)
        return json.loads(cp.stdout.decode().strip().splitlines()[-1])

    ok = run(port)
    assert ok.get("so_error", ok["connect"]) == "ok" and ok["echo"] == "ping", ok
    assert ok["peer"] == [EXTERNAL, port] and ok["peer_dup"] == ok["peer"] and ok["nonblocking_kept"], ok
    if mode != "blocking":
        # In progress, or connected within the call when the gateway answered that fast.
        assert ok["connect"] in ("EINPROGRESS", "ok"), ok
    v6 = run(port, "6")
    assert v6.get("so_error", v6["connect"]) == "ok" and v6["echo"] == "ping", v6
    assert v6["peer"][0] == f"::ffff:{EXTERNAL}", v6
    refused = run(9)  # nothing listens on the discard port there
    assert refused.get("so_error", refused["connect"]) == "ECONNREFUSED", refused
    denied = run(23)
    assert denied.get("so_error", denied["connect"]) == "EACCES", denied
    # The gateway has no route to 198.51.100.0/24.
    unreachable = run(80, host="198.51.100.7")
    assert unreachable.get("so_error", unreachable["connect"]) == "ENETUNREACH", unreachable
    # An IPv6 destination from an IPv6 socket (the gateway is reached on its IPv4-mapped address).
    echo6 = topo.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "echo_server.py"),
                                    "--host", EXTERNAL6, "--lifetime", "120"])
    port6 = int(fwit.read_pipe(echo6.stdout, 64, 15, until=b"\n"))
    v6only = run(port6, "6", host=EXTERNAL6)
    assert v6only.get("so_error", v6only["connect"]) == "ok" and v6only["echo"] == "ping", v6only
    assert v6only["peer"] == [EXTERNAL6, port6], v6only
    # Nobody answers at .99: the gateway gives up after its 2 s connect timeout. The program waited
    # in its own poll/select/epoll (or in connect), without burning CPU meanwhile.
    silent = run(80, host="203.0.113.99")
    assert silent.get("so_error", silent["connect"]) in ("ETIMEDOUT", "EHOSTUNREACH"), silent
    assert silent["seconds"] >= 1.5 and silent["cpu"] < 0.5 + ok["cpu"], silent
    if mode == "early-sockopt":
        # Asked while the gateway was still trying for 2 s: the answer came at once, not then.
        assert silent["early_so_error"] == "ok" and silent["early_seconds"] < 0.5, silent


def test_gateway_unreachable_fails_fast_with_a_clear_error(topo, gateway):
    start_gateway(gateway, topo)
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "20", f"http://{EXTERNAL}/"],
               FWGATE_SERVER=f"{topo.gw_inside}:1799", FWGATE_DEBUG="1")
    text = out(cp)
    assert cp.returncode == 7, text  # curl: could not connect
    assert "gateway" in text and "unreachable" in text and "Connection refused" in text, text
    # Name resolution fails as temporary (EAI_AGAIN), at once, with its line.
    code = ("import socket,sys\ntry:\n  socket.getaddrinfo('www.outside.test',80)\nexcept socket.gaierror as e:\n"
            "  print('gaierror', e.errno);sys.exit(0)\nsys.exit(1)")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code], FWGATE_SERVER=f"{topo.gw_inside}:1799", FWGATE_DEBUG="1")
    assert cp.returncode == 0 and f"gaierror {socket.EAI_AGAIN}" in out(cp), out(cp)
    assert "resolve www.outside.test: gateway" in out(cp), out(cp)
    # A gateway address where nothing answers at all: bounded by FWGATE_TIMEOUT, not a hang.
    started = time.monotonic()
    cp = fwrun(topo, ["curl", "-sS", "--max-time", "30", f"http://{EXTERNAL}/"],
               FWGATE_SERVER=f"10.{topo.a}.1.99:1745", FWGATE_TIMEOUT="1000", FWGATE_DEBUG="1")
    elapsed = time.monotonic() - started
    assert cp.returncode in (7, 28) and elapsed < 15, (elapsed, out(cp))
    assert "unreachable" in out(cp), out(cp)


def test_check_against_a_matching_gateway(topo, gateway):
    start_gateway(gateway, topo, extra="\n[firewall_client.applications.curl]\nNameResolution = \"R\"\n")
    cp = topo.run_in("internal", [FWGATE_BIN, "check", "--app", "curl"], env=client_env(topo))
    text = out(cp)
    assert cp.returncode == 0, text
    assert "Client control protocol version MATCHES the server control protocol" in text, text
    assert f"10.{topo.a}.1.0 - 10.{topo.a}.1.255" in text and "NameResolution = R" in text, text
    assert f"{topo.gw_inside}:1745" in text, text


def test_check_against_a_mismatching_gateway(topo):
    # A control service of another version: it answers every Hello with its own version 7.
    code = ("import socket,struct\n"
            "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('{topo.gw_inside}',1746));s.listen(4);print('ready',flush=True)\n"
            "def a(t,v): return bytes([t])+struct.pack('>H',len(v))+v\n"
            "for _ in range(4):\n"
            "  c,_=s.accept();c.recv(4096)\n"
            "  b=a(2,b'\\x01')+a(1,struct.pack('>H',7))+a(3,b'gateway speaks version 7')\n"
            "  c.sendall(bytes([2])+len(b).to_bytes(3,'big')+b);c.close()\n")
    fake = topo.spawn("gateway", [fwit.PYTHON, "-c", code])
    fwit.read_pipe(fake.stdout, 16, 10, until=b"\n")
    cp = topo.run_in("internal", [FWGATE_BIN, "check"],
                     env=client_env(topo, FWGATE_SERVER=f"{topo.gw_inside}:1746"))
    text = out(cp)
    assert cp.returncode == 1, text
    assert "DOES NOT MATCH the server control protocol (version 7)" in text, text


def test_detect_writes_the_cache_and_programs_use_it(topo, gateway):
    gw = start_gateway(gateway, topo)
    env = client_env(topo)
    cp = topo.run_in("internal", [FWGATE_BIN, "detect"], env=env)
    assert cp.returncode == 0, out(cp)
    cache = topo.tmp / "client.cache"
    assert cache.read_bytes().startswith(b"fwgate-cache 1\n"), cache.read_bytes()[:80]
    # With the gateway named only by the cache (no FWGATE_SERVER), programs still find it.
    env.pop("FWGATE_SERVER")
    cp = topo.run_in("internal", [FWGATE_BIN, "run", "--", "curl", "-sS", "--max-time", "20",
                                  f"http://{EXTERNAL}/"], env=env)
    assert cp.returncode == 0 and MARKER in out(cp), out(cp)
    gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("command") == "config")


def test_signals_during_a_blocking_connect(topo, gateway):
    # A timer signal every 100 ms while a blocking connect waits for the gateway (2 s for the
    # silent host): the handler runs, the connect neither fails with EINTR nor loses its result.
    # (The library waits on as SA_RESTART would; Python runs its handler once the call returns.)
    start_gateway(gateway, topo, limits={"connect_timeout": "2s"})
    code = ("import errno,signal,socket,sys\n"
            "hits=[]\n"
            "signal.signal(signal.SIGALRM, lambda *a: hits.append(1))\n"
            "signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)\n"
            "results=[]\n"
            f"for host in ('{EXTERNAL}', '203.0.113.99'):\n"
            "  s=socket.socket()\n"
            "  results.append(errno.errorcode.get(s.connect_ex((host, 80)), 'ok'))\n"
            "  s.close()\n"
            "signal.setitimer(signal.ITIMER_REAL, 0)\n"
            "print(results[0], results[1], len(hits))\n")
    cp = fwrun(topo, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0, out(cp)
    first, second, hits = cp.stdout.decode().split()
    assert first == "ok" and second in ("ETIMEDOUT", "EHOSTUNREACH"), out(cp)
    assert int(hits) >= 1, out(cp)
