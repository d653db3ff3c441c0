"""[gateway] workers: several event loops, each serving the sessions it accepted. What is proved here
is what only several loops can get wrong: connections really spread over the loops (by the kernel's
SO_REUSEPORT, or handed out in turn), the default follows the CPUs the process may run on, and a
second gateway cannot join the first's listening port. The rest of the suite runs with
FWGATE_IT_WORKERS=1 and =4 (scripts/test.sh), which is what proves the sessions themselves."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time

import pytest

import fwit
from conftest import FWGATE_BIN, run_fwgate

pytestmark = pytest.mark.fwgate_only

STREAM = 48 << 20  # bytes per stream: enough CPU on every loop that relays one to show in its stat


def loop_threads(pid: int) -> dict[str, int]:
    """Thread name -> CPU time (ns, from schedstat; utime + stime in clock ticks where the kernel
    has no schedstat) of the gateway's event-loop threads: the first loop is the main thread
    ("fwgate"), the others are named fwgate-loopN. Clock ticks are 10 ms: a loop that relays two
    short streams may not use one."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if not (name == "fwgate" and tid == str(pid) or name.startswith("fwgate-loop")):
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                used = int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            used = (int(fields[11]) + int(fields[12])) * 10_000_000
        out[name if tid != str(pid) else "main"] = used
    return out


def busy_loops(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """The loops that relayed: CPU used meanwhile of at least a tenth of the busiest loop's (an
    idle loop's timer wakeups cost microseconds)."""
    used = {name: after[name] - before[name] for name in after}
    most = max(used.values(), default=0)
    return [name for name, ns in used.items() if most > 0 and ns * 10 >= most]


def push_streams(gw, srv, count: int) -> None:
    """`count` SOCKS5 streams of STREAM bytes at once; every byte must arrive."""
    errors = []

    def one():
        try:
            sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
            with sock:
                sock.settimeout(30 * fwit.SLOW)
                block = b"w" * (1 << 20)
                for _ in range(STREAM // len(block)):
                    sock.sendall(block)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1)
        except OSError as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120 * fwit.SLOW)
    assert not errors, errors
    totals = [srv.events.get(timeout=30 * fwit.SLOW)[2] for _ in range(count)]
    assert totals == [STREAM] * count, totals


@pytest.mark.parametrize("balance", ["kernel", "round-robin"])
def test_connections_spread_over_the_loops(gateway, server_factory, balance):
    """Four loops, eight bulk streams: more than one loop relays (round robin: every loop, two
    streams each). With the kernel's SO_REUSEPORT hash, all eight on one loop has odds of 1 in
    16,384."""
    srv = server_factory(fwit.handle_hashing_sink)
    gw = gateway(workers=4, extra=f'[gateway]\nbalance = "{balance}"\n')
    assert "4 workers, " + balance + " balancing" in gw.stderr(), gw.stderr()
    # The loop threads start after the listening lines (and the privilege drop): wait for them.
    want = ["fwgate-loop1", "fwgate-loop2", "fwgate-loop3", "main"]
    deadline = time.monotonic() + 10 * fwit.SLOW
    before = loop_threads(gw.pid)
    while sorted(before) != want and time.monotonic() < deadline:
        time.sleep(0.05)
        before = loop_threads(gw.pid)
    assert sorted(before) == want, before
    push_streams(gw, srv, 8)
    after = loop_threads(gw.pid)
    busy = busy_loops(before, after)
    if balance == "round-robin":
        assert len(busy) == 4, (before, after)
    else:
        assert len(busy) >= 2, (before, after)


def test_default_is_one_loop_per_cpu_the_process_may_use(tmp_path):
    """Without [gateway] workers: as many loops as CPUs in the affinity mask; under taskset -c 0,
    one loop and no loop threads."""
    def start(prefix):
        log = open(tmp_path / f"gw{len(prefix)}.err", "wb")
        proc = subprocess.Popen(prefix + [FWGATE_BIN, "gateway", "--state-dir", str(tmp_path / "state"),
                                          "--listen", "127.0.0.1:0", "--control-listen",
                                          "127.0.0.1:0", "--web-listen", "127.0.0.1:0"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        return proc

    results = {}
    for prefix in ([], ["taskset", "-c", "0"]):
        proc = start(prefix)
        try:
            path = tmp_path / f"gw{len(prefix)}.err"
            deadline = time.monotonic() + 10 * fwit.SLOW
            text = ""
            while time.monotonic() < deadline and "socks listening" not in text:
                time.sleep(0.05)
                text = path.read_text(errors="replace")
            m = re.search(r"(\d+) workers", text)
            assert m, text
            results[len(prefix)] = (int(m.group(1)), sorted(loop_threads(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    cpus = len(os.sched_getaffinity(0))
    assert results[0][0] == cpus, results
    assert results[3] == (1, ["main"]), results


def test_a_second_gateway_cannot_join_the_port(gateway):
    """SO_REUSEPORT lets sockets of one user share a port; a second gateway started on a port the
    first serves must still fail as a taken port does, not take a share of its connections."""
    gw = gateway(workers=2)
    cp = run_fwgate(["gateway", "--workers", "2", "--listen", f"{gw.host}:{gw.port}", "--control-listen",
                     "127.0.0.1:0", "--web-listen", "127.0.0.1:0"], timeout=20)
    text = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    assert cp.returncode == 1, text
    assert f"cannot listen on {gw.host}:{gw.port}" in text and "Address already in use" in text, text


def test_session_limit_counts_every_loop(gateway, echo_server):
    """[limits] max_sessions is one count over all loops: with four loops and max_sessions = 3, a
    fourth concurrent session is refused wherever it lands."""
    gw = gateway(workers=4, limits={"max_sessions": 3})
    held = []
    try:
        for _ in range(3):
            sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
            held.append(sock)
        extra = fwit.connect(gw.host, gw.port, 5)
        with extra:
            extra.settimeout(5 * fwit.SLOW)
            try:
                extra.sendall(b"\x05\x01\x00")
                got = extra.recv(2)
            except ConnectionResetError:
                got = b""
            assert got == b"", f"a fourth session was served: {got!r}"
        gw.wait_session(lambda r: r.get("result") == "session-limit", 10)
    finally:
        for s in held:
            s.close()
