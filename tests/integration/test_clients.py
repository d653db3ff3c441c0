"""Real, unmodified SOCKS clients against the gateway: curl, ncat, PySocks, proxychains4, npm socks.

Names are the test's own (fwit.TEST_HOSTS): the gateway and the clients run in the suite's resolver
context, whatever the machine's /etc/hosts says about localhost.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import fwctl
import fwit


def curl(args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    return fwit.run(fwit.resolving([fwit.require_tool("curl"), "-sS", "--max-time", str(int(20 * fwit.SLOW))] + args),
                    timeout)


def assert_body(cp: subprocess.CompletedProcess, body: bytes) -> None:
    assert cp.returncode == 0, f"curl exit {cp.returncode}: {cp.stderr.decode(errors='replace')}"
    assert cp.stdout == body, f"body {cp.stdout!r}, expected {body!r}"


def logged(gw, **fields) -> dict:
    """With fwgate, the session must also appear in the session log with these fields."""
    if gw.kind != "fwgate":
        return {}
    return gw.wait_session(lambda r: all(str(v) in str(r.get(k)) for k, v in fields.items()))


# ---------------------------------------------------------------------------------------------- curl


def test_curl_socks5_ip(gateway, http_server):
    gw = gateway()
    cp = curl(["--socks5", f"{gw.host}:{gw.port}", http_server.url()])
    assert_body(cp, http_server.body)
    logged(gw, command="connect", requested=http_server.port)


def test_curl_socks5_hostname(gateway, http_server):
    gw = gateway()
    cp = curl(["--socks5-hostname", f"{gw.host}:{gw.port}", http_server.url(fwit.TEST_NAME)])
    assert_body(cp, http_server.body)
    # The name travelled to the gateway, which resolved it (to the one address the name has).
    rec = logged(gw, requested=f"{fwit.TEST_NAME}:{http_server.port}")
    assert not rec or rec["resolved"] == f"127.0.0.1:{http_server.port}", rec


@pytest.mark.fwgate_only  # microsocks connects to the first address only
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_curl_socks5_hostname_with_two_addresses(gateway, http_server, http6_server, family):
    """A name with ::1 and 127.0.0.1 (Debian's localhost): whichever address the server listens on,
    the gateway reaches it, and logs the one it used."""
    server = http_server if family == "ipv4" else http6_server
    gw = gateway()
    cp = curl(["--socks5-hostname", f"{gw.host}:{gw.port}", server.url(fwit.TEST_NAME_DUAL)])
    assert_body(cp, server.body)
    rec = logged(gw, requested=f"{fwit.TEST_NAME_DUAL}:{server.port}")
    used = f"127.0.0.1:{server.port}" if family == "ipv4" else f"[::1]:{server.port}"
    assert rec["resolved"] == used and rec["result"] == "succeeded", rec


def test_curl_socks5_hostname_ipv6_target(gateway, http6_server):
    gw = gateway()
    cp = curl(["--socks5-hostname", f"{gw.host}:{gw.port}", http6_server.url("::1")])
    assert_body(cp, http6_server.body)


def test_curl_socks5_ipv6_target(gateway, http6_server):
    gw = gateway()
    cp = curl(["--socks5", f"{gw.host}:{gw.port}", http6_server.url("::1")])
    assert_body(cp, http6_server.body)


def test_curl_via_ipv6_listener(gateway, http_server):
    gw = gateway(listen=["[::1]:0"])
    assert gw.host == "::1", f"listening on {gw.addresses}"
    cp = curl(["--socks5", f"[::1]:{gw.port}", http_server.url()])
    assert_body(cp, http_server.body)


@pytest.mark.fwgate_only
def test_listen_flag_without_config(gateway, http_server):
    """--listen without --config: the embedded default (loopback, no auth) on the given address;
    --control-listen and --web-listen move its control channel and Web Proxy off 127.0.0.1:1745
    and 127.0.0.1:8080 as well."""
    gw = gateway(use_config=False, listen=["127.0.0.1:0"], control_listen=["127.0.0.1:0"],
                 web_listen=["127.0.0.1:0"])
    assert gw.addresses == [("127.0.0.1", gw.port)] and gw.port > 0, gw.addresses
    cp = curl(["--socks5", f"{gw.host}:{gw.port}", http_server.url()])
    assert_body(cp, http_server.body)
    control = gw.wait_control_addresses()
    assert len(control) == 1 and control[0][0] == "127.0.0.1" and control[0][1] not in (0, 1745), control
    welcome, = fwctl.exchange(control[0], fwctl.hello())
    assert welcome["status"] == "Ok", welcome
    web = gw.web_addresses()
    assert len(web) == 1 and web[0][0] == "127.0.0.1" and web[0][1] not in (0, 8080), web


@pytest.mark.fwgate_only
def test_curl_socks4(gateway, http_server):
    gw = gateway()
    cp = curl(["--socks4", f"{gw.host}:{gw.port}", http_server.url()])
    assert_body(cp, http_server.body)
    logged(gw, protocol="4", command="connect")


@pytest.mark.fwgate_only
def test_curl_socks4a(gateway, http_server):
    gw = gateway()
    cp = curl(["--socks4a", f"{gw.host}:{gw.port}", http_server.url(fwit.TEST_NAME)])
    assert_body(cp, http_server.body)
    rec = logged(gw, requested=f"{fwit.TEST_NAME}:{http_server.port}")
    assert rec["resolved"] == f"127.0.0.1:{http_server.port}", rec


# ---------------------------------------------------------------------------------------------- ncat


def ncat_echo(gw, echo_server, proxy_type: str) -> None:
    """ncat as an interactive client: write a line, read its echo, then end stdin."""
    payload = f"ncat {proxy_type} {os.urandom(8).hex()}\n".encode()
    proc = subprocess.Popen(fwit.resolving([fwit.require_tool("ncat"), "--proxy", f"{gw.host}:{gw.port}",
                                            "--proxy-type", proxy_type, "127.0.0.1", str(echo_server.port)]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=fwit.clean_env())
    try:
        proc.stdin.write(payload)
        proc.stdin.flush()
        got = fwit.read_pipe(proc.stdout, len(payload), 15)
        assert got == payload, f"ncat got {got!r}, expected the echo {payload!r}; " \
                               f"stderr {proc.stderr.read1(4096) if proc.poll() is not None else b''!r}"
        proc.stdin.close()
        rc = proc.wait(10 * fwit.SLOW)
        assert rc == 0, f"ncat exit {rc}: {proc.stderr.read().decode(errors='replace')}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_ncat_socks5(gateway, echo_server):
    ncat_echo(gateway(), echo_server, "socks5")


@pytest.mark.fwgate_only
def test_ncat_socks4(gateway, echo_server):
    ncat_echo(gateway(), echo_server, "socks4")


# ---------------------------------------------------------------------------------------------- PySocks


def pysocks_echo(gw, kind: str, rdns: bool, target: str, port: int, user=None, password=None) -> dict:
    """PySocks in a process of its own, in the suite's resolver context: a name it resolves itself
    (local DNS) comes from the test's hosts file."""
    argv = [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "pysocks_client.py"), kind, gw.host, str(gw.port),
            "1" if rdns else "0", target, str(port)] + ([user, password] if user else [])
    cp = fwit.run(fwit.resolving(argv), timeout=30, env=fwit.clean_env(FWGATE_IT_TIMEOUT=str(10 * fwit.SLOW)))
    lines = cp.stdout.decode(errors="replace").strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert cp.returncode == 0 and result.get("echo") is True, (cp.returncode, result, cp.stderr.decode(errors="replace"))
    return result


def assert_socks5_request(gw, rdns: bool, port: int, **fields) -> None:
    """Local DNS: the client sent the address it resolved (the name's only one, IPv4); remote DNS:
    it sent the name, and the gateway resolved it to that address."""
    requested = f"{fwit.TEST_NAME}:{port}" if rdns else f"127.0.0.1:{port}"
    rec = logged(gw, requested=requested, **fields)
    assert not rec or (rec["requested"] == requested and rec["resolved"] == f"127.0.0.1:{port}"), rec


@pytest.mark.parametrize("rdns", [False, True], ids=["local-dns", "remote-dns"])
def test_pysocks_socks5(gateway, echo_server, rdns):
    gw = gateway()
    result = pysocks_echo(gw, "socks5", rdns, fwit.TEST_NAME, echo_server.port)
    assert result["local"] == ["127.0.0.1"], result  # the client's resolver is the test's
    assert_socks5_request(gw, rdns, echo_server.port)


@pytest.mark.fwgate_only
def test_pysocks_socks4(gateway, echo_server):
    gw = gateway()
    pysocks_echo(gw, "socks4", False, "127.0.0.1", echo_server.port)
    logged(gw, protocol="4", requested="127.0.0.1")


@pytest.mark.fwgate_only
def test_pysocks_socks4a(gateway, echo_server):
    gw = gateway()
    pysocks_echo(gw, "socks4", True, fwit.TEST_NAME, echo_server.port)
    rec = logged(gw, protocol="4", requested=f"{fwit.TEST_NAME}:{echo_server.port}")
    assert rec["resolved"] == f"127.0.0.1:{echo_server.port}", rec


@pytest.mark.parametrize("rdns", [False, True], ids=["local-dns", "remote-dns"])
def test_pysocks_socks5_password(gateway, echo_server, users, rdns):
    gw = gateway(methods=["password"], users=users)
    (user, password), = users.items()
    pysocks_echo(gw, "socks5", rdns, fwit.TEST_NAME, echo_server.port, user, password)
    assert_socks5_request(gw, rdns, echo_server.port, user=user)


# ---------------------------------------------------------------------------------------------- proxychains


def test_proxychains_curl(gateway, http_server, tmp_path):
    gw = gateway()
    conf = tmp_path / "proxychains.conf"
    conf.write_text("strict_chain\nproxy_dns\nremote_dns_subnet 224\ntcp_read_time_out 15000\n"
                    f"tcp_connect_time_out 8000\n[ProxyList]\nsocks5 {gw.host} {gw.port}\n")
    cp = fwit.run(fwit.resolving([fwit.require_tool("proxychains4"), "-f", str(conf), fwit.require_tool("curl"),
                                  "-sS", "--max-time", "20", http_server.url()]), timeout=40)
    assert cp.returncode == 0, f"proxychains4 curl exit {cp.returncode}: {cp.stderr.decode(errors='replace')}"
    assert cp.stdout == http_server.body
    chain = cp.stderr.decode(errors="replace")
    # proxychains reports each hop it made: it went through our gateway, and the hop succeeded.
    assert f"{gw.host}:{gw.port}" in chain and "OK" in chain, f"proxychains did not use the gateway: {chain!r}"
    logged(gw, command="connect", requested=http_server.port)


# ---------------------------------------------------------------------------------------------- npm socks


def node_script(args: list[str], timeout: float = 40.0, **popen) -> subprocess.Popen:
    node = fwit.require_tool("node")
    if not os.path.exists(os.path.join(fwit.NODE_DIR, "node_modules", "socks", "package.json")):
        pytest.fail("npm socks package missing in tests/integration/node: run scripts/setup-deps.sh")
    env = fwit.clean_env(FWGATE_IT_NODE_DEADLINE_MS=str(int(timeout * fwit.SLOW * 1000)))
    return subprocess.Popen(fwit.resolving([node, os.path.join(fwit.NODE_DIR, "socks_client.js")] + args), cwd=fwit.NODE_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, **popen)


def node_events(proc: subprocess.Popen, timeout: float = 45.0) -> tuple[int, list[dict], str]:
    try:
        out, err = proc.communicate(timeout=timeout * fwit.SLOW)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"node did not finish: {out!r} {err!r}") from None
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode, events, err.decode(errors="replace")


def read_event(proc: subprocess.Popen, timeout: float = 20.0) -> dict:
    """Next JSON line from the node helper, bounded by a deadline."""
    line = fwit.read_pipe(proc.stdout, 1 << 16, timeout, until=b"\n")
    if not line.endswith(b"\n"):
        rc = proc.poll()
        err = proc.stderr.read().decode(errors="replace") if rc is not None else ""
        raise AssertionError(f"no event from node within {timeout * fwit.SLOW:.0f}s (got {line!r}, exit {rc}) {err}")
    return json.loads(line)


def npm_connect(gw, echo_server, proxy_type: int) -> None:
    payload = f"npm-socks-connect-{proxy_type}-{os.urandom(6).hex()}"
    rc, events, err = node_events(node_script(["connect", gw.host, str(gw.port), str(proxy_type), "127.0.0.1",
                                               str(echo_server.port), payload]))
    assert rc == 0, f"node exit {rc}: {events} {err}"
    assert events[-1] == {"event": "echo", "data": payload}


def test_npm_socks_connect_socks5(gateway, echo_server):
    npm_connect(gateway(), echo_server, 5)


@pytest.mark.fwgate_only
def test_npm_socks_connect_socks4(gateway, echo_server):
    npm_connect(gateway(), echo_server, 4)


@pytest.mark.fwgate_only
@pytest.mark.parametrize("proxy_type", [5, 4], ids=["socks5", "socks4"])
def test_npm_socks_bind(gateway, proxy_type):
    """BIND: the first reply names where the gateway listens; we connect there as the remote peer;
    the second reply names us; data then flows both ways."""
    gw = gateway()
    proc = node_script(["bind", gw.host, str(gw.port), str(proxy_type), "127.0.0.1"])
    peer = None
    try:
        bound = read_event(proc)
        assert bound["event"] == "bound", bound
        assert bound["host"] == "127.0.0.1", f"BIND announced {bound}, expected the external address 127.0.0.1"
        assert bound["port"] not in (0, gw.port), f"BIND announced port {bound['port']}"
        peer = fwit.connect(bound["host"], bound["port"])
        established = read_event(proc)
        assert established["event"] == "established", established
        assert (established["host"], established["port"]) == peer.getsockname()[:2], \
            f"second reply names {established}, the peer is {peer.getsockname()}"
        peer.sendall(b"from-peer\n")
        assert fwit.recv_exact(peer, len(b"from-client\n")) == b"from-client\n"
        data = read_event(proc)
        assert data == {"event": "data", "data": "from-peer\n"}, data
        rc, _, err = node_events(proc)
        assert rc == 0, err
    finally:
        if peer is not None:
            peer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    logged(gw, command="bind")


@pytest.mark.fwgate_only
def test_npm_socks_udp_associate(gateway, udp_echo):
    gw = gateway()
    payload = f"npm-udp-{os.urandom(6).hex()}"
    rc, events, err = node_events(node_script(["udp", gw.host, str(gw.port), "127.0.0.1", str(udp_echo.port),
                                               payload]))
    assert rc == 0, f"node exit {rc}: {events} {err}"
    assoc, dgram = events[0], events[-1]
    assert assoc["event"] == "associated" and assoc["port"] not in (0, gw.port), assoc
    assert dgram["event"] == "datagram", dgram
    assert dgram["data"] == payload
    # The reply is framed with the echo server as its source, and came from the relay's address.
    assert dgram["from"] == {"host": "127.0.0.1", "port": udp_echo.port}, dgram
    assert dgram["relay"]["port"] == assoc["port"], dgram
    # The echo server saw the datagram arrive from the gateway, not from the client directly.
    assert udp_echo.senders, "echo server got nothing"
    logged(gw, command="udp")
