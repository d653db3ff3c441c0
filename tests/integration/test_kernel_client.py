"""The kernel-level firewall client (issue 17): `fwgate run --kernel` in the namespace topology of
test_client.py (internal host -- gateway with IP forwarding off -- external host), with programs
the preload library cannot see: busybox-static's wget and Go programs built here with Debian's
golang-go (standard library only, CGO off: static, their own resolver and syscalls), and curl for
comparison. Each run makes a cgroup and attaches eBPF programs to it; every test checks that the
cgroup and the programs are gone afterwards, by name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import fwit
from conftest import FWGATE_BIN
from test_client import DNS, EXTERNAL, EXTERNAL6, MARKER, NAME, client_env, fwc_sessions, out, start_gateway, topo  # noqa: F401
from test_secondary import FTP_RULES, ftp, sha256  # noqa: F401

pytestmark = pytest.mark.fwgate_only

BUSYBOX = "/bin/busybox"
GO_DIR = os.path.join(fwit.HELPER_DIR, "go")
BIG = 50 * 1024 * 1024


@pytest.fixture(scope="session")
def go_programs() -> dict[str, str]:
    """The Go helpers, built once per build tree (cached beside the fwgate binary)."""
    go = fwit.require_tool("go")
    out_dir = os.path.realpath(os.path.join(os.path.dirname(FWGATE_BIN), "..", "..", "test-go"))
    os.makedirs(out_dir, exist_ok=True)
    env = fwit.clean_env(GOCACHE=os.path.join(out_dir, "cache"), GOPATH=os.path.join(out_dir, "path"),
                         GO111MODULE="off", CGO_ENABLED="0", GOFLAGS="", HOME=out_dir)
    built = {}
    for name in ("goget", "golookup"):
        target = os.path.join(out_dir, name)
        source = os.path.join(GO_DIR, name + ".go")
        if not os.path.exists(target) or os.path.getmtime(target) < os.path.getmtime(source):
            cp = fwit.run([go, "build", "-o", target, source], timeout=300, env=env)
            assert cp.returncode == 0, out(cp)
        built[name] = target
    return built


def bpf_programs() -> set[str]:
    """The names of the fwgate eBPF programs loaded on this machine (bpftool)."""
    cp = fwit.run([fwit.require_tool("bpftool"), "prog", "show"])
    assert cp.returncode == 0, out(cp)
    return set(re.findall(r"name (fwgate_\w+)", cp.stdout.decode(errors="replace")))


def run_cgroups() -> list[str]:
    """fwgate-run-* cgroups anywhere in the cgroup2 hierarchy visible here."""
    found = []
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if " - cgroup2 " in line]
    for mount in mounts:
        found += [os.path.join(mount, d) for d in os.listdir(mount) if d.startswith("fwgate-run-")]
    return found


@pytest.fixture
def kernel(topo):
    """The topology, with a check that each run left nothing behind."""
    fwit.require_tool("bpftool")
    assert os.path.exists(BUSYBOX), "busybox-static is not installed"
    before = bpf_programs()
    yield topo
    deadline = time.monotonic() + 5
    while (bpf_programs() - before or run_cgroups()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not bpf_programs() - before, f"eBPF programs left behind: {bpf_programs() - before}"
    assert not run_cgroups(), f"cgroups left behind: {run_cgroups()}"


def krun(t, argv: list[str], timeout: float = 60.0, **env) -> subprocess.CompletedProcess:
    return t.run_in("internal", [FWGATE_BIN, "run", "--kernel", "--"] + argv, timeout=timeout,
                    env=client_env(t, **env))


def big_file(t) -> str:
    """A 50 MB file on the external web server; its sha256."""
    data = os.urandom(1 << 20) * 50
    (t.tmp / "www" / "big.bin").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_busybox_wget_and_curl_by_name(kernel, gateway):
    gw = start_gateway(gateway, kernel)
    for argv, app in (([BUSYBOX, "wget", "-q", "-O", "-", f"http://{NAME}/"], "busybox"),
                      (["curl", "-sS", "--max-time", "20", f"http://{NAME}/"], "curl")):
        cp = krun(kernel, argv)
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
        logged = gw.wait_session(lambda s, app=app: s.get("protocol") == "fwc" and s.get("command") == "connect"
                                 and s.get("application") == app)
        # The name came with the connect: the helper answered the program's query from the gateway.
        assert logged["requested"] == f"{NAME}:80" and logged["resolved"] == f"{EXTERNAL}:80", logged
        assert logged["rule"] == "internal clients" and logged["bytes_down"] > 0, logged


def test_go_fetches_50_mb_by_name_and_sees_the_real_peer(kernel, gateway, go_programs):
    gw = start_gateway(gateway, kernel)
    digest = big_file(kernel)
    cp = kernel.run_in("internal", [FWGATE_BIN, "run", "--kernel", "--debug", "--", go_programs["goget"],
                                    f"http://{NAME}/big.bin"], timeout=120, env=client_env(kernel))
    assert cp.returncode == 0, out(cp)
    # --debug: a line per remoted connection, with the name the helper answered.
    assert re.search(rf"goget\[\d+\] connect {EXTERNAL}:80 \({NAME}\): remoted via", out(cp)), out(cp)
    assert f"status 200 sha256 {digest} size {BIG}" in out(cp), out(cp)
    # getpeername (the cgroup/getpeername4 program): the destination, not the helper.
    assert f"remote {EXTERNAL}:80" in out(cp), out(cp)
    logged = gw.wait_session(lambda s: s.get("application") == "goget" and s.get("command") == "connect")
    assert logged["bytes_down"] >= BIG, logged


def test_busybox_wget_fetches_50_mb(kernel, gateway):
    start_gateway(gateway, kernel)
    digest = big_file(kernel)
    cp = kernel.run_in("internal", ["sh", "-c", f"{FWGATE_BIN} run --kernel -- {BUSYBOX} wget -q -O - "
                                    f"http://{NAME}/big.bin | sha256sum"], timeout=120, env=client_env(kernel))
    assert cp.returncode == 0 and digest in out(cp), out(cp)


def test_names_never_leave_on_the_internal_link(kernel, gateway, go_programs):
    """dig (UDP and TCP) and Go's resolver get the gateway's answers; a capture of port 53 on the
    internal link sees nothing of them, and the same dig without the kernel client is seen there."""
    gw = start_gateway(gateway, kernel)
    pcap = kernel.tmp / "dns.pcap"
    cap = kernel.spawn("internal", ["tcpdump", "-Z", "root", "--immediate-mode", "-i", kernel.link["ig"], "-n", "-U",
                                    "-w", str(pcap), "port", "53"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    fwit.read_pipe(cap.stderr, 200, 10, until=b"listening")
    for argv in (["dig", "+short", "+time=5", "+tries=1", NAME], ["dig", "+short", "+tcp", "+time=5", NAME],
                 [go_programs["golookup"], NAME]):
        cp = krun(kernel, argv)
        assert cp.returncode == 0 and EXTERNAL in out(cp).split(), (argv, out(cp))
    gw.wait_session(lambda s: s.get("command") == "resolve" and s.get("requested") == NAME)
    # A type the gateway does not resolve is answered NOTIMP, at once, not sent anywhere.
    cp = krun(kernel, ["dig", "+time=5", "+tries=1", "MX", NAME])
    assert "status: NOTIMP" in out(cp), out(cp)
    # The control: the same query without the kernel client goes out on the link.
    kernel.run_in("internal", ["dig", "+short", "+time=1", "+tries=1", NAME], timeout=20)
    time.sleep(1)
    cap.send_signal(signal.SIGINT)
    cap.wait(10)
    read = fwit.run(["tcpdump", "-n", "-r", str(pcap)])
    lines = [line for line in read.stdout.decode(errors="replace").splitlines() if line.strip()]
    assert lines, "the control query was not seen: the capture proves nothing"
    assert len([line for line in lines if "A?" in line]) == 1, lines  # the control's one query


def test_the_internal_segment_is_reached_directly(kernel, gateway, go_programs):
    gw = start_gateway(gateway, kernel)
    url = f"http://{kernel.peer}:8080/"
    for argv in ([BUSYBOX, "wget", "-q", "-O", "-", url], [go_programs["goget"], url]):
        cp = krun(kernel, argv)
        assert cp.returncode == 0 and ("fwgate-peer-page" in out(cp) or "status 200" in out(cp)), out(cp)
    time.sleep(0.3)
    assert not [s for s in gw.sessions() if kernel.peer in s.get("requested", "")], gw.sessions()
    kernel.peer_log.flush()
    assert f"10.{kernel.a}.3.1" in (kernel.tmp / "peer-http.log").read_text(errors="replace")


def test_ftp_in_passive_mode_from_a_static_client(kernel, gateway, ftp):
    """busybox's ftpget (passive only) fetches 50 MB under a rule that allows only the FTP
    definition: its data connection is the primary connection's secondary, as for the library."""
    gw = start_gateway(gateway, kernel, rules=FTP_RULES)
    dest = kernel.tmp / "ftpget.bin"
    cp = krun(kernel, [BUSYBOX, "ftpget", "-u", "anonymous", "-p", "x", EXTERNAL, str(dest), "big.bin"], timeout=120)
    assert cp.returncode == 0, out(cp)
    assert sha256(dest) == ftp["sha256"]
    gw.wait_session(lambda s: s.get("application") == "busybox" and s.get("definition") == "FTP (secondary)")


def test_a_denied_port_is_a_reset_with_a_log_line(kernel, gateway, go_programs):
    gw = start_gateway(gateway, kernel, rules=[
        {"name": "no web", "action": "deny", "sources": ["internal"], "ports": [80]},
        {"name": "internal clients", "action": "allow", "sources": ["internal"]}])
    cp = krun(kernel, [go_programs["goget"], f"http://{EXTERNAL}/"])
    assert cp.returncode != 0 and "connection reset" in out(cp), out(cp)
    assert re.search(r"goget\[\d+\] connect 203\.0\.113\.7:80 via .*: Permission denied", out(cp)), out(cp)
    logged = gw.wait_session(lambda s: s.get("application") == "goget")
    assert logged["rule"] == "no web" and logged["outcome"] == "denied", logged


def test_an_unreachable_gateway_fails_connects_at_once(kernel, gateway):
    # No gateway at all: the control port does not answer.
    cp = krun(kernel, [BUSYBOX, "wget", "-q", "-O", "-", f"http://{EXTERNAL}/"], timeout=30,
              FWGATE_TIMEOUT="1000")
    assert cp.returncode != 0, out(cp)
    assert "is unreachable" in out(cp) and "fail (EPERM) until it answers" in out(cp), out(cp)
    assert "not permitted" in out(cp).lower(), out(cp)  # EPERM, from the eBPF program


def test_kill_9_of_the_helper_mid_transfer(kernel, gateway):
    """The program's transfer fails, its next connects are not diverted (they fail, as without a
    client), and nothing of the run stays loaded; the host's other programs never saw it."""
    start_gateway(gateway, kernel)
    big_file(kernel)
    # A reader that waits: the transfer is under way, held by the pipe, when the helper dies.
    script = (f"set -o pipefail; {BUSYBOX} wget -q -O - http://{EXTERNAL}/big.bin 2>/dev/null | (sleep 4; cat >/dev/null);"
              f" echo first=$?; curl -sS --max-time 3 http://{EXTERNAL}/; echo second=$?; echo end")
    proc = kernel.spawn("internal", [FWGATE_BIN, "run", "--kernel", "--", "bash", "-c", script],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=client_env(kernel))
    time.sleep(2)
    assert bpf_programs(), "the run loaded no eBPF programs"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # The shell runs on in the cgroup the dead helper made; it ends by itself.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            os.path.exists(os.path.join(c, "cgroup.procs")) and open(os.path.join(c, "cgroup.procs")).read().strip()
            for c in run_cgroups()):
        time.sleep(0.2)
    assert not (bpf_programs() & {"fwgate_connect4"}), "the programs outlived their loader"
    said = fwit.read_pipe(proc.stdout, 4096, 30, until=b"end\n").decode(errors="replace")
    first = re.search(r"first=(\d+)", said)
    second = re.search(r"second=(\d+)", said)
    assert first and first.group(1) != "0", said  # the transfer broke
    assert second and second.group(1) != "0" and MARKER not in said, said  # not carried any more
    # The next run removes the empty cgroup the killed one left.
    cp = krun(kernel, ["true"])
    assert cp.returncode == 0, out(cp)


def cgroup_tree() -> list[str]:
    """Every cgroup directory of the hierarchy visible here."""
    found = []
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if " - cgroup2 " in line]
    for mount in mounts:
        for root, dirs, _ in os.walk(mount):
            found += [os.path.join(root, d) for d in dirs]
    return sorted(found)


# Connects to a listener of its own on 198.51.100.9 (added to the peer host's lo).
OWN_LISTENER = ("import socket\ns=socket.socket();s.bind(('198.51.100.9',0));s.listen()\n"
                "c=socket.create_connection(s.getsockname(),5);a,_=s.accept()\n"
                "print('reached', c.getpeername()[0])")


def test_the_system_wide_mode_on_and_off_twice(kernel, gateway):
    """`fwgate kernel start` covers every process of the (internal) host, whoever started it, but
    the exempt accounts (root by default); SIGTERM detaches it all: the cgroup tree, the loaded
    eBPF programs and the ruleset are as they were, twice."""
    gw = start_gateway(gateway, kernel)
    kernel.ip("-n", kernel.ns["peer"], "link", "set", "lo", "up")
    kernel.ip("-n", kernel.ns["peer"], "addr", "add", "198.51.100.9/32", "dev", "lo")
    nft_before = fwit.run(["nft", "list", "ruleset"]).stdout
    tree_before = cgroup_tree()
    programs_before = bpf_programs()
    status = kernel.run_in("internal", [FWGATE_BIN, "kernel", "status"], env=client_env(kernel))
    assert status.returncode == 3 and "no eBPF program" in out(status), out(status)
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    for round_ in range(2):
        daemon = kernel.spawn("internal", [FWGATE_BIN, "kernel", "start"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=client_env(kernel))
        said = fwit.read_pipe(daemon.stderr, 4096, 20, until=b"SIGTERM stops").decode(errors="replace")
        assert "go through the gateway" in said, said
        status = kernel.run_in("internal", [FWGATE_BIN, "kernel", "status"], env=client_env(kernel))
        assert status.returncode == 0 and "fwgate_connect4" in out(status), out(status)
        # A program started by nobody, not under fwgate run: through the gateway, as nobody.
        cp = kernel.run_in("internal", nobody + [BUSYBOX, "wget", "-q", "-O", "-", f"http://{NAME}/"], timeout=30)
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
        logged = gw.wait_session(lambda s: s.get("application") == "busybox" and s.get("os_user") == "nobody"
                                 and s.get("command") == "connect", timeout=10)
        assert logged["requested"] == f"{NAME}:80", logged
        # root is exempt: its program goes direct, and there is no route out.
        cp = kernel.run_in("internal", ["curl", "-sS", "--max-time", "2", f"http://{EXTERNAL}/"], timeout=20)
        assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
        assert not [s for s in fwc_sessions(gw) if s.get("requested") == f"{EXTERNAL}:80"], fwc_sessions(gw)
        # Other network namespaces (containers) are not covered: in the peer host's, a connect to
        # an address outside the internal host's LAT reaches its own listener, not a helper.
        cp = kernel.run_in("peer", nobody + [fwit.PYTHON, "-c", OWN_LISTENER], timeout=20)
        assert cp.returncode == 0 and "reached 198.51.100.9" in out(cp), out(cp)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0, daemon.stderr.read()
        assert bpf_programs() == programs_before, f"round {round_}: {bpf_programs() - programs_before} left"
        assert cgroup_tree() == tree_before, f"round {round_}: the cgroup tree changed"
        assert fwit.run(["nft", "list", "ruleset"]).stdout == nft_before
        cp = kernel.run_in("internal", nobody + [BUSYBOX, "wget", "-q", "-T", "2", "-O", "-", f"http://{EXTERNAL}/"],
                           timeout=30)
        assert MARKER not in out(cp), out(cp)  # no longer carried


def test_udp_to_a_remote_server_goes_through_the_gateway(kernel, gateway):
    """dig asks the external DNS server itself (not the resolver of resolv.conf): its datagrams
    go through a UDP association, both ways, and the gateway logs the association."""
    gw = start_gateway(gateway, kernel)
    for argv in (["dig", "+short", "+time=5", "+tries=1", f"@{DNS}", NAME],
                 [BUSYBOX, "nslookup", "-type=a", NAME, DNS]):  # the server refuses AAAA
        cp = krun(kernel, argv, timeout=30)
        assert cp.returncode == 0 and EXTERNAL in out(cp), (argv, out(cp))
    logged = gw.wait_sessions(lambda s: s.get("protocol") == "fwc" and s.get("command") == "udp", count=2,
                              timeout=30)
    assert {line["application"] for line in logged} == {"dig", "busybox"}, logged
    for line in logged:
        assert line["datagrams_up"] >= 1 and line["datagrams_down"] >= 1 and line["definition"] == "DNS", line


def test_without_root_a_user_opts_in(kernel, gateway):
    """`fwgate kernel start --opt-in` covers only the processes that ask: nobody's `fwgate run
    --kernel` asks on the socket and its program goes through the gateway as nobody; nobody's
    other programs are not covered; without the daemon the run says what it needs. SIGTERM puts
    the cgroup tree back as it was."""
    gw = start_gateway(gateway, kernel)
    sockets = tempfile.mkdtemp(prefix="fwgate-optin-")
    os.chmod(sockets, 0o755)
    path = os.path.join(sockets, "kernel.sock")
    tree_before = cgroup_tree()
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env",
              f"FWGATE_KERNEL_SOCKET={path}"]
    try:
        cp = kernel.run_in("internal", nobody + [FWGATE_BIN, "run", "--kernel", "--", "true"], env=client_env(kernel))
        assert cp.returncode == 126 and "--opt-in" in out(cp) and path in out(cp), out(cp)
        daemon = kernel.spawn("internal", [FWGATE_BIN, "kernel", "start", "--opt-in", "--socket", path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=client_env(kernel))
        said = fwit.read_pipe(daemon.stderr, 4096, 20, until=b"SIGTERM stops").decode(errors="replace")
        assert "opt in on" in said and "0 accounts exempt" in said, said
        cp = kernel.run_in("internal", nobody + [FWGATE_BIN, "run", "--kernel", "--", BUSYBOX, "wget", "-q", "-O", "-",
                                                 f"http://{NAME}/"], timeout=30, env=client_env(kernel))
        assert cp.returncode == 0 and MARKER in out(cp), out(cp)
        logged = gw.wait_session(lambda s: s.get("application") == "busybox" and s.get("command") == "connect")
        assert logged["os_user"] == "nobody", logged
        # The same program, not opted in: not covered.
        cp = kernel.run_in("internal", nobody + ["curl", "-sS", "--max-time", "2", f"http://{EXTERNAL}/"], timeout=20)
        assert cp.returncode != 0 and MARKER not in out(cp), out(cp)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0, daemon.stderr.read()
        assert cgroup_tree() == tree_before
        assert not os.path.exists(path)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def test_a_native_ipv6_destination(kernel, gateway):
    """An IPv6 socket's connect to an IPv6 address outside the LAT goes to the helper on [::1] and
    through the gateway; the program's getpeername shows the destination."""
    gw = start_gateway(gateway, kernel, extra="[firewall_client]\nrequire_definition = false\n")
    echo6 = kernel.spawn("external", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "echo_server.py"),
                                      "--host", EXTERNAL6, "--lifetime", "120"])
    port6 = int(fwit.read_pipe(echo6.stdout, 64, 15, until=b"\n"))
    code = (f"import socket\ns=socket.create_connection(('{EXTERNAL6}',{port6}),10)\ns.sendall(b'ping')\n"
            "print(s.recv(4).decode(), *s.getpeername()[:2])")
    cp = krun(kernel, [fwit.PYTHON, "-c", code])
    assert cp.returncode == 0 and f"ping {EXTERNAL6} {port6}" in out(cp), out(cp)
    logged = gw.wait_session(lambda s: s.get("command") == "connect" and EXTERNAL6 in s.get("requested", ""))
    assert logged["outcome"] == "succeeded", logged
